"""Configuration of a bar backtest (plain frozen dataclasses)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from rrr_live.domain.instrument import Instrument
from rrr_live.execution.models import FeeModel, ImpactModel, LatencyModel
from rrr_live.risk.limits import RiskLimits
from rrr_live.strategy.sizing import StrategyConfig


@dataclass(frozen=True, slots=True)
class TickExecution:
    """How orders are sent when a backtest is fed ticks (ignored for bars-only runs).

    Args:
        order_type: ``"market"``: an IOC market order that takes what the book offers at its
            arrival and expires the rest; ``"limit"``: a GTC limit order at the decision's
            close, rounded to the tick in our favour (buys down, sells up) and moved
            ``limit_offset_ticks`` towards the other side (positive = more aggressive). It
            takes what crosses on arrival and rests for the remainder, keeping its queue
            place, until filled or cancelled by a later decision, a halt or the end of data.
        limit_offset_ticks: see ``order_type``.
        wait_for_open: an order that reaches an untradable book (empty side, session closed)
            waits for the book to reopen instead of being rejected.
    """

    order_type: Literal["market", "limit"] = "market"
    limit_offset_ticks: int = 0
    wait_for_open: bool = True

    def __post_init__(self) -> None:
        if self.order_type not in ("market", "limit"):
            raise ValueError(f"order_type must be 'market' or 'limit', got {self.order_type!r}")


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
        loop: kept for callers of the former loop choice: ``"auto"`` and ``"vectorized"``
            both run the one engine (the scalar mirror loop was removed).
        ticks: order routing when the backtest is also given ticks.
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
    loop: Literal["auto", "vectorized"] = "auto"
    ticks: TickExecution = field(default_factory=TickExecution)

    def __post_init__(self) -> None:
        if self.loop not in ("auto", "vectorized"):
            raise ValueError(
                f"loop must be 'auto' or 'vectorized' (one engine; the scalar loop was removed), "
                f"got {self.loop!r}"
            )
        if self.initial_cash <= 0:
            raise ValueError(f"initial_cash must be > 0, got {self.initial_cash}")
        if self.adv_lookback < 1:
            raise ValueError(f"adv_lookback must be >= 1, got {self.adv_lookback}")

    def instrument_for(self, symbol: str) -> Instrument:
        """Return the configured instrument of ``symbol`` or one built from the defaults."""
        if self.instruments and symbol in self.instruments:
            return self.instruments[symbol]
        return Instrument.create(symbol, self.tick_size, self.lot_size, self.min_notional)
