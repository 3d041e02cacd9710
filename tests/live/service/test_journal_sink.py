"""Live scores and the run summary: pooled IC and hit rate per version, percentiles, atomic JSON."""

from __future__ import annotations

import json

import numpy as np

from rrr_live.inference.worker import BatchScores
from rrr_live.service.journal_sink import LiveScores, percentiles, write_json_atomic
from rrr_live.service.trader import BatchReport


def _report(seq: int, closes: list[float], champ: list[float], shadow: list[float]) -> BatchReport:
    scores = BatchScores("1", np.array(champ), "2", np.array(shadow))
    return BatchReport(seq, seq, ["A", "B", "C"], [], scores=scores, closes=closes)


def test_each_forecast_is_scored_against_the_next_bar_return_per_version():
    rng = np.random.default_rng(0)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, size=(12, 3)), axis=0))
    champ, shadow = rng.normal(size=(12, 3)), rng.normal(size=(12, 3))
    champ[4, 1] = np.nan  # a row the model did not forecast is not scored
    live = LiveScores()
    for t in range(12):
        live.on_batch(_report(t, closes[t].tolist(), champ[t].tolist(), shadow[t].tolist()))
    realized = closes[1:] / closes[:-1] - 1
    view = live.view()
    for version, f in (("1", champ[:-1]), ("2", shadow[:-1])):
        ok = np.isfinite(f)
        x, y = f[ok], realized[ok]
        assert view[version]["n"] == ok.sum()
        assert abs(view[version]["ic"] - np.corrcoef(x, y)[0, 1]) < 1e-12
        assert view[version]["hit_rate"] == np.mean(np.sign(x) == np.sign(y))
    assert view["1"]["n"] == 32 and view["2"]["n"] == 33


def test_percentiles_are_milliseconds_and_empty_is_explicit(tmp_path):
    p = percentiles([1_000_000 * k for k in range(1, 101)])
    assert p["n"] == 100 and p["p50"] == 50.5 and p["p99"] <= p["p999"] <= 100
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None, "p999": None, "n": 0}
    target = tmp_path / "out" / "summary.json"
    write_json_atomic(target, {"a": p})
    assert json.loads(target.read_text())["a"]["n"] == 100
    assert [f.name for f in target.parent.iterdir()] == ["summary.json"]
