import base64

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from rrr_pipelines.defs.backtest.assets import backtest_report
from rrr_pipelines.defs.resources import DatabaseResource
from rrr_pipelines.lib.backtest import report
from rrr_pipelines.lib.sources.bundled import BundledSource

START, END = pd.Timestamp("1990-01-01", tz="UTC"), pd.Timestamp("2030-01-01", tz="UTC")


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return BundledSource().fetch(START.to_pydatetime(), END.to_pydatetime())


class FakeDatabase(DatabaseResource):
    """Serves the bundled bars as if they had been loaded into PostgreSQL."""

    def load_bars(self, *, source, interval, symbols=None, start=None, end=None):
        assert (source, interval) == ("bundled", "1d")
        return BundledSource().fetch(START.to_pydatetime(), END.to_pydatetime())


@pytest.fixture(scope="module")
def results(bars):
    return report.run_baselines(bars)


def test_stats_table_and_markdown(results, bars):
    table = report.stats_table(results)
    assert list(table.index) == ["buy_and_hold", "momentum_20d", "momentum_12_1"]
    assert list(table.columns) == list(report.STAT_COLUMNS)
    hold = results["buy_and_hold"]
    assert table.loc["buy_and_hold", "n_fills"] == 2  # bought once per index, then held
    assert (hold.fills.ts == hold.fills.ts.iloc[0]).all()
    eq = hold.equity.equity.to_numpy()
    assert table.loc["buy_and_hold", "max_drawdown"] == pytest.approx(
        np.max(1 - eq / np.maximum.accumulate(eq))
    )
    assert (table.loc[["momentum_20d", "momentum_12_1"], "n_fills"] > 50).all()
    md = report.table_markdown(table)
    assert md.count("\n") == 4 and "momentum_12_1" in md and "sharpe" in md


def test_equity_plot_is_a_png(results):
    png = report.equity_plot_png(results)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_backtest_report_asset_metadata():
    res = dg.materialize([backtest_report], resources={"database": FakeDatabase(url="unused")})
    assert res.success
    meta = res.asset_materializations_for_node("backtest_report")[0].metadata
    assert "| strategy" in meta["stats"].value
    image = meta["equity_plot"].value
    assert image.startswith("![equity](data:image/png;base64,")
    assert base64.b64decode(image.split(",", 1)[1].rstrip(")"))[:4] == b"\x89PNG"
    assert meta["bars"].value == 10_062 and meta["symbols"].value == 2
    assert isinstance(meta["buy_and_hold_sharpe"].value, float)
    assert 0 < meta["buy_and_hold_max_drawdown"].value < 1
