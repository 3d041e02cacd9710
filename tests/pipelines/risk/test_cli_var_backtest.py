"""Acceptance: the CLI on arch's S&P 500 against a separate computation in this file."""

import io
import itertools

import arch.data.sp500
import numpy as np
import pandas as pd
import pytest
from arch import arch_model
from click.testing import CliRunner
from scipy import stats

from rrr_pipelines.cli.risk import risk

Z = {0.01: stats.norm.ppf(0.01), 0.05: stats.norm.ppf(0.05)}


@pytest.fixture(scope="module")
def sp500_returns():
    px = arch.data.sp500.load()["Adj Close"]
    return 100 * px.pct_change().dropna()


def _lr_stats(hits, p):
    hits = np.asarray(hits, dtype=int)
    n, x = len(hits), int(hits.sum())

    def ll(n0, n1, q):
        return (n0 * np.log(1 - q) if n0 else 0.0) + (n1 * np.log(q) if n1 else 0.0)

    lr_uc = -2 * (ll(n - x, x, p) - ll(n - x, x, x / n))
    pairs = list(itertools.pairwise(hits.tolist()))
    c = {k: sum(1 for a in pairs if a == k) for k in [(0, 0), (0, 1), (1, 0), (1, 1)]}
    n00, n01, n10, n11 = c[(0, 0)], c[(0, 1)], c[(1, 0)], c[(1, 1)]
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    p0 = n01 / (n00 + n01)
    p1 = n11 / (n10 + n11) if n10 + n11 else 0.0
    lr_ind = -2 * (ll(n00 + n10, n01 + n11, pi) - ll(n00, n01, p0) - ll(n10, n11, p1))
    return {
        "n": n,
        "x": x,
        "lr_uc": lr_uc,
        "p_uc": stats.chi2.sf(lr_uc, 1),
        "lr_ind": lr_ind,
        "p_ind": stats.chi2.sf(lr_ind, 1),
        "lr_cc": lr_uc + lr_ind,
        "p_cc": stats.chi2.sf(lr_uc + lr_ind, 2),
    }


def _reference_var(r, method, alpha):
    if method == "hs":
        return -r.rolling(250).quantile(alpha, interpolation="linear").shift(1)
    if method == "normal":
        return -(r.rolling(250).mean() + r.rolling(250).std() * Z[alpha]).shift(1)
    vals = r.to_numpy()  # ewma: zero mean, adjust=False, seeded per window with r[0]**2
    out = np.full(len(vals), np.nan)
    for t in range(250, len(vals)):
        s = vals[t - 250] ** 2
        for v in vals[t - 249 : t]:
            s = 0.94 * s + 0.06 * v * v
        out[t] = -np.sqrt(s) * Z[alpha]
    return pd.Series(out, index=r.index)


def _invoke(args):
    res = CliRunner().invoke(risk, args)
    assert res.exit_code == 0, res.output
    return pd.read_csv(io.StringIO(res.output))


def _lr_values(stats_row):
    """The likelihood-ratio statistics and p-values of a result row (or of ``_lr_stats``)."""
    return {k: float(stats_row[k]) for k in ("lr_uc", "p_uc", "lr_ind", "p_ind", "lr_cc", "p_cc")}


def test_rolling_methods_2000_2018(sp500_returns):
    args = [
        "var-backtest",
        "--source",
        "bundled",
        "--symbol",
        "SP500",
        "--start",
        "2000-01-01",
        "--end",
        "2018-12-31",
        "--csv",
        "-",
        "--alpha",
        "0.01",
        "--alpha",
        "0.05",
    ]
    for m in ("hs", "normal", "ewma"):
        args += ["--method", m]
    out = _invoke(args)
    assert list(out.columns) == [
        "model",
        "alpha",
        "n",
        "x",
        "expected",
        "lr_uc",
        "p_uc",
        "lr_ind",
        "p_ind",
        "lr_cc",
        "p_cc",
    ]
    r = sp500_returns
    for _, row in out.iterrows():
        var = _reference_var(r, row["model"], row["alpha"])["2000":"2018"]
        hits = (r["2000":"2018"] < -var).to_numpy()
        ref = _lr_stats(hits, row["alpha"])
        assert (row["n"], row["x"]) == (ref["n"], ref["x"])
        assert _lr_values(row) == pytest.approx(_lr_values(ref), rel=1e-6, abs=1e-12)
        assert row["expected"] == pytest.approx(row["n"] * row["alpha"])


def test_garch_skewt_fitted_through_2017(sp500_returns):
    out = _invoke(
        [
            "var-backtest",
            "--symbol",
            "SP500",
            "--method",
            "garch-skewt",
            "--alpha",
            "0.01",
            "--alpha",
            "0.05",
            "--fit-until",
            "2017-12-29",
            "--start",
            "2018-01-01",
            "--end",
            "2018-12-31",
            "--csv",
            "-",
        ]
    )
    r = sp500_returns
    res = arch_model(r, dist="skewt").fit(disp="off", last_obs="2018-01-01")
    fc = res.forecast(start="2017-12-29", reindex=False)  # origin t -> forecast for t + 1
    mean = fc.mean["h.1"].to_numpy()[:-1]
    sd = np.sqrt(fc.variance["h.1"].to_numpy()[:-1])
    r18 = r["2018"].to_numpy()
    for _, row in out.iterrows():
        q = res.model.distribution.ppf(row["alpha"], res.params[-2:])
        hits = r18 < mean + sd * q
        ref = _lr_stats(hits, row["alpha"])
        assert (row["n"], row["x"]) == (ref["n"], ref["x"])
        assert _lr_values(row) == pytest.approx(_lr_values(ref), rel=1e-6, abs=1e-12)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--symbol", "NOPE"], "unknown bundled symbol"),
        (["--symbol", "SP500", "--start", "2018-02-01", "--end", "2018-01-01"], "after"),
        (["--symbol", "SP500", "--start", "1999-06-01", "--end", "2000-01-01"], "longer than"),
        (["--symbol", "SP500", "--window", "6000"], "longer than"),
    ],
)
def test_bad_input_is_one_line_error(extra, message):
    base = {"--start": "2005-01-01", "--end": "2005-12-31"}
    args = ["var-backtest", "--method", "hs", "--alpha", "0.01", *extra]
    for k, v in base.items():
        if k not in extra:
            args += [k, v]
    res = CliRunner().invoke(risk, args)
    assert res.exit_code != 0
    assert message in res.output
    assert "Traceback" not in res.output
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit)


def test_csv_file_is_appended(tmp_path):
    target = tmp_path / "bt.csv"
    args = [
        "var-backtest",
        "--symbol",
        "NASDAQ",
        "--method",
        "hs",
        "--alpha",
        "0.05",
        "--start",
        "2010-01-01",
        "--end",
        "2010-12-31",
        "--csv",
        str(target),
    ]
    for _ in range(2):
        assert CliRunner().invoke(risk, args).exit_code == 0
    frame = pd.read_csv(target)
    assert len(frame) == 2 and frame["model"].tolist() == ["hs", "hs"]
