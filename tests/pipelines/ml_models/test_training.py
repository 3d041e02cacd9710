from __future__ import annotations

import numpy as np
import pytest
import torch

from rrr_live.errors import ConfigError
from rrr_live.models import load_model, save_model
from rrr_pipelines.lib.ml.ensemble import fit_stacking_weights
from rrr_pipelines.lib.ml.lightning_modules import window_rows
from rrr_pipelines.lib.ml.predict import member_predictions, predict_rows
from rrr_pipelines.lib.ml.training import (
    TrainingData,
    realized_vol_target,
    standardization,
    train_ensemble,
    train_member,
)
from rrr_pipelines.lib.ml.training_config import EnsembleConfig, MemberConfig


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _fit(cfg, data, window=0, seed=7):
    mean, std = standardization(data.X, data.masks["train"])
    wins = window_rows(data.ts, data.symbols, window) if window else None
    return train_member(
        cfg,
        data.X,
        data.y,
        data.masks,
        feature_mean=mean,
        feature_std=std,
        windows=wins,
        window=window,
        seed=seed,
    )


@pytest.mark.parametrize(
    ("arch", "hparams", "window"),
    [("mlp", {"hidden": 16, "dropout": 0.1}, 0), ("lstm", {"hidden": 8}, 10)],
)
def test_same_seed_gives_identical_weights(small_data, arch, hparams, window):
    cfg = MemberConfig("m", arch, hparams, max_epochs=2, batch_size=64)
    a, b = _fit(cfg, small_data, window), _fit(cfg, small_data, window)
    assert a.weights_sha256 == b.weights_sha256
    assert a.history == b.history
    c = _fit(cfg, small_data, window, seed=8)
    assert c.weights_sha256 != a.weights_sha256


def test_early_stopping_restores_the_best_epoch(small_data):
    reports = []
    cfg = MemberConfig(
        "mlp", "mlp", {"hidden": 32}, lr=3e-2, max_epochs=40, patience=2, batch_size=64
    )
    mean, std = standardization(small_data.X, small_data.masks["train"])
    tm = train_member(
        cfg,
        small_data.X,
        small_data.y,
        small_data.masks,
        feature_mean=mean,
        feature_std=std,
        seed=1,
        progress=lambda m, e, met: reports.append((m, e, dict(met))),
    )
    val_losses = [h["val_loss"] for h in tm.history]
    assert len(tm.history) < 40  # stopped early
    assert tm.best_val_loss == pytest.approx(min(val_losses))
    assert [e for _, e, _ in reports] == list(range(len(tm.history)))
    assert {m for m, _, _ in reports} == {"mlp"}
    assert set(reports[0][2]) == {"train_loss", "val_loss"}
    # the kept weights reproduce the best validation loss
    rows = small_data.masks["validation"] & np.isfinite(small_data.y)
    with torch.no_grad():
        x = torch.from_numpy(((small_data.X[rows] - mean) / std).astype(np.float32))
        pred = tm.member.network(x).numpy()
    z = (small_data.y[rows] - tm.member.target_mean) / tm.member.target_std
    assert float(np.mean((pred - z) ** 2)) == pytest.approx(tm.best_val_loss, rel=1e-4)


def test_member_fed_pure_noise_gets_near_zero_stacking_weight():
    rng = np.random.default_rng(0)
    n = 3000
    x = rng.normal(size=(n, 4))
    y = 0.6 * x[:, 0] - 0.4 * x[:, 1] * x[:, 2] + 0.5 * rng.normal(size=n)
    seg = np.arange(n)
    masks = {
        "train": seg < 1800,
        "validation": (seg >= 1800) & (seg < 2300),
        "stacking": seg >= 2300,
    }
    names = ("a", "b", "c", "d")
    real = TrainingData(x, y, masks, names)
    noise = TrainingData(rng.normal(size=(n, 4)), y, masks, names)
    cfg = MemberConfig("m", "mlp", {"hidden": 16}, max_epochs=8, batch_size=128, lr=1e-2)
    preds = []
    for data in (real, noise):
        mean, std = standardization(data.X, masks["train"])
        tm = train_member(cfg, data.X, data.y, masks, feature_mean=mean, feature_std=std, seed=3)
        with torch.no_grad():
            xs = torch.from_numpy(((data.X - mean) / std).astype(np.float32))
            preds.append(
                tm.member.network(xs).numpy() * tm.member.target_std + tm.member.target_mean
            )
    st = masks["stacking"]
    res = fit_stacking_weights(np.column_stack(preds)[st], y[st], ["real", "noise"])
    assert res.weights["noise"] < 0.05
    assert res.weights["real"] > 0.95


