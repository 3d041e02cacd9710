"""Read-only MLflow model registry client over REST (httpx; the live side never imports mlflow).

Short timeouts and bounded retries: a registry outage surfaces as :class:`RegistryUnavailable`
after ``attempts`` tries, and the caller keeps the model it already serves.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from rrr_live.errors import RRRError

logger = logging.getLogger(__name__)

ARTIFACT_PREFIX = "mlflow-artifacts:/"
DEFAULT_TIMEOUT = httpx.Timeout(5.0, connect=2.0)


class RegistryUnavailable(RRRError):
    """The registry did not answer usefully within the retry budget."""


@dataclass(frozen=True)
class VersionRef:
    """One model version as the registry describes it.

    Attributes:
        name: Registered model name.
        version: Version number (a string, as MLflow returns it).
        source: Artifact URI of the model folder (``mlflow-artifacts:/...``).
        tags: The version's tags.
    """

    name: str
    version: str
    source: str
    tags: dict[str, str]


class RegistryClient:
    """Alias resolution, version tags and artifact download through the MLflow REST API.

    Args:
        base_url: Tracking server URL (``http://127.0.0.1:5000``).
        timeout: httpx timeout of every request.
        attempts: Tries per request before :class:`RegistryUnavailable` (transport errors, 5xx).
        backoff_s: Base of the exponential backoff between tries.
        transport: Optional httpx transport (unit tests).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        attempts: int = 3,
        backoff_s: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self._attempts = attempts
        self._backoff = backoff_s
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport
        )

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()

    async def _get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        last: str = ""
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
            try:
                resp = await self._http.get(path, params=params)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if resp.status_code < 500:
                return resp
            last = f"HTTP {resp.status_code}"
        raise RegistryUnavailable(f"GET {path}: {last} after {self._attempts} attempts")

    async def alias(self, name: str, alias: str) -> VersionRef | None:
        """The version ``name@alias`` points at, or ``None`` when the alias (or model) is unset.

        Raises:
            RegistryUnavailable: outage or an unexpected answer.
        """
        resp = await self._get(
            "/api/2.0/mlflow/registered-models/alias", {"name": name, "alias": alias}
        )
        body = _json(resp)
        if resp.status_code in (400, 404) and body.get("error_code") in (
            "INVALID_PARAMETER_VALUE",
            "RESOURCE_DOES_NOT_EXIST",
        ):
            return None  # MLflow answers an unset alias with 400, an unknown model with 404
        if resp.status_code != 200:
            raise RegistryUnavailable(f"alias {name}@{alias}: HTTP {resp.status_code}")
        mv = body["model_version"]
        return await self.version(name, str(mv["version"]))

    async def version(self, name: str, version: str) -> VersionRef:
        """A version with its current tags (read now, never cached).

        Raises:
            RegistryUnavailable: outage or an unexpected answer.
        """
        resp = await self._get(
            "/api/2.0/mlflow/model-versions/get", {"name": name, "version": version}
        )
        if resp.status_code != 200:
            raise RegistryUnavailable(f"{name} v{version}: HTTP {resp.status_code}")
        mv = _json(resp)["model_version"]
        tags = {str(t["key"]): str(t["value"]) for t in mv.get("tags", [])}
        return VersionRef(name, str(mv["version"]), str(mv["source"]), tags)

    async def download(self, ref: VersionRef, dest: Path) -> Path:
        """Download the version's model folder into ``dest`` (created; must not exist).

        Raises:
            RegistryUnavailable: outage, or a source outside the proxied artifact store.
        """
        if not ref.source.startswith(ARTIFACT_PREFIX):
            raise RegistryUnavailable(f"{ref.name} v{ref.version}: unsupported source {ref.source}")
        root = ref.source.removeprefix(ARTIFACT_PREFIX).strip("/")
        await asyncio.to_thread(dest.mkdir, parents=True)
        await self._download_dir(root, "", dest)
        return dest

    async def _download_dir(self, root: str, rel: str, dest: Path) -> None:
        path = f"{root}/{rel}".rstrip("/")
        resp = await self._get("/api/2.0/mlflow-artifacts/artifacts", {"path": path})
        if resp.status_code != 200:
            raise RegistryUnavailable(f"listing {path}: HTTP {resp.status_code}")
        for entry in _json(resp).get("files", []):
            name = str(entry["path"])
            if "/" in name or name in ("", ".", ".."):
                raise RegistryUnavailable(f"listing {path}: unsafe entry {name!r}")
            child = f"{rel}/{name}".lstrip("/")
            if entry.get("is_dir"):
                await asyncio.to_thread((dest / child).mkdir)
                await self._download_dir(root, child, dest)
            else:
                await self._download_file(f"{root}/{child}", dest / child)

    async def _download_file(self, path: str, target: Path) -> None:
        resp = await self._get(f"/api/2.0/mlflow-artifacts/artifacts/{path}")
        if resp.status_code != 200:
            raise RegistryUnavailable(f"download {path}: HTTP {resp.status_code}")
        await asyncio.to_thread(target.write_bytes, resp.content)


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError as exc:
        raise RegistryUnavailable(f"{resp.request.url.path}: not JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise RegistryUnavailable(f"{resp.request.url.path}: unexpected body")
    return body
