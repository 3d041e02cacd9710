"""Train ensemble members with Lightning and stack them (Dagster-free).

Inputs are plain numpy arrays: a feature matrix ``X (n, F)``, a label ``y (n,)``, boolean
segment masks (``train``, ``validation``, ``stacking``, ``holdout``) and per-row ``(ts, symbol)``
keys for window members. Output is a :class:`rrr_live.models.Ensemble`, the object
:func:`rrr_live.models.save_model` writes, wrapped in :class:`TrainedEnsemble` with diagnostics.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import numpy as np
import numpy.typing as npt
import torch
from lightning.pytorch.callbacks import EarlyStopping

from rrr_live.models import Ensemble, Member, build_network
from rrr_live.models.architecture_registry import input_kind
from rrr_pipelines.lib.ml.ensemble import StackingResult, fit_stacking_weights
from rrr_pipelines.lib.ml.lightning_modules import (
    BestWeights,
    ProgressHook,
    ProgressReporter,
    RegressionModule,
    RowDataset,
    TrainingDataError,
    WindowDataset,
    make_loader,
    window_rows,
)
from rrr_pipelines.lib.ml.predict import member_predictions
from rrr_pipelines.lib.ml.training_config import EnsembleConfig, MemberConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingData:
    """Everything training needs, as aligned numpy arrays.

    Attributes:
        X: ``(n, F)`` finite float features.
        y: ``(n,)`` label (NaN where unknown; such rows are skipped).
        masks: Boolean ``(n,)`` masks for ``train``, ``validation``, ``stacking`` (``holdout``
            optional); rows of one segment are never used to fit another's step.
        feature_names: The F column names.
        ts: ``(n,)`` row timestamps (needed by window members).
        symbols: ``(n,)`` row symbols (needed by window members).
        y_vol: ``(n,)`` log realized volatility label of the volatility member (optional; else
            derived from ``EnsembleConfig.return_feature``).
    """

    X: npt.NDArray[np.floating]
    y: npt.NDArray[np.floating]
    masks: Mapping[str, npt.NDArray[np.bool_]]
    feature_names: Sequence[str]
    ts: npt.NDArray[Any] | None = None
    symbols: npt.NDArray[Any] | None = None
    y_vol: npt.NDArray[np.floating] | None = None

    def __post_init__(self) -> None:
        n = self.X.shape[0]
        if self.X.ndim != 2 or self.X.shape[1] != len(self.feature_names):
            raise TrainingDataError(f"X {self.X.shape} vs {len(self.feature_names)} feature names")
        if not np.isfinite(self.X).all():
            raise TrainingDataError("X contains NaN/inf; drop or fill those rows first")
        for name, arr in (
            ("y", self.y),
            ("ts", self.ts),
            ("symbols", self.symbols),
            ("y_vol", self.y_vol),
        ):
            if arr is not None and np.shape(arr) != (n,):
                raise TrainingDataError(f"{name} has shape {np.shape(arr)}, expected ({n},)")
        for seg in ("train", "validation", "stacking"):
            mask = self.masks.get(seg)
            if mask is None or mask.shape != (n,) or mask.dtype != np.bool_:
                raise TrainingDataError(f"masks[{seg!r}] must be a bool array of shape ({n},)")


@dataclass(frozen=True)
class TrainedMember:
    """A trained member and its training record.

    Attributes:
        member: The member (network in eval mode, on CPU).
        history: Per-epoch ``{"epoch", "train_loss", "val_loss"}``.
        best_epoch: Epoch whose weights were kept.
        best_val_loss: Validation loss of that epoch (standardized label units).
        seconds: Wall time of ``fit``.
        weights_sha256: sha256 over the state dict (names, shapes and bytes).
        n_train: Training rows.
        n_validation: Validation rows.
    """

    member: Member
    history: list[dict[str, float]]
    best_epoch: int
    best_val_loss: float
    seconds: float
    weights_sha256: str
    n_train: int
    n_validation: int


@dataclass(frozen=True)
class TrainedEnsemble:
    """Result of :func:`train_ensemble`.

    Attributes:
        ensemble: The servable ensemble (pass to :func:`rrr_live.models.save_model`).
        members: Training records by member name.
        stacking: Stacking fit on the stacking segment.
        seconds: Total wall time.
    """

    ensemble: Ensemble
    members: dict[str, TrainedMember]
    stacking: StackingResult
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)


def state_dict_sha256(module: torch.nn.Module) -> str:
    """Hash a module's state dict (names, shapes, dtypes and raw bytes).

    Args:
        module: Any module.

    Returns:
        Hex sha256.
    """
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def resolve_accelerator(accelerator: str) -> str:
    """Map ``"auto"`` to ``"gpu"`` when CUDA is present, else ``"cpu"``.

    Args:
        accelerator: ``"auto"``, ``"cpu"`` or ``"gpu"``.

    Returns:
        A Lightning accelerator name.
    """
    if accelerator == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return accelerator


def standardization(
    x: npt.NDArray[np.floating], rows: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Per-feature mean and std over ``rows`` (std of constant features set to 1).

    Args:
        x: ``(n, F)`` features.
        rows: Rows to fit on (the training segment).

    Returns:
        ``(mean, std)`` as float32 arrays of shape ``(F,)``.
    """
    if not rows.any():
        raise TrainingDataError("the train segment is empty")
    mean = x[rows].mean(axis=0)
    std = x[rows].std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def train_member(
    config: MemberConfig,
    x: npt.NDArray[np.floating],
    y: npt.NDArray[np.floating],
    masks: Mapping[str, npt.NDArray[np.bool_]],
    *,
    feature_mean: npt.NDArray[np.float32],
    feature_std: npt.NDArray[np.float32],
    windows: npt.NDArray[np.intp] | None = None,
    window: int = 0,
    seed: int = 0,
    accelerator: str = "cpu",
    progress: ProgressHook | None = None,
) -> TrainedMember:
    """Train one member on ``masks["train"]`` with early stopping on ``masks["validation"]``.

    Args:
        config: Member configuration.
        x: ``(n, F)`` raw features.
        y: ``(n,)`` raw label of this member (NaN rows are skipped).
        masks: Segment masks; ``train`` and ``validation`` are used.
        feature_mean: Standardization mean (fitted on the train segment).
        feature_std: Standardization scale.
        windows: :func:`window_rows` output; required for window architectures.
        window: Window length T.
        seed: Seed (weights init, shuffling, dropout).
        accelerator: Lightning accelerator (``cpu`` / ``gpu``).
        progress: Hook called as ``progress(member, epoch, metrics)``.

    Returns:
        The trained member with its record.
    """
    kind = input_kind(config.architecture)
    usable = np.isfinite(y)
    if kind == "window":
        if windows is None:
            raise TrainingDataError(f"member {config.name} needs ts/symbols to build windows")
        usable &= windows[:, -1] >= 0
    train_rows = np.flatnonzero(masks["train"] & usable)
    val_rows = np.flatnonzero(masks["validation"] & usable)
    if train_rows.size < config.batch_size or val_rows.size == 0:
        raise TrainingDataError(
            f"member {config.name}: {train_rows.size} train / {val_rows.size} validation rows"
        )
    y_train = y[train_rows]
    t_mean, t_std = float(np.mean(y_train)), float(np.std(y_train)) or 1.0
    xt = torch.from_numpy(((x - feature_mean) / feature_std).astype(np.float32))
    yt = torch.from_numpy(np.nan_to_num((y - t_mean) / t_std).astype(np.float32))
    if kind == "window":
        assert windows is not None
        train_ds: RowDataset = WindowDataset(xt, yt, train_rows, windows)
        val_ds: RowDataset = WindowDataset(xt, yt, val_rows, windows)
    else:
        train_ds, val_ds = RowDataset(xt, yt, train_rows), RowDataset(xt, yt, val_rows)

    L.seed_everything(seed, workers=True, verbose=False)
    network = build_network(config.architecture, config.hparams, x.shape[1], window)
    module = RegressionModule(
        network, config.loss, config.lr, config.weight_decay, config.huber_delta
    )
    best = BestWeights()
    reporter = ProgressReporter(config.name, progress)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rrr-train-") as root, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=r".*treespec.*")
        trainer = L.Trainer(
            accelerator=accelerator,
            devices=1,
            max_epochs=config.max_epochs,
            deterministic=True,
            enable_progress_bar=False,
            enable_model_summary=False,
            logger=False,
            enable_checkpointing=False,
            num_sanity_val_steps=0,
            default_root_dir=root,
            callbacks=[
                EarlyStopping("val_loss", patience=config.patience, mode="min"),
                best,
                reporter,
            ],
        )
        trainer.fit(
            module,
            make_loader(train_ds, config.batch_size, True, seed),
            make_loader(val_ds, 4096, False, seed),
        )
    seconds = time.perf_counter() - started
    network.cpu().eval()  # the same object the module trained
    member = Member(
        config.name, config.architecture, dict(config.hparams), network, config.role, t_mean, t_std
    )
    return TrainedMember(
        member,
        reporter.history,
        best.best_epoch,
        best.best,
        seconds,
        state_dict_sha256(network),
        int(train_rows.size),
        int(val_rows.size),
    )


