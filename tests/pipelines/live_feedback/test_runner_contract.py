"""The readers take what the runner writes: ``batch_json`` reports, and the same live scores."""

import json

import numpy as np
import pytest

from rrr_live.inference.worker import BatchScores
from rrr_live.service.bars import ClosedBar
from rrr_live.service.journal_sink import LiveScores, batch_json
from rrr_live.service.trader import BatchReport
from rrr_pipelines.lib.live_feedback.journal import batch_from_row
from rrr_pipelines.lib.live_feedback.performance import scored_pairs, version_scores

S = 1_000_000_000


def _reports(n: int = 40) -> list[BatchReport]:
    rng = np.random.default_rng(11)
    closes = {"AAA": 10.0, "BBB": 20.0, "CCC": 30.0}
    out = []
    for k in range(n):
        syms = ["AAA", "BBB"] if k % 7 == 3 else ["AAA", "BBB", "CCC"]  # a symbol sits one out
        for s in syms:
            closes[s] *= float(np.exp(0.01 * rng.standard_normal()))
        fc = rng.standard_normal(len(syms)) * 0.01
        if k % 5 == 0:
            fc[0] = np.nan  # a row the model could not score
        shadow = None if k < 10 else rng.standard_normal(len(syms)) * 0.01  # shadow joins late
        scores = BatchScores("7", fc, "9" if shadow is not None else "", shadow)
        start = k * S
        bars = [ClosedBar(s, start, start + S, closes[s], closes[s], closes[s], closes[s], 5.0, 3)
                for s in syms]  # fmt: skip
        px = [closes[s] for s in syms]
        out.append(BatchReport(ts_ns=start + S, seq=k + 1, symbols=syms, skipped_gapped=[],
                               scores=scores, closes=px, bars=bars))  # fmt: skip
    return out


def test_batch_json_reads_back_field_for_field() -> None:
    r = _reports(1)[0]
    b = batch_from_row(r.seq, r.ts_ns, None, json.loads(json.dumps(batch_json(r))))
    assert (b.seq, b.ts_ns, b.symbols, b.closes) == (1, S, ("AAA", "BBB", "CCC"), tuple(r.closes))
    assert b.champion == "7" and b.forecast is not None and b.forecast[0] is None  # NaN -> None
    assert [(x.symbol, x.start_ns, x.end_ns, x.close) for x in b.bars] == [
        (x.symbol, x.start_ns, x.end_ns, x.close) for x in r.bars
    ]


def test_journal_scores_equal_the_runners_own_live_scores() -> None:
    reports = _reports()
    runner = LiveScores()
    for r in reports:
        runner.on_batch(r)
    batches = [batch_from_row(r.seq, r.ts_ns, None, json.loads(json.dumps(batch_json(r))))
               for r in reports]  # fmt: skip
    ours = version_scores(scored_pairs(batches)).set_index("version")
    live = runner.view()
    assert sorted(ours.index) == sorted(live) == ["7", "9"]
    for version, v in live.items():
        assert ours.loc[version, "n"] == v["n"]
        assert ours.loc[version, "ic"] == pytest.approx(v["ic"], rel=1e-9)
        assert ours.loc[version, "hit_rate"] == pytest.approx(v["hit_rate"], rel=1e-12)
