from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rrr_live.backtest.data import panel_from_bars
from rrr_live.models import load_model
from rrr_live.strategy.signals import momentum_12_1, momentum_20d
from rrr_pipelines.lib.ml.baselines import (
    BaselineError,
    LinearBaseline,
    RidgeConfig,
    fit_ridge,
    fit_ridge_frame,
    rule_baseline,
    save_baseline,
)
from tests.pipelines.ml_eval.conftest import RealData


def _spec_dict(real: RealData) -> dict[str, object]:
    return {**real.spec.to_dict(), "fingerprint": real.spec.fingerprint()}


def test_ridge_never_sees_holdout_or_stacking_rows(real: RealData) -> None:
    frame = real.frame.copy()
    names = list(real.spec.names)
    base = fit_ridge_frame(frame, names)
    later = frame["segment"].isin(["holdout", "stacking"]).to_numpy()
    rng = np.random.default_rng(0)
    frame.loc[later, "label"] = rng.normal(0, 1, later.sum())  # labels wildly changed
    frame.loc[later, names] = frame.loc[later, names].to_numpy() * 3.0 + 1.0
    again = fit_ridge_frame(frame, names)
    np.testing.assert_array_equal(again.coef, base.coef)
    np.testing.assert_array_equal(again.feature_mean, base.feature_mean)
    np.testing.assert_array_equal(again.feature_std, base.feature_std)
    assert again.intercept == base.intercept
    assert again.info == base.info


def test_ridge_recovers_a_linear_signal_and_picks_the_penalty_on_validation() -> None:
    rng = np.random.default_rng(3)
    n, f = 4000, 5
    x = rng.normal(size=(n, f)) * np.array([1.0, 2.0, 0.5, 1.0, 3.0]) + 1.0
    true = np.array([0.5, -0.25, 0.0, 1.0, 0.1])
    y = x @ true + 0.2 + rng.normal(scale=0.1, size=n)
    train = np.arange(n) < 2500
    val = (np.arange(n) >= 2500) & (np.arange(n) < 3200)
    model = fit_ridge(x, y, train, val, [f"f{i}" for i in range(f)])
    curve = model.info["validation_curve"]
    best = min(curve.values())
    chosen = max(float(a) for a, mse in curve.items() if mse == best)
    assert model.info["alpha"] == pytest.approx(chosen)  # argmin of validation MSE
    assert model.info["alpha"] <= 0.01  # a clean signal wants little shrinkage
    # coefficients are on standardized features: divide by the scale to compare
    np.testing.assert_allclose(model.coef / model.feature_std, true, atol=0.01)
    np.testing.assert_allclose(model.predict(x[3200:]), x[3200:] @ true + 0.2, atol=0.05)
    pure_noise = rng.normal(size=n)
    shrunk = fit_ridge(x, pure_noise, train, val, [f"f{i}" for i in range(f)])
    assert shrunk.info["alpha"] > model.info["alpha"]


def test_ridge_matches_the_closed_form_on_the_chosen_penalty() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(600, 3))
    y = x @ np.array([0.3, 0.0, -0.2]) + rng.normal(size=600)
    train, val = np.arange(600) < 400, np.arange(600) >= 400
    model = fit_ridge(x, y, train, val, ["a", "b", "c"], RidgeConfig(alphas=(0.5,)))
    z = (x - model.feature_mean) / model.feature_std
    zc, yc = z - z.mean(axis=0), y - y.mean()
    expected = np.linalg.solve(zc.T @ zc / 600 + 0.5 * np.eye(3), zc.T @ yc / 600)
    np.testing.assert_allclose(model.coef, expected.astype(np.float32), rtol=1e-6)


def test_ridge_rejects_bad_segments() -> None:
    x, y = np.ones((10, 2)), np.ones(10)
    both = np.ones(10, dtype=bool)
    with pytest.raises(BaselineError, match="disjoint"):
        fit_ridge(x, y, both, both, ["a", "b"])
    with pytest.raises(BaselineError, match="alphas"):
        RidgeConfig(alphas=(0.0,))


@pytest.mark.parametrize("name", ["ridge", "buy_and_hold", "momentum_20d", "momentum_12_1"])
def test_packaged_baselines_round_trip(
    name: str, real: RealData, tmp_path: Path, linear_registered: None
) -> None:
    baseline = real.ridge if name == "ridge" else rule_baseline(name, real.spec)
    feats = real.frame.loc[real.holdout, list(real.spec.names)].to_numpy(np.float64)
    manifest = save_baseline(
        tmp_path / name, baseline, feature_spec=_spec_dict(real), canary_features=feats[:16]
    )
    assert manifest.members[0].architecture == "linear"
    assert manifest.metadata["baseline"]["name"] == name
    loaded = load_model(tmp_path / name)
    live = loaded.predict(feats).astype(np.float64)
    expected = baseline.predict(feats)
    scale = float(np.max(np.abs(expected)))
    np.testing.assert_allclose(live, expected, rtol=1e-5, atol=1e-6 * scale)
    if name == "buy_and_hold":
        np.testing.assert_array_equal(live, np.ones(len(feats)))


def test_momentum_baselines_have_the_trading_core_sign(real: RealData) -> None:
    panel = panel_from_bars(real.bars)
    rows = real.frame.loc[real.holdout]
    feats = rows[list(real.spec.names)].to_numpy(np.float64)
    ts_ns = rows["ts"].dt.as_unit("ns").astype("int64").to_numpy()
    sym = np.searchsorted(np.array(panel.symbols), rows["symbol"].to_numpy(str))
    key = {
        (int(t), int(s)): i
        for i, (t, s) in enumerate(zip(panel.ts_ns, panel.symbol_id, strict=True))
    }
    idx = np.array([key[(int(t), int(s))] for t, s in zip(ts_ns, sym, strict=True)])
    for name, signal in (("momentum_20d", momentum_20d()), ("momentum_12_1", momentum_12_1())):
        core = signal.precompute(panel)[idx]
        linear = rule_baseline(name, real.spec).predict(feats)
        np.testing.assert_array_equal(np.sign(linear), np.sign(core))
        np.testing.assert_allclose(linear, np.log1p(core), rtol=1e-9, atol=1e-12)


def test_unregistered_linear_architecture_is_a_clear_error(
    real: RealData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rrr_live.models.architecture_registry import ARCHITECTURES

    if "linear" in ARCHITECTURES:
        monkeypatch.delitem(ARCHITECTURES, "linear")  # type: ignore[attr-defined]
    with pytest.raises(BaselineError, match=r"rrr_live/models/architecture_registry\.py"):
        save_baseline(tmp_path / "x", real.ridge, feature_spec=_spec_dict(real))


def test_baseline_validation(real: RealData) -> None:
    with pytest.raises(BaselineError, match="unknown rule baseline"):
        rule_baseline("coin_flip", real.spec)
    with pytest.raises(BaselineError, match="name"):
        LinearBaseline("bad/name", ("a",), np.ones(1), 0.0, np.zeros(1), np.ones(1))
    with pytest.raises(BaselineError, match="feature_std"):
        LinearBaseline("ok", ("a",), np.ones(1), 0.0, np.zeros(1), np.zeros(1))
