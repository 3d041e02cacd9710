"""An MLflow outage is an error, not "no such alias" / "no model yet" (no server needed)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
)

from rrr_pipelines.lib.model_registry import ModelRegistry


class _FailingClient:
    """Answers every lookup with one MLflow error; records what else was asked."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.created: list[str] = []

    def get_model_version_by_alias(self, name: str, alias: str) -> None:
        raise MlflowException(f"{name}@{alias}", self.code)

    def get_run(self, run_id: str) -> SimpleNamespace:
        return SimpleNamespace(info=SimpleNamespace(artifact_uri=f"file:///runs/{run_id}"))

    def get_registered_model(self, name: str) -> None:
        raise MlflowException(name, self.code)

    def create_registered_model(self, name: str) -> None:
        self.created.append(name)


def _registry(code: int) -> tuple[ModelRegistry, _FailingClient]:
    registry = ModelRegistry("http://127.0.0.1:9", model_name="m")
    client = _FailingClient(code)
    registry.client = client  # type: ignore[assignment]
    return registry, client


@pytest.mark.parametrize("code", [INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST])
def test_missing_alias_or_model_reads_as_unset(code: int) -> None:
    registry, _ = _registry(code)
    assert registry.alias_version("champion") is None


def test_outage_is_raised_not_read_as_unset() -> None:
    registry, _ = _registry(INTERNAL_ERROR)
    with pytest.raises(MlflowException, match="m@champion"):
        registry.alias_version("champion")


def test_register_does_not_create_the_model_on_an_outage() -> None:
    registry, client = _registry(INTERNAL_ERROR)
    with pytest.raises(MlflowException):
        registry.register("1", {})
    assert client.created == []
