"""The MLflow resource: one explicit client wrapper, no global MLflow state."""

import dagster as dg


class MlflowResource(dg.ConfigurableResource):
    """Access to the MLflow tracking server and the ``rrr-ensemble`` registry."""

    tracking_uri: str

    def registry(self):
        """Return a :class:`rrr_pipelines.lib.registry.ModelRegistry` bound to this server."""
        from rrr_pipelines.lib.registry import ModelRegistry

        return ModelRegistry(self.tracking_uri)
