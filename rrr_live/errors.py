"""The one documented exception hierarchy of RRR.

Business rejections (a denied order, a halted trading state) are values, not exceptions.
Exceptions are for real failures; each carries a one-line message a user can act on, and the
``rrr`` CLI prints any ``RRRError`` as ``Error: <message>`` without a traceback. Classes that
reject a bad argument also derive from ``ValueError`` (marked ``+ValueError``)::

    RRRError
    ├── ConfigError                     invalid or missing setting (names it)
    ├── DatabaseUnavailableError        PostgreSQL unreachable (host and fix; never a password)
    ├── EmbeddedServerError             embedded PostgreSQL cannot start, recover or stop
    ├── MigrationError                  a schema migration failed or was edited after applying
    ├── ServiceStartError               MLflow or Dagster did not come up (rrr_pipelines.stack)
    ├── TradingCoreError                rrr_live.domain.errors
    │   ├── InstrumentError
    │   ├── InvalidOrderTransition
    │   ├── BookError
    │   ├── UnknownOrderError
    │   ├── BacktestInputError
    │   └── VenueRequestError           rrr_live.execution.venue: a bad request to the simulation
    ├── FeatureSpecError +ValueError    rrr_live.features.errors
    ├── FeatureInputError +ValueError
    ├── RiskInputError +ValueError      rrr_live.risk.ewma
    ├── ModelError                      rrr_live.models.errors
    │   ├── ArchitectureConfigError
    │   ├── InferenceInputError
    │   └── ModelLoadError
    │       ├── ManifestError, ChecksumMismatchError, UnknownArchitectureError
    │       └── UnsafePayloadError, WeightsMismatchError, CanaryMismatchError
    ├── RecordingError                  rrr_live.exchange.recorded: unreadable recorded session
    ├── BinanceError                    rrr_live.exchange.paper: the paper venue's error answer
    ├── FeedError                       rrr_live.feeds.errors
    │   └── FatalFeedError              retrying will not help (URL, credentials, subscription)
    ├── Rejected                        one frame rejected (counted by reason; the feed goes on)
    ├── VenueRejected                   rrr_live.venue.rest: the venue refused a request (its code)
    │   └── RateLimited                 429/418 with Retry-After
    ├── AmbiguousOutcome                venue.rest: no answer; resolved by a query, never resent
    ├── StreamRefused                   rrr_live.venue.stream: user-data stream subscription refused
    ├── Disagreement                    rrr_live.venue.reconcile: journal and venue disagree (named)
    ├── RegistryUnavailable             inference.registry_client: MLflow REST did not answer
    ├── RefusedError                    inference.lifecycle: a version may not serve (reason)
    ├── ControlConfigError              rrr_live.service.control: e.g. a public bind without a token
    ├── CaptureError                    persistence.journal.replay: no usable capture to replay
    ├── LedgerUnavailable               rrr_live.shards.ledger: risk ledger unreachable in time
    └── (rrr_pipelines)
        ├── SourceError                 lib.sources: FilesSourceError, RestSourceError
        ├── PublishRefusedError         lib.bars_wap: an unpassed partition is never published
        ├── RegistryError               MLflow model registry (lib.model_registry)
        │   └── GateRefusedError        an alias the verdict rule does not allow
        ├── MlflowUnavailableError      lib.mlflow_health: the MLflow server is down
        ├── StackingError, TrainingDataError          lib.ml.ensemble, lib.ml.lightning_modules
        ├── LabelError, SplitError, MetricError +ValueError   lib.ml.labels/splits/metrics
        ├── WalkForwardError +ValueError  lib.ml.walkforward: folds that cannot be built or trained
        ├── EvaluationError, BaselineError, GateError +ValueError   lib.ml.evaluation/baselines/gate
        └── DriftInputError +ValueError   lib.live_feedback.drift: unusable samples or settings
"""

from __future__ import annotations


class RRRError(Exception):
    """Base class of every RRR failure."""


class ConfigError(RRRError):
    """Invalid or missing configuration; the message names the setting."""


class DatabaseUnavailableError(RRRError):
    """PostgreSQL cannot be reached; the message names the setting and host, never a password."""


class EmbeddedServerError(RRRError):
    """The embedded PostgreSQL server could not be started, recovered or stopped."""


class MigrationError(RRRError):
    """A schema migration failed or an applied migration was edited afterwards."""


class ServiceStartError(RRRError):
    """A local service (MLflow server, Dagster) exited or did not answer in time."""
