"""Every Prometheus metric of the live side, defined once.

Components take a :class:`Metrics` instance (injected) instead of touching module globals, so
a test builds its own on a fresh ``CollectorRegistry`` and a process builds one for its
``/metrics`` endpoint. Label values are small closed sets (venue, reason, stage, queue).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from rrr_live.risk.reasons import DenyReason

# Seconds; tick-to-decision targets are 100 ms (floor) and 5-10 ms (stretch).
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
)  # fmt: skip
ORDER_OUTCOMES = ("accepted", "rejected")  # the venue's answer to an order sent


class Metrics:
    """The live side's metrics on one registry.

    Args:
        registry: where the metrics are registered (a fresh one per test).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.frames_received = Counter(
            "rrr_feed_frames_received", "Frames received from a feed", ["venue"], registry=r
        )
        self.frames_rejected = Counter(
            "rrr_feed_frames_rejected", "Frames rejected, by reason", ["venue", "reason"],
            registry=r,
        )  # fmt: skip
        self.frames_ignored = Counter(
            "rrr_feed_frames_ignored", "Frames of streams we do not use", ["venue", "stream"],
            registry=r,
        )  # fmt: skip
        self.reconnects = Counter(
            "rrr_feed_reconnects", "Feed reconnects, by cause", ["venue", "cause"], registry=r
        )
        self.resyncs = Counter(
            "rrr_feed_resyncs", "Book resyncs, by cause", ["venue", "cause"], registry=r
        )
        self.book_staleness = Gauge(
            "rrr_book_staleness_seconds", "Data-time seconds since a symbol's last update",
            ["venue", "symbol"], registry=r,
        )  # fmt: skip
        self.stage_latency = Histogram(
            "rrr_stage_latency_seconds", "Per-stage latency", ["stage"], registry=r,
            buckets=LATENCY_BUCKETS,
        )  # fmt: skip
        self.queue_depth = Gauge("rrr_queue_depth", "Items waiting", ["queue"], registry=r)
        self.journal_rows = Counter(
            "rrr_journal_rows_written", "Rows committed to the journal", ["table"], registry=r
        )
        self.journal_lag = Gauge(
            "rrr_journal_writer_lag_seconds", "Age of the oldest unwritten journal record",
            registry=r,
        )  # fmt: skip
        self.spill_bytes = Gauge(
            "rrr_journal_spill_bytes", "Bytes waiting in the spill-to-disk buffer", registry=r
        )
        self.journal_dropped = Counter(
            "rrr_journal_records_dropped", "Records dropped past the spill hard cap", registry=r
        )
        self.journal_spilled = Counter(
            "rrr_journal_records_spilled", "Records written to the spill-to-disk buffer",
            registry=r,
        )  # fmt: skip
        self.journal_lost_data = Gauge(
            "rrr_journal_lost_data", "1 once the journal dropped records (a risk input)",
            registry=r,
        )  # fmt: skip
        self.exchange_frames_sent = Counter(
            "rrr_exchange_frames_sent", "Frames the replay exchange sent", ["protocol"],
            registry=r,
        )  # fmt: skip
        self.exchange_connections = Gauge(
            "rrr_exchange_connections", "Open websocket connections to the replay exchange",
            registry=r,
        )  # fmt: skip
        self.exchange_faults = Counter(
            "rrr_exchange_faults", "Fault hooks fired by the replay exchange", ["fault"],
            registry=r,
        )  # fmt: skip
        self.model_refusals = Counter(
            "rrr_model_refusals", "Model versions refused (alert), by alias and reason",
            ["alias", "reason"], registry=r,
        )  # fmt: skip
        self.model_swaps = Counter(
            "rrr_model_swaps", "Models installed between batches", ["alias"], registry=r
        )
        self.model_registry_errors = Counter(
            "rrr_model_registry_errors", "Registry polls that failed (model kept)", registry=r
        )
        self.model_serving_version = Gauge(
            "rrr_model_serving_version", "Registry version serving each alias", ["alias"],
            registry=r,
        )  # fmt: skip
        self.exchange_http_requests = Counter(
            "rrr_exchange_http_requests", "REST requests answered, by status", ["status"],
            registry=r,
        )  # fmt: skip
        self._runner_state(r)

    def _runner_state(self, r: CollectorRegistry) -> None:
        """The runner's state the alert rules watch (deploy/prometheus/rules)."""
        self.feed_last_frame = Gauge(
            "rrr_feed_last_frame_timestamp_seconds", "Clock time of the last frame received",
            ["venue"], registry=r,
        )  # fmt: skip
        self.model_registry_polled = Gauge(
            "rrr_model_registry_last_success_timestamp_seconds",
            "Wall time the registry last answered an alias poll", registry=r,
        )  # fmt: skip
        self.model_trained_until = Gauge(
            "rrr_model_trained_until_timestamp_seconds",
            "Last training row's time of the version serving each alias (NaN: not declared)",
            ["alias"], registry=r,
        )  # fmt: skip
        self.model_refused = Gauge(
            "rrr_model_refused", "1 while the alias points at a version this runner refused",
            ["alias"], registry=r,
        )  # fmt: skip
        self.trading_state = Gauge(
            "rrr_trading_state", "1 for the trading state the risk engine is in", ["state"],
            registry=r,
        )  # fmt: skip
        self.drawdown = Gauge(
            "rrr_drawdown_ratio", "Drawdown from the high-water mark at the last decision",
            registry=r,
        )  # fmt: skip
        self.drawdown_limit = Gauge(
            "rrr_drawdown_limit_ratio", "Drawdown that halts trading (risk.max_drawdown)",
            registry=r,
        )  # fmt: skip
        self.equity = Gauge(
            "rrr_equity", "Portfolio equity at the last decision (quote currency)", registry=r
        )
        self.batches = Counter("rrr_batches", "Decision batches run", registry=r)
        self.last_batch = Gauge(
            "rrr_last_batch_timestamp_seconds", "Wall time of the last decision batch",
            registry=r,
        )  # fmt: skip
        self.orders = Counter(
            "rrr_orders", "Orders sent to the venue, by its answer", ["outcome"], registry=r
        )
        self.ledger_lock_wait = Histogram(
            "rrr_ledger_lock_wait_seconds", "Wait for the risk ledger's account row lock",
            registry=r, buckets=LATENCY_BUCKETS,
        )  # fmt: skip
        self.risk_denials = Counter(
            "rrr_risk_denials", "Orders the risk engine denied, by reason", ["reason"],
            registry=r,
        )  # fmt: skip
        # Every closed label set exists from the start: rules and panels see 0, not "no data".
        for outcome in ORDER_OUTCOMES:
            self.orders.labels(outcome)
        for reason in DenyReason:
            if reason is not DenyReason.OK:
                self.risk_denials.labels(reason.name)


class MetricsEndpoint:
    """A running ``/metrics`` HTTP endpoint; :meth:`close` stops it.

    Args:
        host: the address it is bound to.
        port: the port it listens on.
        close: stops the server and joins its thread.
    """

    def __init__(self, host: str, port: int, close: Callable[[], None]) -> None:
        self.host = host
        self.port = port
        self._close = close

    def close(self) -> None:
        """Stop serving (idempotent)."""
        close, self._close = self._close, lambda: None
        close()


def serve_metrics(metrics: Metrics, port: int = 0, host: str = "127.0.0.1") -> MetricsEndpoint:
    """Serve ``metrics`` at ``http://host:port/metrics`` from a daemon thread.

    Binds 127.0.0.1 unless told otherwise (prometheus_client's own default is 0.0.0.0).

    Args:
        metrics: what to expose.
        port: TCP port; 0 picks a free one (read it from the result).
        host: address to bind.
    """
    httpd, thread = start_http_server(port, addr=host, registry=metrics.registry)

    def close() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(2)

    return MetricsEndpoint(str(httpd.server_address[0]), int(httpd.server_port), close)