def test_realized_vol_target_is_the_forward_rms():
    r = np.array([0.01, -0.02, 0.03, 0.04, 0.5, -0.1])
    ts = np.array([1, 2, 3, 4, 1, 2])
    sym = np.array(["A", "A", "A", "A", "B", "B"])
    out = realized_vol_target(r, ts, sym, horizon=2)
    assert out[0] == pytest.approx(0.5 * np.log((0.02**2 + 0.03**2) / 2 + 1e-12))
    assert out[1] == pytest.approx(0.5 * np.log((0.03**2 + 0.04**2) / 2 + 1e-12))
    assert np.isnan(out[2:]).all()


def test_config_from_dict_validates():
    cfg = EnsembleConfig.from_dict(
        {
            "members": [{"name": "a", "architecture": "mlp", "hparams": {"hidden": 8}}],
            "live_members": ["a"],
            "window": 10,
        }
    )
    assert cfg.members[0].hparams == {"hidden": 8} and cfg.live_members == ("a",)
    assert cfg.to_params()["members.a.hparams"] == '{"hidden": 8}'
    with pytest.raises(ConfigError, match="hiden"):
        EnsembleConfig.from_dict(
            {"members": [{"name": "a", "architecture": "mlp", "hparams": {"hiden": 8}}]}
        )
    with pytest.raises(ConfigError, match="live_members"):
        EnsembleConfig(members=cfg.members, live_members=("zz",))


def test_train_ensemble_end_to_end_and_serve(small_data, tmp_path):
    cfg = EnsembleConfig(
        members=(
            MemberConfig("mlp", "mlp", {"hidden": 16}, max_epochs=3, batch_size=64),
            MemberConfig("tcn", "tcn", {"channels": 8, "levels": 3}, max_epochs=2, batch_size=64),
            MemberConfig(
                "vol",
                "har_vol",
                {"lags": [1, 5, 10]},
                role="volatility",
                max_epochs=3,
                lr=1e-2,
                batch_size=64,
            ),
        ),
        window=10,
        return_feature="ret_1",
        num_threads=1,
        live_members=("mlp", "vol"),
    )
    seen = []
    res = train_ensemble(cfg, small_data, progress=lambda m, e, met: seen.append(m))
    assert set(seen) == {"mlp", "tcn", "vol"}
    ens = res.ensemble
    assert set(ens.weights) == {"mlp", "tcn"} and sum(ens.weights.values()) == pytest.approx(1)
    assert ens.volatility_member == "vol"
    d = tmp_path / "model"
    save_model(d, ens, feature_spec={"version": "test"}, metadata={"seconds": res.seconds})
    loaded = load_model(d)
    hold = small_data.masks["holdout"]
    batch = predict_rows(ens, small_data, hold)
    wins = window_rows(small_data.ts, small_data.symbols, 10)[hold]
    ok = wins[:, 0] >= 0
    x = small_data.X.astype(np.float32)
    served = loaded.predict(x[hold][ok], x[wins[ok]])
    np.testing.assert_allclose(served, batch[ok], atol=1e-6)
    vol = loaded.predict_volatility(None, x[wins[ok]])
    assert np.all(vol > 0) and np.all(vol < 1)
    every = member_predictions(ens, small_data, ["tcn"], hold)["tcn"]
    assert np.isnan(every[~ok]).all() and np.isfinite(every[ok]).all()


def test_train_ensemble_restores_the_torch_thread_count(small_data):
    cfg = EnsembleConfig(
        members=(MemberConfig("mlp", "mlp", {"hidden": 4}, max_epochs=1, batch_size=256),),
        return_feature="ret_1",
        num_threads=2,
    )
    seen = []
    train_ensemble(cfg, small_data, progress=lambda m, e, met: seen.append(torch.get_num_threads()))
    assert seen and set(seen) == {2}  # the configured count while training
    assert torch.get_num_threads() == 1  # the caller's count afterwards (set by _one_thread)
