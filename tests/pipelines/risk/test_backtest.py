import numpy as np
import pandas as pd
import pytest

from rrr_live.risk.ewma import RiskInputError
from rrr_pipelines.lib.risk.backtest import (
    backtest_var,
    basel_plus_factor,
    basel_zone,
    christoffersen_independence,
    kupiec_pof,
)


def test_kupiec_published_example():
    lr, p = kupiec_pof(1043, 57, 0.05)
    assert round(lr, 5) == 0.46147
    assert round(p, 5) == 0.49694


def test_kupiec_edge_counts():
    lr0, p0 = kupiec_pof(250, 0, 0.01)
    assert lr0 == pytest.approx(-2 * 250 * np.log(0.99))
    assert 0 < p0 < 1
    with pytest.raises(RiskInputError):
        kupiec_pof(10, 11, 0.01)


def test_christoffersen_by_hand():
    hits = np.array([0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0], dtype=bool)
    # transitions: n00, n01, n10, n11 counted by hand
    n00, n01, n10, n11 = 6, 3, 3, 3
    pi, p0, p1 = 6 / 15, n01 / (n00 + n01), n11 / (n10 + n11)
    l0 = (n00 + n10) * np.log(1 - pi) + (n01 + n11) * np.log(pi)
    l1 = n00 * np.log(1 - p0) + n01 * np.log(p0) + n10 * np.log(1 - p1) + n11 * np.log(p1)
    lr, _ = christoffersen_independence(hits)
    assert lr == pytest.approx(-2 * (l0 - l1), rel=1e-12)
    assert christoffersen_independence(np.zeros(20, dtype=bool))[0] == 0.0


@pytest.mark.parametrize(
    ("x", "zone"), [(0, "green"), (4, "green"), (5, "yellow"), (9, "yellow"), (10, "red")]
)
def test_basel_zones_250_days(x, zone):
    assert basel_zone(250, x, 0.01) == zone


def test_basel_plus_factor():
    assert [basel_plus_factor(x) for x in (4, 5, 9, 10)] == [0.0, 0.40, 0.85, 1.0]


def test_backtest_lists_exceedances():
    idx = pd.date_range("2020-01-01", periods=5, tz="UTC", name="ts")
    ret = pd.Series([-1.0, -3.0, 0.5, -2.0, -2.5], index=idx)
    var = pd.Series([2.0, 2.0, 2.0, 2.0, 2.0], index=idx)
    res = backtest_var(ret, var, 0.05, "m")
    assert (res.n, res.x) == (5, 2)  # -2.0 is not below -2.0
    assert res.exceedances.index.tolist() == [idx[1], idx[4]]
    assert res.exceedances["excess"].tolist() == pytest.approx([1.0, 0.5])
    assert res.lr_cc == pytest.approx(res.lr_uc + res.lr_ind)
    with pytest.raises(RiskInputError, match="same index"):
        backtest_var(ret, var.iloc[1:], 0.05, "m")
