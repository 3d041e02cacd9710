"""The one MLflow wrapper: training runs, the ``rrr-ensemble`` registry, aliases, downloads.

Every call goes through an explicit ``MlflowClient(tracking_uri=...)``; nothing sets MLflow's
global tracking URI or active run. A model version's source is the run artifact folder
``model/`` (a directory of safetensors + ``manifest.json``, see :mod:`rrr_live.models`), so the
registry never stores or serves a pickle.

Every version carries its gate verdict as tags, and every alias move goes through the one rule
of :mod:`rrr_live.models.verdict` (the live runner enforces the same): ``challenger`` and
``champion`` need a ``passed`` verdict or a recorded gate override; a failed version may only
be ``shadow``. Promotions and rollbacks are recorded as tags on the version (who, why, when)
and as a JSON history in the registered model's ``champion_history`` tag, which ``rollback``
walks back.

MLflow's client retries a refused connection for minutes by default; RRR bounds it
(``MLFLOW_HTTP_REQUEST_MAX_RETRIES``/``_BACKOFF_FACTOR``/``_TIMEOUT`` defaults below, an
explicit environment wins) and :meth:`ModelRegistry.check_reachable` answers in seconds.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rrr_live.errors import RRRError
from rrr_live.models import verdict as rule
from rrr_pipelines.lib.mlflow_health import MlflowUnavailableError, check_reachable

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)

MODEL_NAME = "rrr-ensemble"
EXPERIMENT = "rrr-training"
CHALLENGER = rule.CHALLENGER
CHAMPION = rule.CHAMPION
SHADOW = rule.SHADOW
HISTORY_TAG = "champion_history"
_MAX_PARAM_CHARS = 6000
# Bounded client retries (MLflow's defaults retry a dead server for about four minutes).
MLFLOW_CLIENT_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


__all__ = [
    "GateRefusedError",
    "MlflowUnavailableError",
    "ModelRegistry",
    "RegisteredVersion",
    "RegistryError",
    "VersionSummary",
    "check_reachable",
]


class RegistryError(RRRError):
    """A registry operation cannot be done (no champion, nothing to roll back to, bad input)."""


class GateRefusedError(RegistryError):
    """An alias move the rule forbids (a failed or unjudged version may only be ``shadow``)."""


@dataclass(frozen=True)
class RegisteredVersion:
    """A registered model version.

    Attributes:
        name: Registered model name.
        version: Version number as MLflow returns it (a string).
        run_id: Training run that produced it.
        source: Artifact URI of the model folder.
    """

    name: str
    version: str
    run_id: str
    source: str


@dataclass(frozen=True)
class VersionSummary:
    """One line of ``rrr model list``.

    Attributes:
        version: Version number.
        candidate: ``ensemble`` or a baseline name.
        verdict: The verdict re-derived from the version's tags.
        aliases: Aliases the version holds.
    """

    version: str
    candidate: str
    verdict: rule.Verdict
    aliases: tuple[str, ...]


class ModelRegistry:
    """Explicit-client MLflow wrapper for RRR training runs and the ``rrr-ensemble`` model.

    Args:
        tracking_uri: MLflow tracking server URI (also used as registry URI).
        model_name: Registered model name.
        experiment: Experiment receiving the training runs.
    """

    def __init__(
        self, tracking_uri: str, *, model_name: str = MODEL_NAME, experiment: str = EXPERIMENT
    ) -> None:
        for key, value in MLFLOW_CLIENT_ENV.items():  # read by MLflow per request
            os.environ.setdefault(key, value)
        from mlflow import MlflowClient  # heavy import kept out of module import time

        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.experiment = experiment
        self.client: MlflowClient = MlflowClient(
            tracking_uri=tracking_uri, registry_uri=tracking_uri
        )

    def check_reachable(self, timeout: float = 3.0) -> None:
        """Fail fast, in one line, when the tracking server does not answer (see below)."""
        check_reachable(self.tracking_uri, timeout)

    def _experiment_id(self) -> str:
        exp = self.client.get_experiment_by_name(self.experiment)
        if exp is not None:
            return str(exp.experiment_id)
        return str(self.client.create_experiment(self.experiment))

    def log_training_run(
        self,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        feature_spec: Mapping[str, Any],
        data_range: Mapping[str, Any],
        git_commit: str,
        model_dir: Path | str,
        *,
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Create a finished run with params, metrics, feature spec, data range and the model.

        Args:
            params: Training parameters (values are stringified; long ones truncated).
            metrics: Final metrics (finite floats).
            feature_spec: Feature spec description; logged as ``feature_spec.json``.
            data_range: Data window description; logged as ``data_range.json``.
            git_commit: Commit of the training code (tag ``git_commit``).
            model_dir: Directory written by :func:`rrr_live.models.save_model`; logged as
                the run artifact folder ``model``.
            run_name: Optional run name.
            tags: Extra run tags.

        Returns:
            The run id.
        """
        from mlflow.entities import Metric, Param, RunTag

        model_path = Path(model_dir)
        if not (model_path / "manifest.json").is_file():
            raise RegistryError(f"{model_path} has no manifest.json; save the model first")
        all_tags = {"git_commit": git_commit, **dict(tags or {})}
        if "version" in feature_spec:
            all_tags["feature_spec_version"] = str(feature_spec["version"])
        run = self.client.create_run(self._experiment_id(), run_name=run_name, tags=all_tags)
        run_id = run.info.run_id
        try:
            now_ms = int(time.time() * 1000)
            self.client.log_batch(
                run_id,
                metrics=[Metric(k, float(v), now_ms, 0) for k, v in metrics.items()],
                params=[Param(k, str(v)[:_MAX_PARAM_CHARS]) for k, v in params.items()],
                tags=[RunTag("data_range", json.dumps(dict(data_range), default=str))],
            )
            self.client.log_dict(run_id, dict(feature_spec), "feature_spec.json")
            self.client.log_dict(
                run_id, json.loads(json.dumps(dict(data_range), default=str)), "data_range.json"
            )
            self.client.log_artifacts(run_id, str(model_path), artifact_path="model")
        except BaseException:
            self.client.set_terminated(run_id, status="FAILED")
            raise
        self.client.set_terminated(run_id, status="FINISHED")
        logger.info("logged training run %s", run_id)
        return str(run_id)

    def register(self, run_id: str, tags: Mapping[str, str]) -> RegisteredVersion:
        """Register the run's ``model`` folder as a new version carrying ``tags`` (no alias).

        Args:
            run_id: Run logged by :meth:`log_training_run`.
            tags: Version tags, normally the verdict tags of :mod:`rrr_live.models.verdict`.

        Returns:
            The new version.
        """
        from mlflow.exceptions import MlflowException

        run = self.client.get_run(run_id)
        source = f"{run.info.artifact_uri.rstrip('/')}/model"
        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException as e:
            if e.error_code != "RESOURCE_DOES_NOT_EXIST":  # an outage is not "no model yet"
                raise
            self.client.create_registered_model(self.model_name)
        mv = self.client.create_model_version(
            self.model_name, source=source, run_id=run_id, tags=dict(tags)
        )
        version = str(mv.version)
        logger.info("registered %s version %s", self.model_name, version)
        return RegisteredVersion(self.model_name, version, run_id, source)

    def check_alias(self, version: str, alias: str) -> rule.AliasDecision:
        """Whether ``version`` may hold ``alias`` under the rule, read from its tags now."""
        return rule.check_alias(self.version_tags(version), alias)

    def set_alias(self, version: str, alias: str) -> None:
        """Point ``alias`` at ``version`` if the rule allows it.

        Raises:
            GateRefusedError: the version may not hold the alias (the message says why).
        """
        decision = self.check_alias(version, alias)
        if not decision.allowed:
            raise GateRefusedError(
                f"{self.model_name} v{version} may not be @{alias}: {decision.reason}"
            )
        self.client.set_registered_model_alias(self.model_name, alias, version)
        logger.info("%s v%s is @%s (%s)", self.model_name, version, alias, decision.reason)

    def record_override(
        self, version: str, reason: str, who: str, *, when: datetime | None = None
    ) -> None:
        """Record a gate override on ``version`` (who, when, why) as version tags.

        Raises:
            RegistryError: no reason or person given.
        """
        try:
            tags = rule.override_tags(who, (when or datetime.now(UTC)).astimezone(UTC), reason)
        except ValueError as e:
            raise RegistryError(f"a gate override needs a reason and a person: {e}") from e
        self.client.get_model_version(self.model_name, version)  # raises if unknown
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, version, key, value)
        logger.warning("gate override on %s v%s by %s: %s", self.model_name, version, who, reason)

    def versions(self) -> list[VersionSummary]:
        """Every version with its candidate, re-derived verdict and aliases, oldest first."""
        from mlflow.exceptions import MlflowException

        try:  # search results carry no aliases; the registered model has them all
            aliases: dict[str, str] = dict(
                self.client.get_registered_model(self.model_name).aliases
            )
        except MlflowException as e:
            if e.error_code == "RESOURCE_DOES_NOT_EXIST":
                return []
            raise
        found = self.client.search_model_versions(f"name='{self.model_name}'")
        rows = [
            VersionSummary(
                str(mv.version),
                mv.tags.get(rule.TAG_CANDIDATE, "?"),
                rule.parse_verdict(mv.tags),
                tuple(sorted(a for a, v in aliases.items() if str(v) == str(mv.version))),
            )
            for mv in found
        ]
        return sorted(rows, key=lambda r: int(r.version))

    def version_tags(self, version: str) -> dict[str, str]:
        """Tags of a model version.

        Args:
            version: Model version.

        Returns:
            ``{tag: value}``.
        """
        return dict(self.client.get_model_version(self.model_name, version).tags)

    def alias_version(self, alias: str) -> str | None:
        """The version an alias points at, or ``None`` when unset.

        Args:
            alias: ``champion``, ``challenger``...

        Returns:
            The version string or ``None``.
        """
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.model_name, alias).version)
        except MlflowException as e:
            # no such alias: INVALID_PARAMETER_VALUE; no such model: RESOURCE_DOES_NOT_EXIST
            if e.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"):
                return None
            raise

    def champion_history(self) -> list[dict[str, Any]]:
        """Promotion/rollback history, oldest first.

        Returns:
            Entries ``{"version", "previous", "action", "who", "why", "when"}``.
        """
        tags = self.client.get_registered_model(self.model_name).tags
        history: list[dict[str, Any]] = json.loads(tags.get(HISTORY_TAG, "[]"))
        return history

    def promote(
        self,
        version: str,
        reason: str,
        who: str,
        *,
        when: datetime | None = None,
        override_gate: bool = False,
    ) -> None:
        """Point ``champion`` at ``version`` and record who, why and when.

        Args:
            version: Version to promote.
            reason: Why (free text, required).
            who: Who decided (required).
            when: Time of the decision (tz-aware; default now, UTC).
            override_gate: Record a gate override first, so a version that did not pass its
                gate may trade anyway (the override stays on the version, visible to all).

        Raises:
            GateRefusedError: the version did not pass and no override was given.
        """
        if not reason.strip() or not who.strip():
            raise RegistryError("promote needs a reason and a person (who)")
        if override_gate and not self.check_alias(version, CHAMPION).allowed:
            self.record_override(version, reason, who, when=when)
        self._set_champion(version, "promote", reason, who, when)

    def rollback(self, reason: str, who: str, *, when: datetime | None = None) -> str:
        """Point ``champion`` back at the champion it replaced (if the rule still allows it).

        Args:
            reason: Why.
            who: Who decided.
            when: Time of the decision (tz-aware; default now, UTC).

        Returns:
            The version that is champion again.

        Raises:
            RegistryError: No champion, or no previous champion to return to.
            GateRefusedError: the previous champion may not trade any more.
        """
        current = self.alias_version(CHAMPION)
        if current is None:
            raise RegistryError(f"{self.model_name} has no champion to roll back")
        history = self.champion_history()
        previous = next((h["previous"] for h in reversed(history) if h["version"] == current), None)
        if previous is None:
            raise RegistryError(f"champion version {current} has no previous champion")
        self._set_champion(str(previous), "rollback", reason, who, when)
        return str(previous)

    def _set_champion(
        self, version: str, action: str, reason: str, who: str, when: datetime | None
    ) -> None:
        if not reason.strip() or not who.strip():
            raise RegistryError(f"{action} needs a reason and a person (who)")
        stamp = (when or datetime.now(UTC)).astimezone(UTC).isoformat()
        previous = self.alias_version(CHAMPION)
        if action == "rollback":  # returning to an older champion: its predecessor stays
            hist = self.champion_history()
            previous = next(
                (h["previous"] for h in reversed(hist) if h["version"] == version), None
            )
        self.set_alias(version, CHAMPION)
        prefix = "promoted" if action == "promote" else "rolled_back_to"
        for key, value in (("by", who), ("reason", reason), ("at", stamp)):
            self.client.set_model_version_tag(self.model_name, version, f"{prefix}.{key}", value)
        history = self.champion_history()
        history.append(
            {
                "version": version,
                "previous": previous,
                "action": action,
                "who": who,
                "why": reason,
                "when": stamp,
            }
        )
        self.client.set_registered_model_tag(self.model_name, HISTORY_TAG, json.dumps(history))
        logger.info("%s %s version %s by %s: %s", action, self.model_name, version, who, reason)

    def download(self, alias: str = CHAMPION, dst_path: Path | str | None = None) -> Path:
        """Download the model folder behind ``alias`` (ready for ``rrr_live.models.load_model``).

        Args:
            alias: Alias to resolve (``champion`` by default).
            dst_path: Destination directory (a fresh temporary one by default).

        Returns:
            The local directory holding ``manifest.json``.
        """
        import mlflow.artifacts

        version = self.alias_version(alias)
        if version is None:
            raise RegistryError(f"{self.model_name} has no alias {alias!r}")
        # Resolve the alias with our explicit client: a "models:/name@alias" URI is resolved by
        # MLflow 3.17 against the *global* registry URI (it ignores registry_uri=), which would
        # silently create ./mlflow.db when no global URI is set.
        source = self.client.get_model_version_download_uri(self.model_name, version)
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=source,
            dst_path=None if dst_path is None else str(dst_path),
            tracking_uri=self.tracking_uri,
        )
        path = Path(local)
        if not (path / "manifest.json").is_file():
            raise RegistryError(f"version {version} ({source}) has no manifest.json")
        return path
