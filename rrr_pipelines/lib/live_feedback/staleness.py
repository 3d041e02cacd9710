"""How stale the serving model is: champion age, training-window end vs now, bars since."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

DAY_S = 86_400.0


@dataclass(frozen=True)
class Staleness:
    """Staleness figures of one model version at ``now``.

    Attributes:
        version: The version judged.
        champion_age_days: Days since it was promoted (NaN: promotion time unknown).
        data_age_days: Days since the end of its training window (NaN: unknown).
        bars_since: Bars journaled after the training window's end.
        stale: Whether a limit is exceeded.
        reasons: One line per exceeded limit.
    """

    version: str
    champion_age_days: float
    data_age_days: float
    bars_since: int
    stale: bool
    reasons: tuple[str, ...] = field(default=())


def _days(now: datetime, then: datetime | None) -> float:
    return math.nan if then is None else (now - then).total_seconds() / DAY_S


def model_staleness(
    *,
    now: datetime,
    version: str,
    promoted_at: datetime | None,
    trained_before: datetime | None,
    bars_since: int,
    max_data_age_days: float = 90.0,
    max_bars_since: int | None = None,
) -> Staleness:
    """Judge a version's staleness at ``now`` (an injected clock).

    Args:
        now: The time of the judgement (tz-aware).
        version: Model version.
        promoted_at: When it became champion (None: unknown).
        trained_before: The end of its training window (exclusive; None: unknown).
        bars_since: Bars decided on since ``trained_before`` (e.g. journaled batch times).
        max_data_age_days: Training data older than this is stale.
        max_bars_since: More bars than this since the training window is stale (None: no limit).
    """
    data_age = _days(now, trained_before)
    reasons = []
    if math.isfinite(data_age) and data_age > max_data_age_days:
        reasons.append(f"training window ended {data_age:.1f} days ago (> {max_data_age_days:g})")
    if max_bars_since is not None and bars_since > max_bars_since:
        reasons.append(f"{bars_since} bars since the training window (> {max_bars_since})")
    return Staleness(
        version, _days(now, promoted_at), data_age, bars_since, bool(reasons), tuple(reasons)
    )
