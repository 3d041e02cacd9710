"""Dagster code location: autoload every module under ``defs/``, bind resources once."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from rrr_pipelines.defs.env import resources
from rrr_pipelines.defs.live.resources import LiveFeedbackResource


@dg.definitions
def defs() -> dg.Definitions:
    """Return the merged definitions of every domain folder plus the shared resources."""
    loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    # In-process: on small machines a subprocess per step costs more (imports) than it buys.
    bound = {**resources(), "live_feedback": LiveFeedbackResource()}  # documented defaults
    extra = dg.Definitions(resources=bound, executor=dg.in_process_executor)
    return dg.Definitions.merge(loaded, extra)
