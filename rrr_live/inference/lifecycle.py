"""Which model serves: resolve aliases, gate, download, verify, and swap between batches.

The rule (one implementation, :mod:`rrr_live.models.verdict`): the trading alias (``champion``)
serves only a version that ``may_trade``; ``shadow`` is scored on the same batches and never
trades. A candidate is refused, the old model staying in service and
``rrr_model_refusals{alias,reason}`` counted, when its verdict forbids trading, when it was
trained for another universe / bar interval / feature spec than the running configuration, or
when ``load_model`` rejects it (manifest sha256, canary, unknown architecture, pickle payload:
the loader never unpickles). A registry outage keeps the current model. A verified candidate is
*staged*; :meth:`ModelLifecycle.apply_pending` installs it atomically and is called between
decision batches, so a batch never mixes versions. Moving the alias back to a version already
loaded reinstalls that very object (bit-identical outputs).
"""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rrr_live.errors import RRRError
from rrr_live.inference.registry_client import RegistryClient, RegistryUnavailable, VersionRef
from rrr_live.metrics import Metrics
from rrr_live.models import verdict as rule
from rrr_live.models.errors import ModelLoadError
from rrr_live.models.loader import LoadedEnsemble, load_model

logger = logging.getLogger(__name__)

MODEL_NAME = "rrr-ensemble"


@dataclass(frozen=True)
class RunningConfig:
    """What the running process was configured for; a model must match it to serve.

    Attributes:
        feature_fingerprint: Fingerprint of the feature spec the engine computes.
        feature_names: Feature columns, in order, the engine produces.
        universe: Symbols traded (a model declaring another universe is refused).
        bar_interval: Bar interval, e.g. ``"1m"`` (a model declaring another one is refused).
        max_window: Feature-window length the runner keeps (a model needing more is refused;
            0: no limit).
    """

    feature_fingerprint: str
    feature_names: tuple[str, ...]
    universe: tuple[str, ...]
    bar_interval: str
    max_window: int = 0


@dataclass(frozen=True)
class Served:
    """A verified model and the registry version it came from."""

    version: str
    model: LoadedEnsemble


@dataclass(frozen=True)
class LifecycleEvent:
    """Something the lifecycle saw or did (journaled by the service).

    Attributes:
        alias: ``champion`` or ``shadow``.
        kind: ``alias_seen``, ``staged``, ``swapped``, ``refused`` or ``registry_error``.
        version: Version concerned ("" when none).
        detail: Human-readable reason.
    """

    alias: str
    kind: str
    version: str
    detail: str = ""


