"""Build a source by name: the one place that knows every source implementation."""

from __future__ import annotations

import importlib
from typing import Any

from rrr_pipelines.lib.sources.base import BarSource, SourceError

# name -> (module, class); imported lazily so a code-location load stays light.
_SOURCES: dict[str, tuple[str, str]] = {
    "bundled": ("rrr_pipelines.lib.sources.bundled", "BundledSource"),
    "files": ("rrr_pipelines.lib.sources.files", "FilesSource"),
    "coinbase": ("rrr_pipelines.lib.sources.rest_coinbase", "CoinbaseSource"),
    "binance": ("rrr_pipelines.lib.sources.rest_binance", "BinanceSource"),
    "synthetic": ("rrr_pipelines.lib.sources.synthetic", "SyntheticSource"),
}
SOURCE_NAMES = tuple(_SOURCES)


def make_source(name: str, **params: Any) -> BarSource:
    """Return the source called ``name`` configured with ``params``.

    Raises:
        SourceError: for an unknown source name or parameters the source does not take.
    """
    if name not in _SOURCES:
        raise SourceError(f"unknown market-data source {name!r}; known: {sorted(SOURCE_NAMES)}")
    module, cls_name = _SOURCES[name]
    cls = getattr(importlib.import_module(module), cls_name)
    try:
        source: BarSource = cls(**params)
    except TypeError as e:
        raise SourceError(f"source {name!r} does not accept these parameters: {e}") from e
    return source
