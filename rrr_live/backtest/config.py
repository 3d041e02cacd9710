"""Configuration of a bar backtest (plain frozen dataclasses)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rrr_live.domain.instrument import Instrument
from rrr_live.execution.models import FeeModel, ImpactModel, LatencyModel
from rrr_live.risk.limits import RiskLimits
from rrr_live.strategy.sizing import StrategyConfig


@dataclass(frozen=True)
class BacktestConfig:
    """Everything a bar backtest needs besides bars and a signal.

    Args:
        initial_cash: starting cash (quote currency).
        strategy: score-to-position rules.
        risk: pre-trade limits and the drawdown halt (default 2 %).
        fees: maker/taker fees (bar fills are taker fills).
        impact: half-spread and square-root impact of the synthesized book.
        latency: decision-to-venue latency (see the fill convention in ``engine``).
        instruments: per-symbol instruments; symbols not listed get ``tick_size``,
            ``lot_size`` and ``min_notional``.
        tick_size: default price increment.
        lot_size: default size increment.
        min_notional: default minimum order notional.
        adv_lookback: bars in the average volume used by the impact model.
        periods_per_year: annualization of the statistics (``None``: equity points per year
            observed in the run).
    """

    initial_cash: float = 1_000_000.0
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    risk: RiskLimits = field(default_factory=RiskLimits)
    fees: FeeModel = field(default_factory=lambda: FeeModel(maker_rate=0.0, taker_rate=0.0002))
    impact: ImpactModel = field(default_factory=lambda: ImpactModel(half_spread_bps=1.0))
    latency: LatencyModel = field(default_factory=LatencyModel)
    instruments: Mapping[str, Instrument] | None = None
    tick_size: str = "0.01"
    lot_size: str = "0.000001"
    min_notional: str = "0"
    adv_lookback: int = 20
    periods_per_year: float | None = None

    def __post_init__(self) -> None:
        if self.initial_cash <= 0:
            raise ValueError(f"initial_cash must be > 0, got {self.initial_cash}")
        if self.adv_lookback < 1:
            raise ValueError(f"adv_lookback must be >= 1, got {self.adv_lookback}")

    def instrument_for(self, symbol: str) -> Instrument:
        """Return the configured instrument of ``symbol`` or one built from the defaults."""
        if self.instruments and symbol in self.instruments:
            return self.instruments[symbol]
        return Instrument.create(symbol, self.tick_size, self.lot_size, self.min_notional)
