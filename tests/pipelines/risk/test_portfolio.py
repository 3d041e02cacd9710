"""The strategy's book from a backtest, and one stress/VaR computation for reports and the gate."""

from dataclasses import dataclass

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from rrr_live.backtest.engine import run_backtest
from rrr_live.risk.ewma import RiskInputError
from rrr_live.strategy.signals import momentum_20d
from rrr_pipelines.defs.resources import DatabaseResource
from rrr_pipelines.defs.risk.assets import stress_report, var_report
from rrr_pipelines.lib.ml.evaluation import default_backtest_config
from rrr_pipelines.lib.risk.data import returns_from_bars
from rrr_pipelines.lib.risk.portfolio import (
    book_risk,
    strategy_portfolio,
    strategy_positions,
)
from rrr_pipelines.lib.risk.report import portfolio_risk
from rrr_pipelines.lib.risk.stress import stress_summary
from rrr_pipelines.lib.sources.bundled import BundledSource

DAY = pd.Timedelta(days=1)
D0 = pd.Timestamp("2024-01-01", tz="UTC")


@dataclass(frozen=True)
class Backtest:
    """Fake with the two frames a backtest result has."""

    fills: pd.DataFrame
    equity: pd.DataFrame


def _bars(closes: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for sym, series in closes.items():
        for i, c in enumerate(series):
            rows.append(
                {"source": "t", "symbol": sym, "interval": "1d", "ts": D0 + i * DAY,
                 "open": c, "high": c, "low": c, "close": c, "adj_close": c, "volume": 1e6}
            )  # fmt: skip
    return pd.DataFrame(rows)


def _fills(rows: list[tuple[int, str, str, float]]) -> pd.DataFrame:
    """(bar index whose open the fill happens at, symbol, side, qty)."""
    return pd.DataFrame(
        {
            "ts": [D0 + i * DAY for i, *_ in rows],
            "symbol": [r[1] for r in rows],
            "side": [r[2] for r in rows],
            "qty": [r[3] for r in rows],
        }
    )


def _equity(gross: list[float], equity: list[float]) -> pd.DataFrame:
    """Rows recorded at each bar's close (open + 1 day)."""
    return pd.DataFrame(
        {
            "ts": [D0 + (i + 1) * DAY for i in range(len(gross))],
            "equity": equity,
            "gross_exposure": gross,
        }
    )


BARS = _bars({"A": [100, 101, 102, 103, 104], "B": [50, 51, 52, 53, 54]})
FILLS = _fills(
    [
        (1, "A", "buy", 10), (1, "B", "sell", 4),  # held from bar 1
        (2, "A", "buy", 5),  # held from bar 2
        (3, "A", "sell", 15), (3, "B", "buy", 4),  # flat from bar 3 (fills at close of bar 2)
    ]
)  # fmt: skip
# Book by close: bar 1: A 10*101, B -4*51 (gross 1214); bar 2: A 15*102, B -4*52 (gross 1738).
GROSS = [0.0, 1214.0, 1738.0, 0.0, 0.0]
EQUITY = [10_000.0, 10_010.0, 10_020.0, 10_030.0, 10_040.0]


def test_positions_at_the_date_of_maximum_gross_exposure() -> None:
    book = strategy_portfolio(FILLS, _equity(GROSS, EQUITY), BARS)
    assert book.as_of == D0 + 3 * DAY  # close of bar 2
    assert book.positions == {"A": 1530.0, "B": -208.0}
    assert book.equity == 10_020.0 and book.gross_exposure == 1738.0
    # A fill at the bar-3 open has ts == that close: it is not in the book yet.
    positions, equity = strategy_positions(Backtest(FILLS, _equity(GROSS, EQUITY)), BARS)
    assert (positions, equity) == (book.positions, book.equity)


def test_ties_take_the_earliest_date_and_closed_positions_are_dropped() -> None:
    gross = [0.0, 1214.0, 1214.0, 0.0, 0.0]  # equal maxima: the earliest (bar 1) is taken
    book = strategy_portfolio(FILLS, _equity(gross, EQUITY), BARS)
    assert book.as_of == D0 + 2 * DAY and book.positions == {"A": 1010.0, "B": -204.0}
    flat = strategy_portfolio(FILLS.iloc[:0], _equity([0.0] * 5, EQUITY), BARS)
    assert flat.positions == {} and flat.as_of == D0 + DAY and flat.equity == 10_000.0


def test_a_book_that_does_not_reproduce_the_recorded_gross_is_refused() -> None:
    with pytest.raises(RiskInputError, match="not the ones backtested"):
        strategy_portfolio(FILLS, _equity([0.0, 1214.0, 1800.0, 0.0, 0.0], EQUITY), BARS)
    with pytest.raises(RiskInputError, match="side"):
        strategy_portfolio(FILLS.assign(side="long"), _equity(GROSS, EQUITY), BARS)
    with pytest.raises(RiskInputError, match="equity"):
        strategy_portfolio(FILLS, _equity(GROSS, [0.0] * 5), BARS)
    with pytest.raises(RiskInputError, match="no equity rows"):
        strategy_portfolio(FILLS, _equity([], []), BARS)
    with pytest.raises(RiskInputError, match="no close"):
        strategy_portfolio(FILLS, _equity(GROSS, EQUITY), BARS[BARS.symbol == "A"])


@pytest.fixture(scope="module")
def bundled() -> pd.DataFrame:
    return BundledSource().fetch(
        pd.Timestamp("1990-01-01", tz="UTC"), pd.Timestamp("2030-01-01", tz="UTC")
    )


def test_the_trading_cores_backtest_gives_its_own_gross_exposure(bundled: pd.DataFrame) -> None:
    window = bundled[bundled["ts"] >= pd.Timestamp("2017-06-01", tz="UTC")]
    result = run_backtest(window, momentum_20d(), default_backtest_config())
    book = strategy_portfolio(result.fills, result.equity, window)
    eq = result.equity
    top = int(eq["gross_exposure"].to_numpy().argmax())
    assert book.as_of == eq["ts"].iloc[top] and book.equity == eq["equity"].iloc[top]
    assert sum(abs(v) for v in book.positions.values()) == pytest.approx(
        eq["gross_exposure"].iloc[top], rel=1e-9
    )


def _hedged_book(bundled: pd.DataFrame) -> tuple[Backtest, dict[str, float]]:
    """Long 40 NASDAQ, short 100 SP500 from ten days before the end; one equity row."""
    last = bundled["ts"].max()
    fills = pd.DataFrame(
        {"ts": [last - 10 * DAY] * 2, "symbol": ["NASDAQ", "SP500"], "side": ["buy", "sell"],
         "qty": [40.0, 100.0]}
    )  # fmt: skip
    closes = bundled[bundled["ts"] == last].set_index("symbol")["close"]
    gross = 40.0 * closes["NASDAQ"] + 100.0 * closes["SP500"]
    equity = pd.DataFrame({"ts": [last + DAY], "equity": [500_000.0], "gross_exposure": [gross]})
    expected = {"NASDAQ": 40.0 * closes["NASDAQ"], "SP500": -100.0 * closes["SP500"]}
    return Backtest(fills, equity), expected


def test_gate_figures_are_the_report_functions_on_the_book(bundled: pd.DataFrame) -> None:
    backtest, expected = _hedged_book(bundled)
    gate_path = book_risk(backtest, bundled)
    positions = gate_path.book.positions
    assert positions == pytest.approx(expected)
    returns = returns_from_bars(bundled)
    summary = stress_summary(returns, positions)
    assert gate_path.worst_stress_loss == summary.worst_loss > 0
    assert gate_path.var_99_1d == portfolio_risk(returns, positions).var_99_1d > 0
    assert summary.worst_loss == -summary.table["pnl"].min()
    assert set(summary.table["kind"]) == {"historical", "window", "hypothetical"}
    worst = summary.table.loc[summary.table["pnl"].idxmin(), "scenario"]
    assert summary.worst_scenario == worst


class _Bundled(DatabaseResource):
    """Fake: the bundled bars from memory."""

    def load_bars(self, *, source, interval, symbols=None, start=None, end=None):
        return BundledSource().fetch(
            pd.Timestamp("1990-01-01", tz="UTC"), pd.Timestamp("2030-01-01", tz="UTC")
        )


def test_stress_report_on_the_latest_candidate_shows_the_gate_figure(
    bundled: pd.DataFrame,
) -> None:
    backtest, _ = _hedged_book(bundled)
    gate_path = book_risk(backtest, bundled)
    book = gate_path.book
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                "model_evaluation",
                metadata={
                    "risk.portfolio": dg.MetadataValue.json(
                        {"as_of": str(book.as_of), "equity": book.equity,
                         "positions": book.positions}
                    )
                },
            )
        )  # fmt: skip
        config = {"config": {"portfolio": "latest_candidate"}}
        res = dg.materialize(
            [stress_report, var_report],
            resources={"database": _Bundled(url="postgresql://unused")},
            instance=instance,
            run_config={"ops": {"stress_report": config, "var_report": config}},
        )
    stress_meta = res.asset_materializations_for_node("stress_report")[0].metadata
    var_meta = res.asset_materializations_for_node("var_report")[0].metadata
    assert stress_meta["worst_stress_loss"].value == gate_path.worst_stress_loss
    assert var_meta["var_99_1d"].value == gate_path.var_99_1d
    assert var_meta["portfolio_value"].value == stress_meta["portfolio_value"].value == 500_000.0


