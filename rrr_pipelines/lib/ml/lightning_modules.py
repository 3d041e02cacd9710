"""Lightning pieces of training: one generic module, datasets without look-ahead, callbacks.

The networks themselves live in :mod:`rrr_live.models` (plain ``nn.Module``); this module only
wraps them for training, so the class the live side loads is the class that was trained.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import lightning as L
import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from rrr_live.errors import RRRError

ProgressHook = Callable[[str, int, Mapping[str, float]], None]
LossName = Literal["mse", "huber"]
Batch = tuple[Tensor, Tensor]


class TrainingDataError(RRRError):
    """Training inputs are inconsistent (shapes, duplicates, non-finite values, empty segment)."""


class RegressionModule(L.LightningModule):
    """Train any registry network on a scalar label with MSE or Huber loss.

    Args:
        network: A network from :mod:`rrr_live.models.architecture_registry`.
        loss: ``"mse"`` or ``"huber"``.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        huber_delta: Huber transition point (in standardized label units).
    """

    def __init__(
        self,
        network: nn.Module,
        loss: LossName = "mse",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        huber_delta: float = 1.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["network"])
        self.network = network
        if loss == "mse":
            self.loss_fn: nn.Module = nn.MSELoss()
        elif loss == "huber":
            self.loss_fn = nn.HuberLoss(delta=huber_delta)
        else:
            raise TrainingDataError(f"unknown loss {loss!r}; expected 'mse' or 'huber'")
        self.lr = lr
        self.weight_decay = weight_decay

    def forward(self, x: Tensor) -> Tensor:
        """Run the wrapped network."""
        out: Tensor = self.network(x)
        return out

    def _step(self, batch: Batch, name: str) -> Tensor:
        x, y = batch
        loss: Tensor = self.loss_fn(self.network(x), y)
        self.log(name, loss, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """One optimisation step; logs ``train_loss``."""
        return self._step(batch, "train_loss")

    def validation_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """Validation loss on the validation segment; logs ``val_loss``."""
        return self._step(batch, "val_loss")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """AdamW with the configured learning rate and weight decay."""
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def window_rows(ts: npt.ArrayLike, symbols: npt.ArrayLike, window: int) -> npt.NDArray[np.intp]:
    """Row indices of each row's window: the ``window`` latest rows of the same symbol.

    The window of row ``i`` holds rows of ``symbols[i]`` with ``ts <= ts[i]`` (row ``i`` last),
    so it never looks ahead. Rows with less history get ``-1`` everywhere.

    Args:
        ts: Row timestamps (any sortable dtype), shape ``(n,)``; rows may come in any order.
        symbols: Row symbols, shape ``(n,)``.
        window: Window length T.

    Returns:
        ``(n, window)`` int array of row indices, oldest first, or ``-1`` rows.

    Raises:
        TrainingDataError: Mismatched lengths or duplicate ``(symbol, ts)`` keys.
    """
    ts_arr, sym_arr = np.asarray(ts), np.asarray(symbols)
    n = ts_arr.shape[0]
    if sym_arr.shape != (n,) or ts_arr.shape != (n,) or window < 1:
        raise TrainingDataError(f"ts/symbols must be 1-D of one length, window >= 1 (n={n})")
    order = np.lexsort((ts_arr, sym_arr))
    s_sorted, t_sorted = sym_arr[order], ts_arr[order]
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = s_sorted[1:] != s_sorted[:-1]
    if np.any(~new_group[1:] & (t_sorted[1:] == t_sorted[:-1])):
        raise TrainingDataError("duplicate (symbol, ts) rows; keys must be unique")
    starts = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    pos_in_group = np.arange(n) - starts
    out = np.full((n, window), -1, dtype=np.intp)
    valid = np.flatnonzero(pos_in_group >= window - 1)
    span = valid[:, None] - np.arange(window - 1, -1, -1)[None, :]
    out[order[valid]] = order[span]
    return out


def _passthrough(batch: Any) -> Any:
    return batch


class RowDataset(Dataset[Batch]):
    """Flat rows ``(x, y)`` of a subset of rows, fetched a whole batch at a time.

    Args:
        x: Standardized features ``(n, F)``.
        y: Standardized labels ``(n,)``.
        rows: Row indices that belong to this dataset.
    """

    def __init__(self, x: Tensor, y: Tensor, rows: npt.NDArray[np.intp]) -> None:
        self.x, self.y = x, y
        self.rows = torch.as_tensor(rows, dtype=torch.long)

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def __getitem__(self, i: int) -> Batch:
        r = self.rows[i]
        return self.x[r], self.y[r]

    def __getitems__(self, idx: Sequence[int]) -> Batch:
        r = self.rows[torch.as_tensor(idx, dtype=torch.long)]
        return self.x[r], self.y[r]


class WindowDataset(RowDataset):
    """Windows ``(x[T rows], y)``: the last T rows of the same symbol, built without look-ahead.

    Args:
        x: Standardized features ``(n, F)``.
        y: Standardized labels ``(n,)``.
        rows: Row indices that belong to this dataset (each must have a full window).
        windows: Output of :func:`window_rows` for all ``n`` rows.
    """

    def __init__(
        self, x: Tensor, y: Tensor, rows: npt.NDArray[np.intp], windows: npt.NDArray[np.intp]
    ) -> None:
        super().__init__(x, y, rows)
        if len(rows) and np.any(windows[rows] < 0):
            raise TrainingDataError("WindowDataset rows must all have a full window")
        self.windows = torch.as_tensor(windows, dtype=torch.long)

    def __getitem__(self, i: int) -> Batch:
        r = self.rows[i]
        return self.x[self.windows[r]], self.y[r]

    def __getitems__(self, idx: Sequence[int]) -> Batch:
        r = self.rows[torch.as_tensor(idx, dtype=torch.long)]
        return self.x[self.windows[r]], self.y[r]


def make_loader(dataset: RowDataset, batch_size: int, shuffle: bool, seed: int) -> DataLoader[Any]:
    """A single-process DataLoader fetching whole batches; shuffling is seeded.

    Args:
        dataset: A :class:`RowDataset` or :class:`WindowDataset`.
        batch_size: Rows per batch.
        shuffle: Shuffle each epoch (training) or not (validation).
        seed: Seed of the shuffling generator.

    Returns:
        The loader.
    """
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=_passthrough,
        generator=generator,
        num_workers=0,
    )


class BestWeights(L.Callback):
    """Keep the weights of the best validation epoch and restore them when training ends.

    Args:
        monitor: Metric to minimise.
    """

    def __init__(self, monitor: str = "val_loss") -> None:
        self.monitor = monitor
        self.best = math.inf
        self.best_epoch = -1
        self.state: dict[str, Tensor] | None = None

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Snapshot the weights if this epoch improved the monitored metric."""
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and float(value) < self.best:
            self.best = float(value)
            self.best_epoch = trainer.current_epoch
            self.state = copy.deepcopy(pl_module.state_dict())

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Restore the best snapshot."""
        if self.state is not None:
            pl_module.load_state_dict(self.state)


class ProgressReporter(L.Callback):
    """Call ``progress(member, epoch, metrics)`` after every epoch and keep the history.

    Args:
        member: Member name passed to the hook.
        progress: The hook (e.g. a Dagster ``context.log`` adapter), or ``None``.
    """

    def __init__(self, member: str, progress: ProgressHook | None) -> None:
        self.member = member
        self.progress = progress
        self.history: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Report ``train_loss`` and ``val_loss`` of the finished epoch."""
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.endswith("loss")}
        self.history.append({"epoch": float(trainer.current_epoch), **metrics})
        if self.progress is not None:
            self.progress(self.member, trainer.current_epoch, metrics)
