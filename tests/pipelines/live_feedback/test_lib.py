"""Pure live-feedback maths on hand-checkable numbers (expected values computed here)."""

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from rrr_pipelines.lib.live_feedback.drift import (
    DriftInputError,
    bin_shares,
    feature_drift,
    psi,
    quantile_edges,
)
from rrr_pipelines.lib.live_feedback.journal import Batch, Fill, JournalBar
from rrr_pipelines.lib.live_feedback.performance import (
    equity_pnl,
    last_closes,
    mean_slippage,
    net_positions,
    position_values,
    scored_pairs,
    slippage,
    version_scores,
)
from rrr_pipelines.lib.live_feedback.staleness import model_staleness

EPS = 1e-4


def test_quantile_edges_of_0_to_99_in_quarters() -> None:
    # linear quantiles of 0..99 at 1/4, 1/2, 3/4: 0.25 * 99 = 24.75, 49.5, 74.25
    assert quantile_edges(np.arange(100), bins=4).tolist() == [24.75, 49.5, 74.25]


def test_psi_of_a_sample_in_one_quarter_by_hand() -> None:
    ref = np.arange(100.0)  # 25 values in each quarter
    live = np.tile(np.arange(25.0), 2)  # 50 values, all in the first quarter (<= 24)
    expected = (1.0 - 0.25) * math.log(1.0 / 0.25) + 3 * (EPS - 0.25) * math.log(EPS / 0.25)
    assert psi(ref, live, bins=4) == pytest.approx(expected, rel=1e-12)


def test_psi_is_zero_for_the_same_sample_and_ignores_non_finite_values() -> None:
    ref = np.arange(100.0)
    assert psi(ref, ref, bins=10) == 0.0
    assert psi(ref, np.concatenate([ref, [np.nan, np.inf]]), bins=10) == 0.0


def test_psi_edges_are_left_closed() -> None:
    # edges [1.5] of [1, 2]: 1.5 itself belongs to the upper bin (searchsorted side=right)
    edges = quantile_edges([1.0, 2.0], bins=2)
    assert edges.tolist() == [1.5]
    assert bin_shares([1.5, 1.5, 1.0, 2.0], edges).tolist() == [0.25, 0.75]


def test_constant_reference_gets_two_bins_and_no_drift_when_unchanged() -> None:
    edges = quantile_edges(np.full(50, 5.0), bins=10)
    assert edges.tolist() == [5.0]
    assert psi(np.full(50, 5.0), np.full(30, 5.0)) == 0.0
    # all live values below it: p_live = [1, eps], p_ref = [eps, 1]
    expected = 2 * (1 - EPS) * math.log(1 / EPS)
    assert psi(np.full(50, 5.0), np.full(30, 4.0)) == pytest.approx(expected)


def test_psi_refuses_empty_samples_and_one_bin() -> None:
    with pytest.raises(DriftInputError, match="no finite value"):
        psi([np.nan], [1.0])
    with pytest.raises(DriftInputError, match="at least 2 bins"):
        psi([1.0, 2.0], [1.0], bins=1)


def test_feature_drift_judges_skips_and_names_drifted_features() -> None:
    ref = pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0), "c": np.arange(100.0)})
    live = pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0) + 1000.0,
                         "c": [1.0] * 10 + [np.nan] * 90})  # fmt: skip
    rep = feature_drift(ref, live, ["a", "b", "c", "d"], min_count=20, skip=["d"])
    assert rep.drifted == ["b"]
    assert [f.feature for f in rep.features] == ["a", "b"]
    assert rep.skipped["d"] == "excluded" and "too few" in rep.skipped["c"]
    # b: everything in the top bin of 10: 0.9 * ln(1/0.1) + 9 * (eps - 0.1) * ln(eps/0.1)
    expected = 0.9 * math.log(10) + 9 * (EPS - 0.1) * math.log(EPS / 0.1)
    assert rep.max_psi == pytest.approx(expected)


def _batch(seq: int, closes: dict[str, float], fc: dict[str, float] | None = None,
           shadow: dict[str, float] | None = None, equity: float | None = None,
           opens: dict[str, float] | None = None) -> Batch:  # fmt: skip
    syms = tuple(sorted(closes))
    bars = tuple(JournalBar(s, seq * 10, seq * 10 + 10, (opens or closes)[s], 0, 0, closes[s], 1)
                 for s in syms)  # fmt: skip
    return Batch(
        seq, seq * 10**9, equity, syms, tuple(closes[s] for s in syms), "7",
        "8" if shadow else "", tuple((fc or {}).get(s) for s in syms) if fc else None,
        tuple(shadow.get(s) for s in syms) if shadow else None, bars,
    )  # fmt: skip