def test_latest_candidate_without_an_evaluation_fails_clearly() -> None:
    with dg.instance_for_test() as instance:
        res = dg.materialize(
            [stress_report],
            resources={"database": _Bundled(url="postgresql://unused")},
            instance=instance,
            run_config={"ops": {"stress_report": {"config": {"portfolio": "latest_candidate"}}}},
            raise_on_error=False,
        )
    assert not res.success
    [failure] = [e for e in res.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "materialize model_evaluation first" in str(failure.event_specific_data)


def test_a_flat_book_has_no_market_risk() -> None:
    figures = book_risk(Backtest(FILLS.iloc[:0], _equity([0.0] * 5, EQUITY)), BARS)
    assert figures.risk is None and figures.var_99_1d == 0.0 and figures.worst_stress_loss == 0.0


def test_long_short_book_var_is_relative_to_gross(bundled: pd.DataFrame) -> None:
    returns = returns_from_bars(bundled)
    hedged = {"NASDAQ": 1000.0, "SP500": -1000.0}  # net zero: percent of net is undefined
    risk = portfolio_risk(returns, hedged, n_paths=20_000)
    pnl = (returns[["NASDAQ", "SP500"]] @ np.array([1000.0, -1000.0])) / 100
    expected = -np.quantile(pnl.to_numpy()[-250:], 0.01)
    assert risk.var_99_1d == pytest.approx(expected, rel=1e-9)
