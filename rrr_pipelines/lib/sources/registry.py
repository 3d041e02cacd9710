"""Build a source by name: the one place that knows every source implementation."""

from __future__ import annotations

from typing import Any

from rrr_pipelines.lib.sources.base import BarSource, SourceError


def make_source(name: str, **params: Any) -> BarSource:
    """Return the source called ``name`` configured with ``params``.

    Raises:
        SourceError: for an unknown source name or bad parameters.
    """
    if name == "bundled":
        from rrr_pipelines.lib.sources.bundled import BundledSource

        return BundledSource(**params)
    raise SourceError(f"unknown market-data source {name!r}; known: {sorted(SOURCE_NAMES)}")


SOURCE_NAMES = ("bundled",)