def realized_vol_target(
    returns: npt.ArrayLike, ts: npt.ArrayLike, symbols: npt.ArrayLike, horizon: int
) -> npt.NDArray[np.float64]:
    """Log realized volatility of the next ``horizon`` rows of the same symbol.

    ``out[i] = log(sqrt(mean(r[j]^2)))`` over the ``horizon`` rows ``j`` that follow row ``i``
    for ``symbols[i]`` (NaN when fewer exist). It is a label, so it looks ahead by design.

    Args:
        returns: ``(n,)`` one-bar returns.
        ts: ``(n,)`` timestamps.
        symbols: ``(n,)`` symbols.
        horizon: Number of future bars.

    Returns:
        ``(n,)`` float64 label.
    """
    r = np.asarray(returns, dtype=np.float64)
    ahead = window_rows(-np.asarray(ts).astype(np.int64), symbols, horizon + 1)
    out = np.full(r.shape[0], np.nan)
    ok = ahead[:, 0] >= 0
    fut = ahead[ok][:, :-1]  # the rows after i (ahead is ordered by reversed time)
    out[ok] = 0.5 * np.log(np.mean(r[fut] ** 2, axis=1) + 1e-12)
    return out


def _member_label(cfg: MemberConfig, config: EnsembleConfig, data: TrainingData) -> np.ndarray:
    if cfg.role == "return":
        return np.asarray(data.y, dtype=np.float64)
    if data.y_vol is not None:
        return np.asarray(data.y_vol, dtype=np.float64)
    if config.return_feature is None or data.ts is None or data.symbols is None:
        raise TrainingDataError(
            f"volatility member {cfg.name} needs data.y_vol or return_feature with ts/symbols"
        )
    col = list(data.feature_names).index(config.return_feature)
    return realized_vol_target(data.X[:, col], data.ts, data.symbols, config.vol_horizon)


