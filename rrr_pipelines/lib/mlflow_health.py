"""Is the MLflow tracking server up? Answered in seconds, without importing MLflow or torch.

Commands that need MLflow ask this first, so a stopped server gives one line naming it and how
to start it instead of MLflow's client retrying for minutes.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from rrr_live.errors import RRRError


class MlflowUnavailableError(RRRError):
    """The MLflow tracking server cannot be reached; the message says how to start it."""


def check_reachable(tracking_uri: str, timeout: float = 3.0) -> None:
    """Fail fast, in one line, when an HTTP tracking server does not answer ``/health``.

    Args:
        tracking_uri: The MLflow tracking URI (non-HTTP URIs are not probed).
        timeout: Seconds to wait for the answer.

    Raises:
        MlflowUnavailableError: naming the server and how to start it.
    """
    if not tracking_uri.startswith(("http://", "https://")):
        return
    url = f"{tracking_uri.rstrip('/')}/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            if resp.status == 200:
                return
            why = f"HTTP {resp.status}"
    except urllib.error.HTTPError as e:
        why = f"HTTP {e.code}"
    except (urllib.error.URLError, OSError) as e:
        why = str(getattr(e, "reason", e))
    raise MlflowUnavailableError(
        f"MLflow server at {tracking_uri} is not reachable ({why}); "
        "start the stack with `rrr up` (or point RRR_MLFLOW_TRACKING_URI at a running server)"
    )