def test_scores_pair_each_forecast_with_the_next_bar_only() -> None:
    batches = [
        _batch(1, {"A": 100.0, "B": 50.0}, {"A": 0.02, "B": -0.01}, {"A": -0.02, "B": 0.01}),
        _batch(2, {"A": 110.0, "B": 45.0}, {"A": 0.01, "B": 0.03}, {"A": -0.01, "B": -0.03}),
        _batch(3, {"A": 99.0, "B": 54.0}, {"A": 0.05, "B": 0.05}),  # last: no pair yet
    ]
    pairs = scored_pairs(batches)
    champ = pairs[pairs["role"] == "champion"]
    realized = [110 / 100 - 1, 45 / 50 - 1, 99 / 110 - 1, 54 / 45 - 1]  # A1 B1 A2 B2
    assert champ["realized"].tolist() == pytest.approx(realized)
    assert champ["forecast"].tolist() == [0.02, -0.01, 0.01, 0.03]
    assert len(pairs[pairs["role"] == "shadow"]) == 4  # batch 3 has no shadow, no next bar
    scores = version_scores(pairs).set_index("role")
    f, r = np.array([0.02, -0.01, 0.01, 0.03]), np.array(realized)
    ic = ((f - f.mean()) * (r - r.mean())).sum() / math.sqrt(
        ((f - f.mean()) ** 2).sum() * ((r - r.mean()) ** 2).sum()
    )
    assert scores.loc["champion", "ic"] == pytest.approx(ic)
    # signs: (+,+) (-,-) (+,-) (+,+): 3 of 4 agree
    assert scores.loc["champion", "hit_rate"] == 0.75
    assert scores.loc["champion", "version"] == "7" and scores.loc["champion", "n"] == 4
    # shadow: (-,+) (+,-) (-,-) (-,+): 1 of 4 agree
    assert scores.loc["shadow", "hit_rate"] == 0.25 and scores.loc["shadow", "version"] == "8"


def test_equity_pnl_and_drawdown_by_hand() -> None:
    batches = [_batch(i + 1, {"A": 1.0}, equity=e) for i, e in enumerate([100, 110, 99, 120])]
    pnl = equity_pnl(batches)
    assert pnl.pnl == 20.0
    assert pnl.max_drawdown == pytest.approx(1 - 99 / 110)


def test_slippage_against_decision_close_and_backtest_price() -> None:
    batches = [_batch(1, {"A": 100.0}), _batch(2, {"A": 102.0}, opens={"A": 101.0})]
    fills = [Fill(1, 0, "A", "BUY", 2.0, 101.5, 0.0), Fill(1, 0, "A", "SELL", 1.0, 100.5, 0.0),
             Fill(2, 0, "A", "BUY", 1.0, 103.0, 0.0)]  # fmt: skip
    t = slippage(fills, batches, half_spread_bps=1.0)
    assert t["slip_decision_bps"].tolist()[:2] == pytest.approx([150.0, -50.0])
    bt_buy, bt_sell = 101.0 * (1 + 1e-4), 101.0 * (1 - 1e-4)
    assert t["backtest_price"].tolist()[:2] == pytest.approx([bt_buy, bt_sell])
    assert t["slip_backtest_bps"].iloc[0] == pytest.approx((101.5 - bt_buy) / bt_buy * 1e4)
    assert t["slip_backtest_bps"].iloc[1] == pytest.approx(-(100.5 - bt_sell) / bt_sell * 1e4)
    assert math.isnan(t["slip_backtest_bps"].iloc[2])  # batch 2's next bar has not closed
    w = np.array([2 * 101.5, 100.5, 103.0])
    expected = (150.0 * w[0] - 50.0 * w[1] + (103 - 102) / 102 * 1e4 * w[2]) / w.sum()
    assert mean_slippage(t, "slip_decision_bps") == pytest.approx(expected)


def test_positions_from_fills_valued_at_the_last_close() -> None:
    fills = [Fill(1, 0, "A", "BUY", 2.0, 1, 0), Fill(2, 0, "A", "SELL", 0.5, 1, 0),
             Fill(2, 0, "B", "BUY", 1.0, 1, 0), Fill(3, 0, "B", "SELL", 1.0, 1, 0)]  # fmt: skip
    held = net_positions(fills)
    assert held == {"A": 1.5}
    closes = last_closes([_batch(1, {"A": 10.0, "B": 3.0}), _batch(2, {"A": 12.0})])
    assert position_values(held, closes) == {"A": 18.0}
    with pytest.raises(KeyError, match="C"):
        position_values({"C": 1.0}, closes)


def test_staleness_by_hand() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    trained = datetime(2026, 1, 1, tzinfo=UTC)
    s = model_staleness(now=now, version="4", promoted_at=datetime(2026, 2, 1, tzinfo=UTC),
                        trained_before=trained, bars_since=2, max_data_age_days=30,
                        max_bars_since=1)  # fmt: skip
    assert (s.champion_age_days, s.data_age_days, s.bars_since) == (28.0, 59.0, 2)
    assert s.stale and len(s.reasons) == 2
    fresh = model_staleness(now=now, version="4", promoted_at=None, trained_before=trained,
                            bars_since=2, max_data_age_days=60)  # fmt: skip
    assert not fresh.stale and math.isnan(fresh.champion_age_days)