def train_ensemble(
    config: EnsembleConfig, data: TrainingData, progress: ProgressHook | None = None
) -> TrainedEnsemble:
    """Train every member, fit stacking weights on the stacking segment, build the ensemble.

    Args:
        config: Ensemble configuration.
        data: Features, labels, masks and keys.
        progress: Hook called as ``progress(member, epoch, metrics)`` after each epoch.

    Returns:
        The trained ensemble with per-member records and the stacking fit.
    """
    started = time.perf_counter()
    _quiet_lightning()
    with _torch_threads(config.num_threads):
        return _train_ensemble(config, data, progress, started)


def _train_ensemble(
    config: EnsembleConfig, data: TrainingData, progress: ProgressHook | None, started: float
) -> TrainedEnsemble:
    accelerator = resolve_accelerator(config.accelerator)
    if accelerator == "gpu":  # cuBLAS needs this for deterministic=True
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    x = np.asarray(data.X, dtype=np.float64)
    mean, std = standardization(x, data.masks["train"])
    needs_windows = any(input_kind(m.architecture) == "window" for m in config.members)
    windows = None
    if needs_windows:
        if data.ts is None or data.symbols is None:
            raise TrainingDataError("window members need data.ts and data.symbols")
        windows = window_rows(data.ts, data.symbols, config.window)
    trained: dict[str, TrainedMember] = {}
    for cfg in config.resolved_members(data.feature_names):
        trained[cfg.name] = train_member(
            cfg,
            x,
            _member_label(cfg, config, data),
            data.masks,
            feature_mean=mean,
            feature_std=std,
            windows=windows,
            window=config.window,
            seed=config.seed,
            accelerator=accelerator,
            progress=progress,
        )
        logger.info(
            "trained member %s in %.1fs (best epoch %d, val_loss %.4f)",
            cfg.name,
            trained[cfg.name].seconds,
            trained[cfg.name].best_epoch,
            trained[cfg.name].best_val_loss,
        )
    members = tuple(t.member for t in trained.values())
    returns = [m.name for m in members if m.role == "return"]
    provisional = Ensemble(
        tuple(data.feature_names),
        config.window if needs_windows else 0,
        mean,
        std,
        members,
        {n: 1.0 / len(returns) for n in returns},
    )
    stack_rows = data.masks["stacking"]
    preds = member_predictions(provisional, data, returns, rows=stack_rows)
    stacking = fit_stacking_weights(
        np.column_stack([preds[n] for n in returns]),
        np.asarray(data.y)[stack_rows],
        returns,
        ridge=config.stacking_ridge,
    )
    ensemble = Ensemble(
        provisional.feature_names,
        provisional.window,
        mean,
        std,
        members,
        stacking.weights,
        tuple(config.live_members),
    )
    return TrainedEnsemble(
        ensemble, trained, stacking, time.perf_counter() - started, config.to_params()
    )


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Use ``n`` intra-op threads (0: leave them as they are), then restore the previous count."""
    if not n:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _quiet_lightning() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "lightning_fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