class RefusedError(RRRError):
    """A candidate version may not serve; ``reason`` is a metric label, ``str`` the detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def check_compatible(model: LoadedEnsemble, config: RunningConfig) -> None:
    """Refuse a model trained for another feature spec, universe or bar interval.

    Universe and bar interval are compared when the model's manifest metadata declares them
    (``universe``, ``bar_interval``); the feature spec fingerprint and names always.

    Raises:
        RefusedError: with reason ``feature_spec``, ``universe``, ``bar_interval`` or
            ``window``.
    """
    m = model.manifest
    if config.max_window and model.window_length > config.max_window:
        raise RefusedError(
            "window", f"model window {model.window_length} > the runner's {config.max_window}"
        )
    fingerprint = str(m.feature_spec.get("fingerprint", ""))
    if fingerprint != config.feature_fingerprint:
        raise RefusedError(
            "feature_spec",
            f"feature spec {fingerprint or '(none)'} != running {config.feature_fingerprint}",
        )
    if tuple(m.input_schema.feature_names) != config.feature_names:
        raise RefusedError("feature_spec", "feature names differ from the running engine's")
    universe = m.metadata.get("universe")
    if universe is not None and tuple(sorted(map(str, universe))) != tuple(sorted(config.universe)):
        raise RefusedError("universe", f"model universe {universe} != running configuration")
    interval = m.metadata.get("bar_interval")
    if interval is not None and str(interval) != config.bar_interval:
        raise RefusedError(
            "bar_interval", f"model bar interval {interval} != running {config.bar_interval}"
        )


@dataclass
class _Slot:
    serving: Served | None = None
    pending: Served | None = None
    seen: str | None = None  # last version the alias pointed at (refusals are not retried)


@dataclass
class ModelLifecycle:
    """Polls ``model_name@champion`` / ``@shadow`` and keeps a verified model of each.

    Args:
        client: The registry REST client.
        config: The running configuration models must match.
        cache_dir: Where versions are downloaded (one fresh folder per attempt).
        metrics: Metrics (refusals, swaps, registry errors, serving version).
        model_name: Registered model name.
        device: Torch device for ``load_model``.
        on_event: Called with every :class:`LifecycleEvent` (the service journals them).
    """

    client: RegistryClient
    config: RunningConfig
    cache_dir: Path
    metrics: Metrics
    model_name: str = MODEL_NAME
    device: str = "cpu"
    on_event: Callable[[LifecycleEvent], None] = lambda _e: None
    _slots: dict[str, _Slot] = field(default_factory=dict)
    _loaded: dict[str, Served] = field(default_factory=dict)

    def serving(self, alias: str = rule.CHAMPION) -> Served | None:
        """The model serving ``alias`` now (``None`` before the first successful load)."""
        slot = self._slots.get(alias)
        return slot.serving if slot else None

    async def poll(self, aliases: Sequence[str] = (rule.CHAMPION, rule.SHADOW)) -> None:
        """Resolve each alias once; stage a verified new version (never installs it)."""
        for alias in aliases:
            try:
                ref = await self.client.alias(self.model_name, alias)
            except RegistryUnavailable as exc:
                self.metrics.model_registry_errors.inc()
                self._emit(LifecycleEvent(alias, "registry_error", "", str(exc)))
                continue
            self.metrics.model_registry_polled.set_to_current_time()
            await self._consider(alias, ref)

    async def _consider(self, alias: str, ref: VersionRef | None) -> None:
        slot = self._slots.setdefault(alias, _Slot())
        version = ref.version if ref else None
        if version == slot.seen:
            return
        slot.seen = version
        self._emit(LifecycleEvent(alias, "alias_seen", version or "", "alias moved"))
        current = slot.serving.version if slot.serving else None
        if ref is None or version == current:
            slot.pending = None  # alias moved back before the staged version was installed
            return
        try:
            slot.pending = await self._verified(alias, ref)
        except RefusedError as exc:
            slot.pending = None
            self.metrics.model_refusals.labels(alias=alias, reason=exc.reason).inc()
            self._emit(LifecycleEvent(alias, "refused", ref.version, str(exc)))
            logger.warning("refused %s v%s @%s: %s", self.model_name, ref.version, alias, exc)
            return
        except RegistryUnavailable as exc:
            slot.seen = None  # an outage mid-download: try this version again next poll
            self.metrics.model_registry_errors.inc()
            self._emit(LifecycleEvent(alias, "registry_error", ref.version, str(exc)))
            return
        self._emit(LifecycleEvent(alias, "staged", ref.version, "verified"))

    async def _verified(self, alias: str, ref: VersionRef) -> Served:
        if alias in rule.TRADING_ALIASES:
            decision = rule.may_trade(ref.tags)
            if not decision.allowed:
                raise RefusedError("verdict", decision.reason)
        cached = self._loaded.get(ref.version)
        if cached is not None:
            return cached
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"v{ref.version}-", dir=self.cache_dir))
        try:
            folder = await self.client.download(ref, work / "model")
            model = await asyncio.to_thread(_load, folder, self.device)
            check_compatible(model, self.config)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        served = Served(ref.version, model)
        self._loaded[ref.version] = served
        return served

    def apply_pending(self) -> list[LifecycleEvent]:
        """Install staged versions; call only between decision batches.

        Returns:
            One ``swapped`` event per alias whose model changed.
        """
        events = []
        for alias, slot in self._slots.items():
            if slot.pending is None:
                continue
            old = slot.serving.version if slot.serving else ""
            slot.serving, slot.pending = slot.pending, None
            self.metrics.model_swaps.labels(alias=alias).inc()
            self.metrics.model_serving_version.labels(alias=alias).set(
                _as_number(slot.serving.version)
            )
            self.metrics.model_trained_until.labels(alias=alias).set(
                trained_until_s(slot.serving.model.manifest.metadata)
            )
            event = LifecycleEvent(alias, "swapped", slot.serving.version, f"from {old or '-'}")
            self._emit(event)
            events.append(event)
        return events

    def _emit(self, event: LifecycleEvent) -> None:
        self.on_event(event)


def _load(folder: Path, device: str) -> LoadedEnsemble:
    try:
        return load_model(folder, device=device)
    except ModelLoadError as exc:
        raise RefusedError(_load_reason(exc), f"{type(exc).__name__}: {exc}") from exc


def _load_reason(exc: ModelLoadError) -> str:
    names: Mapping[str, str] = {
        "ChecksumMismatchError": "sha256",
        "CanaryMismatchError": "canary",
        "UnknownArchitectureError": "architecture",
        "WeightsMismatchError": "architecture",
        "UnsafePayloadError": "pickle",
        "ManifestError": "manifest",
    }
    return names.get(type(exc).__name__, "load")


def _as_number(version: str) -> float:
    try:
        return float(version)
    except ValueError:
        return -1.0


def trained_until_s(metadata: Mapping[str, Any]) -> float:
    """Epoch seconds of a model's last training row (``train_rows_last_ts``; NaN if absent).

    A timestamp without a zone is UTC (what the training pipeline writes).
    """
    try:
        ts = datetime.fromisoformat(str(metadata["train_rows_last_ts"]))
    except (KeyError, ValueError):
        return math.nan
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()


def describe(event: LifecycleEvent) -> dict[str, Any]:
    """A JSON-ready view of an event (for the journal and the status endpoint)."""
    return {
        "alias": event.alias,
        "kind": event.kind,
        "version": event.version,
        "detail": event.detail,
    }
