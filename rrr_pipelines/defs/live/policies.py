"""Retry and freshness policies of the key assets (one place, so the UI and docs agree).

Retries: only assets that call an external service (a market-data REST source, the MLflow
server) retry, with exponential backoff; a ``dg.Failure(allow_retries=False)`` (bad data, a
missing champion) and a failed blocking check are never retried.

Freshness (``FreshnessPolicy.time_window``, shown in the Dagster UI): ``market_bars`` is
refreshed daily (``market_bars_daily`` 22:30 UTC), the ML assets weekly (``weekly_retrain``
Saturdays 06:00 UTC), ``live_performance`` daily (``live_feedback_daily`` 00:15 UTC); each window
leaves a day of slack over its schedule before failing.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import dagster as dg

# Exponential backoff waits delay * (2**attempt - 1) before each retry.
# A REST source: 30 s, 90 s, 210 s (rate limits and short outages usually clear in minutes).
REST_RETRY = dg.RetryPolicy(max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL)
# The MLflow server: 10 s, 30 s, 70 s.
MLFLOW_RETRY = dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL)

DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=48), warn_window=timedelta(hours=26)
)
WEEKLY_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(days=8), warn_window=timedelta(days=7, hours=2)
)


@contextmanager
def retry_only_remote_errors() -> Iterator[None]:
    """Let a REST source's error reach the retry policy; fail other source errors at once.

    A bad file, an unknown source or a bundled range does not heal by waiting, so it ends the
    step without the policy's retries (``dg.Failure(allow_retries=False)``).
    """
    from rrr_pipelines.lib.sources.base import SourceError
    from rrr_pipelines.lib.sources.rest import RestSourceError

    try:
        yield
    except RestSourceError:
        raise
    except SourceError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from exc
