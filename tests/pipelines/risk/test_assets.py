import base64
import math
import re

import dagster as dg
import pandas as pd
import pytest

from rrr_pipelines.defs.resources import DatabaseResource
from rrr_pipelines.defs.risk.assets import (
    correlation_report,
    stress_report,
    var_backtest,
    var_report,
)
from rrr_pipelines.lib.sources.bundled import BundledSource


class BundledDatabase(DatabaseResource):
    """Fake: serves the bundled bars from memory instead of PostgreSQL."""

    def load_bars(self, *, source, interval, symbols=None, start=None, end=None):
        assert (source, interval) == ("bundled", "1d")
        return BundledSource().fetch(
            pd.Timestamp("1990-01-01", tz="UTC"), pd.Timestamp("2030-01-01", tz="UTC")
        )


@pytest.fixture(scope="module")
def materialized():
    res = dg.materialize(
        [var_report, var_backtest, stress_report, correlation_report],
        resources={"database": BundledDatabase(url="postgresql://unused")},
    )
    assert res.success
    return {
        name: res.asset_materializations_for_node(name)[0].metadata
        for name in ("var_report", "var_backtest", "stress_report", "correlation_report")
    }


def _png_ok(md: str):
    m = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)\)", md)
    assert m and base64.b64decode(m.group(1))[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_assets_materialize_with_gate_numbers(materialized):
    v = materialized["var_report"]
    for key in ("var_99_1d", "es_99_1d", "var_99_10d", "mc_es_99_1d"):
        assert isinstance(v[key].value, float) and v[key].value > 0
    assert v["es_99_1d"].value >= v["var_99_1d"].value
    assert v["var_99_10d"].value == pytest.approx(math.sqrt(10) * v["var_99_1d"].value)
    assert "mc-t-copula" in v["table"].value
    b = materialized["var_backtest"]
    assert 0 <= b["min_p_cc"].value <= 1
    _png_ok(b["plot"].value)
    s = materialized["stress_report"]
    assert s["worst_stress_loss"].value > s["equity_minus_20_loss"].value * 0.5
    assert "Autumn 2008" in s["historical"].value
    _png_ok(s["plot"].value)
    c = materialized["correlation_report"]
    assert 1.0 <= c["enb"].value <= 2.0
    assert 0.0 <= c["shrinkage"].value <= 1.0
    _png_ok(c["plot"].value)
