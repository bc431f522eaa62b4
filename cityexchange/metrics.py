"""Prometheus metrics of the service, the PyMongo listener's counters, and the HTTP
middleware that counts requests by route template and status.

With `serve --workers N` every worker writes its values to files in PROMETHEUS_MULTIPROC_DIR
(prometheus_client's multiprocess mode) and `/metrics`, whichever worker answers it, shows them
summed; gauges say how they add up (`multiprocess_mode`). What is measured by reading
something (active subscriptions, the document gate's work, garbage collection) is sampled
into ordinary metrics by `sample()`, at scrape time and every second, so that it reaches
the files too. Process metrics (CPU, memory, open files) carry a `pid` label per worker then.
"""

from __future__ import annotations

import gc
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityexchange import embedded

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PID_FILE = re.compile(r"_(\d+)\.db$")
_Read = Callable[[], int]


@dataclass(frozen=True, slots=True)
class LiveMetrics:
    websockets: Gauge
    change_streams: Gauge
    fanned_out: Counter
    webhook_attempts: Counter
    delivery_lag: Histogram
    subscriptions: Gauge
    groups: Gauge


@dataclass(slots=True)
class Metrics:
    """The metrics of one process; `multiprocess_dir` when it is one of `serve`'s workers."""

    multiprocess_dir: str | None = None
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    db_commands: Counter = field(init=False)
    db_command_failures: Counter = field(init=False)
    operations: Counter = field(init=False)
    operation_seconds: Histogram = field(init=False)
    http_requests: Counter = field(init=False)
    http_seconds: Histogram = field(init=False)
    live_updates: LiveMetrics = field(init=False)
    _sampled_counters: list[tuple[Counter, _Read, list[int]]] = field(
        default_factory=list[tuple[Counter, _Read, list[int]]], init=False
    )
    _sampled_gauges: list[tuple[Gauge, _Read]] = field(
        default_factory=list[tuple[Gauge, _Read]], init=False
    )

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
        self.http_requests = Counter(
            "cityexchange_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "cityexchange_http_request_seconds",
            "HTTP request duration by method and route template.",
            ["method", "route"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.live_updates = LiveMetrics(
            websockets=Gauge(
                "cityexchange_websocket_connections",
                "Open WebSocket connections.",
                registry=r,
                multiprocess_mode="livesum",
            ),
            change_streams=Gauge(
                "cityexchange_change_streams_open",
                "Change streams open (one per process).",
                registry=r,
                multiprocess_mode="livesum",
            ),
            fanned_out=Counter(
                "cityexchange_events_fanned_out", "Events handed to subscribers.", registry=r
            ),
            webhook_attempts=Counter(
                "cityexchange_webhook_attempts",
                "Webhook delivery attempts by outcome.",
                ["outcome"],
                registry=r,
            ),
            delivery_lag=Histogram(
                "cityexchange_webhook_delivery_lag_seconds",
                "From an event's commit to its delivery.",
                registry=r,
                buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            ),
            subscriptions=Gauge(
                "cityexchange_subscriptions_active",
                "Active event subscriptions.",
                registry=r,
                multiprocess_mode="livesum",
            ),
            groups=Gauge(
                "cityexchange_subscription_groups",
                "Groups of identical subscriptions, each executed once per event.",
                registry=r,
                multiprocess_mode="livesum",
            ),
        )
        if self.multiprocess_dir is None:
            ProcessCollector(registry=r)  # this process's CPU, memory, open files
        collections = Counter(
            "cityexchange_gc_collections",
            "Garbage collections, by generation.",
            ["generation"],
            registry=r,
        )
        collected = Counter(
            "cityexchange_gc_objects_collected",
            "Objects collected by the garbage collector, by generation.",
            ["generation"],
            registry=r,
        )
        for generation in range(len(gc.get_stats())):
            label = str(generation)

            def stat(key: str, g: int = generation) -> _Read:
                return lambda: int(gc.get_stats()[g][key])

            self._count(collections.labels(label), stat("collections"))
            self._count(collected.labels(label), stat("collected"))

    def _count(self, counter: Counter, read: _Read) -> None:
        self._sampled_counters.append((counter, read, [0]))

    def command_started(self, command: str, origin: str) -> None:
        self.db_commands.labels(command, origin).inc()

    def command_failed(self, command: str) -> None:
        self.db_command_failures.labels(command).inc()

    def operation_done(self, name: str, type: str, outcome: str, seconds: float) -> None:
        self.operations.labels(name, type, outcome).inc()
        self.operation_seconds.labels(type).observe(seconds)

    def request_done(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "other"
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_seconds.labels(method, route).observe(seconds)

    def read_live(self, subscribers: _Read, groups: _Read) -> None:
        """Where the subscription gauges read their values (at each sample)."""
        self._sampled_gauges += [
            (self.live_updates.subscriptions, subscribers),
            (self.live_updates.groups, groups),
        ]

    def documents(self, analysed: _Read, validated: _Read) -> None:
        """Counters of the document gate's work (cache misses), read at each sample."""
        self._count(
            Counter(
                "cityexchange_documents_analysed",
                "Documents measured by the gate (depth, aliases, cost): misses of its cache.",
                registry=self.registry,
            ),
            analysed,
        )
        self._count(
            Counter(
                "cityexchange_documents_validated",
                "Documents validated: misses of the validation cache.",
                registry=self.registry,
            ),
            validated,
        )

    def sample(self) -> None:
        """Bring what is measured by reading up to date."""
        for gauge, read in self._sampled_gauges:
            gauge.set(float(read()))
        for counter, read, last in self._sampled_counters:
            value = read()
            if value > last[0]:
                counter.inc(value - last[0])
            last[0] = value

    def render(self) -> bytes:
        self.sample()
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        summed = CollectorRegistry()
        MultiProcessCollector(summed, path=self.multiprocess_dir)
        summed.register(_WorkerProcesses(Path(self.multiprocess_dir)))
        return generate_latest(summed)


class _WorkerProcesses(Collector):
    """CPU, memory and open files of every live worker, labelled by pid (the workers are
    the processes with value files in the multiprocess directory)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        pids = sorted(
            {int(m.group(1)) for p in self.directory.iterdir() if (m := _PID_FILE.search(p.name))}
        )
        merged: dict[str, Metric] = {}
        for pid in pids:
            if not embedded.alive(pid):
                continue
            for family in ProcessCollector(pid=lambda pid=pid: pid, registry=None).collect():
                into = merged.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    into.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        yield from merged.values()


class RequestMetricsMiddleware:
    """Counts HTTP requests and their duration by route template (`/realms/{city}/token`,
    never the raw path, which a client could vary without end) and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None)
            self.metrics.request_done(
                str(scope.get("method", "")),
                route if isinstance(route, str) else "unmatched",
                status,
                time.perf_counter() - started,
            )


def mark_worker_gone(metrics: Metrics) -> None:
    """A worker that stops takes its live gauges' values with it (multiprocess mode)."""
    if metrics.multiprocess_dir is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid(), metrics.multiprocess_dir)  # pyright: ignore[reportUnknownMemberType]
