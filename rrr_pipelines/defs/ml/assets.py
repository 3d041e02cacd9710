"""ML assets: features → training_set → ensemble_model (thin; logic lives in lib/ml)."""

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from rrr_pipelines.defs.live.policies import WEEKLY_FRESHNESS
from rrr_pipelines.defs.ml.config import DataSelection, DatasetSettings, TrainingSettings
from rrr_pipelines.defs.resources import DatabaseResource

GROUP = "ml"
DEV_SEGMENTS = ("train", "validation", "stacking")


class FeaturesConfig(DataSelection):
    """Bars to compute features on."""


@dg.asset(
    deps=["market_bars"], group_name=GROUP, kinds={"pandas"}, freshness_policy=WEEKLY_FRESHNESS
)
def features(
    context: dg.AssetExecutionContext, config: FeaturesConfig, database: DatabaseResource
) -> pd.DataFrame:
    """Batch form of the versioned feature spec over every symbol (index reset to ts, symbol)."""
    from rrr_live.features import compute_features, default_spec

    spec = default_spec()
    bars = database.load_bars(source=config.source, interval=config.interval)
    if bars.empty:
        raise dg.Failure(
            f"no {config.source}/{config.interval} bars in market_bars; load them first"
        )
    frame = compute_features(bars, spec).reset_index()
    context.add_output_metadata(
        {
            "spec_version": spec.version,
            "spec_fingerprint": spec.fingerprint(),
            "features": len(spec.names),
            "symbols": int(frame["symbol"].nunique()),
            "first_ts": str(frame["ts"].min()),
            "last_ts": str(frame["ts"].max()),
        }
    )
    return frame


class TrainingSetConfig(DataSelection, DatasetSettings):
    """Bars, labels and segments of the training set."""


@dg.asset(deps=["market_bars", "features"], group_name=GROUP, kinds={"pandas"})
def training_set(
    context: dg.AssetExecutionContext, config: TrainingSetConfig, database: DatabaseResource
) -> pd.DataFrame:
    """Features + forward-return labels with purged, embargoed walk-forward segments."""
    from rrr_live.features import default_spec
    from rrr_pipelines.lib.ml.dataset import DatasetConfig, build_training_set, segment_ranges

    bars = database.load_bars(source=config.source, interval=config.interval)
    dataset_cfg = DatasetConfig(
        horizon=config.horizon, embargo=config.embargo, holdout_fraction=config.holdout_fraction
    )
    frame, _ = build_training_set(bars, default_spec(), dataset_cfg)
    ranges = segment_ranges(frame)
    context.add_output_metadata(
        {
            "rows": len(frame),
            "segments": dg.MetadataValue.json(ranges),
            "dataset_config": dg.MetadataValue.json(dataset_cfg.to_dict()),
            "holdout_start": ranges.get("holdout", {}).get("start", ""),
        }
    )
    return frame


class EnsembleModelConfig(TrainingSettings):
    """Ensemble training settings."""


def ensemble_config(config: TrainingSettings) -> Any:
    """The demo ensemble with the run's seed, accelerator and epoch cap (one place)."""
    from rrr_pipelines.lib.ml.training_config import default_config

    ens_cfg = default_config(seed=config.seed, accelerator=config.accelerator)
    return replace(
        ens_cfg, members=tuple(replace(m, max_epochs=config.max_epochs) for m in ens_cfg.members)
    )


class WalkForwardSettings(TrainingSettings):
    """Rolling walk-forward over every out-of-sample period before the holdout."""

    horizon: int = Field(default=5, description="label horizon in bars (as training_set)")
    embargo: int = Field(default=5, description="embargo in bars (as training_set)")
    period: str = Field(default="YS", description="pandas offset of one period (YS = yearly)")
    retrain_every: int = Field(default=1, description="periods per test fold (retrain every K)")
    min_train_periods: int = Field(default=3, description="periods of history before fold 1")
    window: str = Field(default="expanding", description="expanding | sliding")
    max_train_periods: int = Field(default=5, description="periods in a sliding window")
    workers: int = Field(
        default=2, description="folds trained at once (processes; see bench/bench_walkforward.py)"
    )


