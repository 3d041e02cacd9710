"""Dagster code location: autoload every module under ``defs/``, bind resources once."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from rrr_pipelines.defs.env import resources


@dg.definitions
def defs() -> dg.Definitions:
    """Return the merged definitions of every domain folder plus the shared resources."""
    loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    return dg.Definitions.merge(loaded, dg.Definitions(resources=resources()))
