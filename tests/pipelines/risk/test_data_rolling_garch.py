import numpy as np
import pandas as pd
import pytest
from arch import arch_model

from rrr_live.risk.ewma import RiskInputError
from rrr_live.risk.var import cornish_fisher_var_es, ewma_var_es, historical_var_es
from rrr_pipelines.lib.risk.data import load_returns, percent_returns, returns_from_bars
from rrr_pipelines.lib.risk.garch import fhs_var_es, garch_skewt_forecasts
from rrr_pipelines.lib.risk.rolling import rolling_var_forecasts


def _series(values, start="2001-01-01"):
    idx = pd.date_range(start, periods=len(values), freq="B", tz="UTC", name="ts")
    return pd.Series(values, index=idx, dtype="float64")


def test_percent_returns_and_errors():
    r = percent_returns(_series([100.0, 110.0, 99.0]))
    assert r.tolist() == pytest.approx([10.0, -10.0])
    with pytest.raises(RiskInputError, match="missing"):
        percent_returns(_series([100.0, np.nan, 99.0]))
    with pytest.raises(RiskInputError, match="non-positive"):
        percent_returns(_series([100.0, 0.0, 99.0]))


def test_returns_from_bars_wide_inner_join():
    ts = pd.date_range("2020-01-01", periods=4, freq="D", tz="UTC")
    rows = []
    for sym, px in {"A": [10, 11, 12, 13], "B": [20, 22, 22, 11]}.items():
        for t, p in zip(ts, px, strict=True):
            rows.append(
                {
                    "source": "x",
                    "symbol": sym,
                    "interval": "1d",
                    "ts": t,
                    "open": p,
                    "high": p,
                    "low": p,
                    "close": p,
                    "adj_close": float(p),
                    "volume": 1.0,
                }
            )
    wide = returns_from_bars(pd.DataFrame(rows).drop(index=6))  # B misses day 3
    assert list(wide.columns) == ["A", "B"]
    assert wide.index.tolist() == [ts[1], ts[3]]
    assert wide.loc[ts[3], "B"] == pytest.approx(-50.0)  # 22 -> 11 over the gap


def test_load_returns_bundled():
    r = load_returns("bundled", "NASDAQ")
    assert str(r.index.tz) == "UTC" and len(r) == 5030
    with pytest.raises(RiskInputError, match="unknown price source"):
        load_returns("db", "NASDAQ")


def test_rolling_forecasts_match_live_forms():
    r = _series(np.random.default_rng(0).standard_t(4, 400))
    start, end = r.index[300], r.index[-1]
    for method, fn in [
        ("hs", historical_var_es),
        ("cornish-fisher", cornish_fisher_var_es),
        ("ewma", ewma_var_es),
    ]:
        f = rolling_var_forecasts(r, method, 0.01, start, end, window=100)
        assert len(f) == 100
        for k in (0, 57, 99):  # day 300 + k uses returns 200 + k .. 299 + k
            window = r.to_numpy()[200 + k : 300 + k]
            assert f["var"].iloc[k] == pytest.approx(fn(window, 0.01).var, rel=1e-10)


def test_rolling_rejects_nan_and_short_history():
    r = _series(np.r_[np.zeros(50), np.nan, np.ones(50)])
    with pytest.raises(RiskInputError, match="NaN"):
        rolling_var_forecasts(r, "hs", 0.01, r.index[60], r.index[-1], window=20)
    r = _series(np.random.default_rng(1).normal(size=100))
    with pytest.raises(RiskInputError, match="longer than"):
        rolling_var_forecasts(r, "hs", 0.01, r.index[50], r.index[-1], window=60)
    with pytest.raises(RiskInputError, match="unknown"):
        rolling_var_forecasts(r, "magic", 0.01, r.index[50], r.index[-1], window=20)


def test_garch_fit_must_precede_evaluation():
    r = load_returns("bundled", "SP500")
    t = pd.Timestamp("2018-01-02", tz="UTC")
    with pytest.raises(RiskInputError, match="before the first evaluation day"):
        garch_skewt_forecasts(r, 0.01, t, pd.Timestamp("2018-01-01", tz="UTC"), t)
    frame, fit = garch_skewt_forecasts(
        r, 0.01, pd.Timestamp("2017-12-29", tz="UTC"), t, pd.Timestamp("2018-01-31", tz="UTC")
    )
    assert fit.fit_until == pd.Timestamp("2017-12-29", tz="UTC")
    assert (frame["es"] > frame["var"]).all() and len(frame) == 21


def test_fhs_one_day_from_standardized_residuals():
    r = load_returns("bundled", "SP500").to_numpy()[-1500:]
    got = fhs_var_es(r, 0.01)
    res = arch_model(r, dist="normal").fit(disp="off")
    z = res.resid / res.conditional_volatility
    p = res.params
    s2 = (
        p["omega"]
        + p["alpha[1]"] * (r[-1] - p["mu"]) ** 2
        + p["beta[1]"] * res.conditional_volatility[-1] ** 2
    )
    assert got.var == pytest.approx(-(p["mu"] + np.sqrt(s2) * np.quantile(z, 0.01)), rel=1e-6)
    ten = fhs_var_es(r, 0.01, horizon=10, n_sims=4000, seed=1)
    assert ten.es >= ten.var > got.var


def test_fhs_on_minute_scale_returns_is_the_rescaled_figure():
    # percent returns of minute bars are ~1e-2: arch is fitted on them rescaled, figures scaled back
    r = load_returns("bundled", "SP500").to_numpy()[-1500:]
    small = fhs_var_es(r / 100, 0.01)  # no DataScaleWarning (warnings are errors here)
    whole = fhs_var_es(r, 0.01)
    assert small.var == pytest.approx(whole.var / 100, rel=1e-3)
    assert small.es == pytest.approx(whole.es / 100, rel=1e-3)