@dg.asset(group_name=GROUP, kinds={"pytorch"})
def walk_forward(
    context: dg.AssetExecutionContext, config: WalkForwardSettings, training_set: pd.DataFrame
) -> pd.DataFrame:
    """Retrain the ensemble per fold and predict each test fold (never the holdout).

    Returns the concatenated out-of-sample scores: ``ts, symbol, fold, train_start, train_end,
    ensemble, ridge`` (the ridge baseline is refitted per fold too).
    """
    from rrr_live.features import default_spec
    from rrr_pipelines.lib.ml.walkforward import (
        WalkForwardConfig,
        WalkForwardError,
        plan_folds,
        run_walk_forward,
    )

    holdout = training_set.loc[training_set["segment"] == "holdout", "ts"]
    if holdout.empty:
        raise dg.Failure("training_set has no holdout rows")
    try:
        wf = WalkForwardConfig(
            period=config.period, retrain_every=config.retrain_every,
            min_train_periods=config.min_train_periods, window=config.window,  # type: ignore[arg-type]
            max_train_periods=config.max_train_periods, workers=config.workers,
        )  # fmt: skip
        plans = plan_folds(training_set["ts"], holdout.min(), wf)
    except WalkForwardError as exc:
        raise dg.Failure(str(exc)) from exc
    context.log.info(
        f"walk-forward: {len(plans)} folds, tests {plans[0].test_start.date()} .. "
        f"{plans[-1].test_end}, {config.window} windows, {config.workers} worker(s)"
    )
    result = run_walk_forward(
        training_set, list(default_spec().names), ensemble_config(config), plans,
        horizon=config.horizon, embargo=config.embargo, workers=config.workers,
        log=context.log.info,
    )  # fmt: skip
    table = result.table()
    context.add_output_metadata(
        {
            "folds": len(plans),
            "seconds": round(result.seconds, 1),
            "oos_start": str(result.predictions.index.get_level_values("ts").min()),
            "oos_end": str(result.predictions.index.get_level_values("ts").max()),
            "holdout_start": str(holdout.min()),
            "fold_table": dg.MetadataValue.md(table.to_markdown(index=False)),
        }
    )
    return result.scores_frame()


def model_root() -> Path:
    """Where trained model folders live (under the storage root of the IO manager)."""
    root = os.environ.get("RRR_STORAGE_DIR", os.path.join(os.getcwd(), ".rrr", "storage"))
    return Path(root) / "models"


@dg.asset(group_name=GROUP, kinds={"pytorch"}, freshness_policy=WEEKLY_FRESHNESS)
def ensemble_model(
    context: dg.AssetExecutionContext, config: EnsembleModelConfig, training_set: pd.DataFrame
) -> pd.DataFrame:
    """Train the ensemble (Lightning, early stopping, stacking) and save it pickle-free.

    Returns a model card: one row per member with the model folder, weight hash and scores.
    """
    from rrr_live.features import default_spec
    from rrr_live.models import save_model
    from rrr_pipelines.lib.ml.dataset import bar_interval, to_training_data
    from rrr_pipelines.lib.ml.training import train_ensemble

    spec = default_spec()
    data = to_training_data(training_set, list(spec.names))
    ens_cfg = ensemble_config(config)

    def progress(member: str, epoch: int, metrics: dict[str, float]) -> None:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        context.log.info(f"member {member} epoch {epoch}: {shown}")

    trained = train_ensemble(ens_cfg, data, progress=progress)
    out_dir = model_root() / "ensemble" / context.run.run_id
    seg, seg_ts = training_set["segment"], training_set["ts"]
    save_model(
        out_dir,
        trained.ensemble,
        feature_spec={**spec.to_dict(), "fingerprint": spec.fingerprint()},
        metadata={
            "data_range": [str(training_set["ts"].min()), str(training_set["ts"].max())],
            # trained on the purged train/validation/stacking rows only: nothing at or after
            # the holdout boundary (the same layout as walk_forward's plan_from_segments)
            "trained_before": str(seg_ts.loc[seg == "holdout"].min()),
            "train_rows_last_ts": str(seg_ts.loc[seg.isin(DEV_SEGMENTS)].max()),
            "run_id": context.run.run_id,
            # the runner refuses the model on bars of another interval
            **({"bar_interval": interval} if (interval := bar_interval(training_set)) else {}),
            "params": trained.params,
            "members": {n: {"best_epoch": r.best_epoch, "best_val_loss": r.best_val_loss}
                        for n, r in trained.members.items()},
        },
    )  # fmt: skip
    card = pd.DataFrame(
        [
            {
                "member": name,
                "role": rec.member.role,
                "best_epoch": rec.best_epoch,
                "best_val_loss": rec.best_val_loss,
                "seconds": rec.seconds,
                "weights_sha256": rec.weights_sha256,
                "stacking_weight": trained.ensemble.stacking_weights().get(name, 0.0),
                "model_dir": str(out_dir),
            }
            for name, rec in trained.members.items()
        ]
    )
    context.add_output_metadata(
        {
            "model_dir": dg.MetadataValue.path(str(out_dir)),
            "train_seconds": round(trained.seconds, 1),
            "members": dg.MetadataValue.md(
                card.drop(columns=["model_dir"]).to_markdown(index=False)
            ),
        }
    )
    return card
