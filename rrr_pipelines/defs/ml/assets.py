"""ML assets: features → training_set → ensemble_model (thin; logic lives in lib/ml)."""

import os
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pandas as pd

from rrr_pipelines.defs.ml.config import DataSelection, DatasetSettings, TrainingSettings
from rrr_pipelines.defs.resources import DatabaseResource

GROUP = "ml"


class FeaturesConfig(DataSelection):
    """Bars to compute features on."""


@dg.asset(deps=["market_bars"], group_name=GROUP, kinds={"pandas"})
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


def model_root() -> Path:
    """Where trained model folders live (under the storage root of the IO manager)."""
    root = os.environ.get("RRR_STORAGE_DIR", os.path.join(os.getcwd(), ".rrr", "storage"))
    return Path(root) / "models"


@dg.asset(group_name=GROUP, kinds={"pytorch"})
def ensemble_model(
    context: dg.AssetExecutionContext, config: EnsembleModelConfig, training_set: pd.DataFrame
) -> pd.DataFrame:
    """Train the ensemble (Lightning, early stopping, stacking) and save it pickle-free.

    Returns a model card: one row per member with the model folder, weight hash and scores.
    """
    from rrr_live.features import default_spec
    from rrr_live.models import save_model
    from rrr_pipelines.lib.ml.dataset import to_training_data
    from rrr_pipelines.lib.ml.training import train_ensemble
    from rrr_pipelines.lib.ml.training_config import default_config

    spec = default_spec()
    data = to_training_data(training_set, list(spec.names))
    ens_cfg = default_config(seed=config.seed, accelerator=config.accelerator)
    ens_cfg = replace(
        ens_cfg, members=tuple(replace(m, max_epochs=config.max_epochs) for m in ens_cfg.members)
    )

    def progress(member: str, epoch: int, metrics: dict[str, float]) -> None:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        context.log.info(f"member {member} epoch {epoch}: {shown}")

    trained = train_ensemble(ens_cfg, data, progress=progress)
    out_dir = model_root() / "ensemble" / context.run.run_id
    save_model(
        out_dir,
        trained.ensemble,
        feature_spec={**spec.to_dict(), "fingerprint": spec.fingerprint()},
        metadata={
            "data_range": [str(training_set["ts"].min()), str(training_set["ts"].max())],
            "run_id": context.run.run_id,
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
