"""The one place where the Dagster code location learns its environment."""

from __future__ import annotations

import os

import dagster as dg

from rrr_pipelines.defs.ml.resources import MlflowResource, PromotionGateResource
from rrr_pipelines.defs.resources import DatabaseResource, ParquetIOManager


def resources() -> dict[str, object]:
    """Resources bound from environment variables that the ``rrr`` CLI sets."""
    storage = os.environ.get("RRR_STORAGE_DIR", os.path.join(os.getcwd(), ".rrr", "storage"))
    return {
        "database": DatabaseResource(url=dg.EnvVar("RRR_PG_URL_RRR")),
        "io_manager": ParquetIOManager(root=storage),
        "mlflow": MlflowResource(tracking_uri=dg.EnvVar("MLFLOW_TRACKING_URI")),
        "gate": PromotionGateResource(),  # documented defaults; override per run config
    }
