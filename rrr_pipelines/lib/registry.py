"""The one MLflow wrapper: training runs, the ``rrr-ensemble`` registry, aliases, downloads.

Every call goes through an explicit ``MlflowClient(tracking_uri=...)``; nothing sets MLflow's
global tracking URI or active run. A model version's source is the run artifact folder
``model/`` (a directory of safetensors + ``manifest.json``, see :mod:`rrr_live.models`), so the
registry never stores or serves a pickle.

Aliases: ``challenger`` marks the latest registered version; ``champion`` is what live serves.
Promotions and rollbacks are recorded as tags on the version (who, why, when) and as a JSON
history in the registered model's ``champion_history`` tag, which ``rollback`` walks back.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rrr_live.errors import RRRError

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)

MODEL_NAME = "rrr-ensemble"
EXPERIMENT = "rrr-training"
CHALLENGER = "challenger"
CHAMPION = "champion"
HISTORY_TAG = "champion_history"
_MAX_PARAM_CHARS = 6000


class RegistryError(RRRError):
    """A registry operation cannot be done (no champion, nothing to roll back to, bad input)."""


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
        from mlflow import MlflowClient  # heavy import kept out of module import time

        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.experiment = experiment
        self.client: MlflowClient = MlflowClient(
            tracking_uri=tracking_uri, registry_uri=tracking_uri
        )

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

    def register(
        self, run_id: str, *, verdict: str | None = None, reasons: Sequence[str] = ()
    ) -> RegisteredVersion:
        """Register the run's ``model`` folder as a new version and alias it ``challenger``.

        Args:
            run_id: Run logged by :meth:`log_training_run`.
            verdict: Optional gate verdict (e.g. ``passed`` / ``failed``) to tag.
            reasons: Gate reasons to tag with the verdict.

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
        mv = self.client.create_model_version(self.model_name, source=source, run_id=run_id)
        version = str(mv.version)
        self.client.set_registered_model_alias(self.model_name, CHALLENGER, version)
        if verdict is not None:
            self.set_gate(version, verdict, reasons)
        logger.info("registered %s version %s", self.model_name, version)
        return RegisteredVersion(self.model_name, version, run_id, source)

    def set_gate(self, version: str, verdict: str, reasons: Sequence[str]) -> None:
        """Tag a version with the promotion-gate verdict and its reasons.

        Args:
            version: Model version.
            verdict: Verdict (free text, e.g. ``passed``).
            reasons: Human-readable reasons (stored as a JSON list).
        """
        self.client.set_model_version_tag(self.model_name, version, "gate.verdict", verdict)
        self.client.set_model_version_tag(
            self.model_name, version, "gate.reasons", json.dumps(list(reasons))
        )

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

    def promote(self, version: str, reason: str, who: str, *, when: datetime | None = None) -> None:
        """Point ``champion`` at ``version`` and record who, why and when.

        Args:
            version: Version to promote.
            reason: Why (free text, required).
            who: Who decided (required).
            when: Time of the decision (tz-aware; default now, UTC).
        """
        self._set_champion(version, "promote", reason, who, when)

    def rollback(self, reason: str, who: str, *, when: datetime | None = None) -> str:
        """Point ``champion`` back at the champion it replaced.

        Args:
            reason: Why.
            who: Who decided.
            when: Time of the decision (tz-aware; default now, UTC).

        Returns:
            The version that is champion again.

        Raises:
            RegistryError: No champion, or no previous champion to return to.
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
        self.client.get_model_version(self.model_name, version)  # raises if unknown
        previous = self.alias_version(CHAMPION)
        if action == "rollback":  # returning to an older champion: its predecessor stays
            hist = self.champion_history()
            previous = next(
                (h["previous"] for h in reversed(hist) if h["version"] == version), None
            )
        self.client.set_registered_model_alias(self.model_name, CHAMPION, version)
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
