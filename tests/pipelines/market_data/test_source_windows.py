"""Every registered source refuses a naive fetch window before it reads or sends anything."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from rrr_pipelines.lib.sources.base import SourceError
from rrr_pipelines.lib.sources.catalog import SOURCE_NAMES, make_source
from rrr_pipelines.lib.sources.fakes import FakeClock

NAIVE = datetime(2024, 5, 1)  # noqa: DTZ001 - the point of the test
AWARE = datetime(2024, 5, 2, tzinfo=UTC)


def _params(name: str, tmp_path: Path) -> dict[str, object]:
    if name == "files":
        return {"path": tmp_path}
    if name in ("coinbase", "binance"):
        clock = FakeClock()
        return {"base_url": "http://unreachable.test", "clock": clock, "sleep": clock.sleep}
    return {}


@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_naive_window_is_refused(name: str, tmp_path: Path) -> None:
    source = make_source(name, **_params(name, tmp_path))
    with pytest.raises(SourceError, match=f"{name} fetch needs tz-aware start and end"):
        source.fetch(NAIVE, AWARE)
    with pytest.raises(SourceError, match="tz-aware"):
        source.fetch(AWARE, NAIVE)
