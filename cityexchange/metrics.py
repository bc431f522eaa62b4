"""Prometheus metrics of one app instance, and the PyMongo listener that feeds them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass(slots=True)
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    db_commands: Counter = field(init=False)
    db_command_failures: Counter = field(init=False)
    operations: Counter = field(init=False)
    operation_seconds: Histogram = field(init=False)

    def __post_init__(self) -> None:
        r = self.registry
        self.db_commands = Counter(
            "cityexchange_db_commands",
            "Database commands sent (round trips), by command and origin "
            "(request, subscription or background).",
            ["command", "origin"],
            registry=r,
        )
        self.db_command_failures = Counter(
            "cityexchange_db_command_failures",
            "Database commands that failed, by command.",
            ["command"],
            registry=r,
        )
        self.operations = Counter(
            "cityexchange_graphql_operations",
            "GraphQL operations by name, type and outcome.",
            ["operation", "type", "outcome"],
            registry=r,
        )
        self.operation_seconds = Histogram(
            "cityexchange_graphql_operation_seconds",
            "GraphQL operation duration.",
            ["type"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    def command_started(self, command: str, origin: str) -> None:
        self.db_commands.labels(command, origin).inc()

    def command_failed(self, command: str) -> None:
        self.db_command_failures.labels(command).inc()

    def operation_done(self, name: str, type: str, outcome: str, seconds: float) -> None:
        self.operations.labels(name, type, outcome).inc()
        self.operation_seconds.labels(type).observe(seconds)

    def live(self, subscribers: Callable[[], int], groups: Callable[[], int]) -> LiveMetrics:
        """Gauges and counters of live updates; the callables are read at scrape time."""
        r = self.registry
        active = Gauge(
            "cityexchange_subscriptions_active", "Active event subscriptions.", registry=r
        )
        active.set_function(lambda: float(subscribers()))
        shared = Gauge(
            "cityexchange_subscription_groups",
            "Groups of identical subscriptions, each executed once per event.",
            registry=r,
        )
        shared.set_function(lambda: float(groups()))
        return LiveMetrics(
            websockets=Gauge(
                "cityexchange_websocket_connections", "Open WebSocket connections.", registry=r
            ),
            change_streams=Gauge(
                "cityexchange_change_streams_open",
                "Change streams this process has open (one).",
                registry=r,
            ),
            fanned_out=Counter(
                "cityexchange_events_fanned_out", "Events handed to subscribers.", registry=r
            ),
            webhook_attempts=Counter(
                "cityexchange_webhook_attempts", "Webhook delivery attempts by outcome.",
                ["outcome"], registry=r,
            ),
            delivery_lag=Histogram(
                "cityexchange_webhook_delivery_lag_seconds",
                "From an event's commit to its delivery.", registry=r,
                buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            ),
        )  # fmt: skip

    def documents(self, analysed: Callable[[], int], validated: Callable[[], int]) -> None:
        """Counters of the document gate's work (cache misses), read at scrape time."""
        self.registry.register(_DocumentWork(analysed, validated))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _DocumentWork(Collector):
    def __init__(self, analysed: Callable[[], int], validated: Callable[[], int]) -> None:
        self.analysed, self.validated = analysed, validated

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "cityexchange_documents_analysed",
            "Documents measured by the gate (depth, aliases, cost): misses of its cache.",
            value=self.analysed(),
        )
        yield CounterMetricFamily(
            "cityexchange_documents_validated",
            "Documents validated: misses of the validation cache.",
            value=self.validated(),
        )


@dataclass(frozen=True, slots=True)
class LiveMetrics:
    websockets: Gauge
    change_streams: Gauge
    fanned_out: Counter
    webhook_attempts: Counter
    delivery_lag: Histogram
