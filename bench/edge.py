"""Benchmark: the service side by side with hand-written code (bench/baseline.py).

Each server runs as its own process on loopback against one embedded database started here.
For each pair the responses are first checked to be the same JSON; then rounds alternate
(service, baseline, service, baseline, ...) and each round's ratio is kept, so the table shows
min / median / max of the ratios. CPU is the server process's utime + stime from /proc
(with its workers); round trips are the service's /metrics counter of request commands and
the baseline's PyMongo CommandListener.

- the nested page (problems -> solutions -> comments -> author, about 100 items) and
  `{ viewer { subject } }`: CPU and round trips per request;
- `cityexchange serve --workers 2` against one worker: requests per second of the viewer query;
- subscriptions (bench/fanout.py): CPU per delivery and p99 latency to 1,000 subscribers
  against a raw WebSocket send of the same payload, memory per idle subscribed socket.

    .venv/bin/python -m bench.edge [--rounds 5] [--subscribers 1000] [--skip-fanout]
        [--only http|workers|fanout ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import fanout
from bench.baseline import NESTED_PAGE, VIEWER
from bench.edge_servers import DB_NAME, seed, start_baseline, start_service, workers_supported
from bench.procs import cpu_seconds, free_port, spread, stop, wait_ready
from bench.seeding import seeding_database
from bench.throughput import requests_per_second
from cityexchange.embedded import EmbeddedDatabase
from cityexchange.settings import Secret, Settings

# 10 problems x 3 solutions x 2 comments = 100 items, each comment with its author.
PAGE_SIZES = {"problems": 10, "solutions": 3, "comments": 2}
PARTS = ("http", "workers", "fanout")  # the table's rows, in groups --only can pick


@dataclass
class Row:
    measure: str
    service: str
    baseline: str
    ratios: list[float]
    goal: str
    limit: float
    higher_is_better: bool = False
    unit: str = "x"  # of the ratios column; "KiB" where it holds the value itself

    @property
    def met(self) -> bool:
        median = statistics.median(self.ratios)
        return median >= self.limit if self.higher_is_better else median <= self.limit


async def _service_commands(http: httpx.AsyncClient, base: str) -> float:
    text = (await http.get(f"{base}/metrics")).text
    pattern = r'^cityexchange_db_commands_total\{[^}]*origin="request"[^}]*\} (\S+)$'
    return sum(float(v) for v in re.findall(pattern, text, re.MULTILINE))


async def _baseline_commands(http: httpx.AsyncClient, base: str) -> float:
    return float((await http.get(f"{base}/commands")).json()["commands"])


def _items(data: Any) -> int:
    """Objects with an id in a response: the page's size."""
    if isinstance(data, dict):
        return ("id" in data) + sum(_items(v) for v in data.values())  # type: ignore[arg-type]
    if isinstance(data, list):
        return sum(_items(v) for v in data)  # type: ignore[arg-type]
    return 0


def _first_difference(a: Any, b: Any, path: str) -> str | None:
    """Where two parsed JSON values first differ, and how; None when they are equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in dict.fromkeys([*a, *b]):  # type: ignore[misc]
            found = _first_difference(a.get(key), b.get(key), f"{path}.{key}")  # type: ignore[union-attr]
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):  # type: ignore[arg-type]
            return f"{path}: {len(a)} items against {len(b)}"  # type: ignore[arg-type]
        for i, (x, y) in enumerate(zip(a, b, strict=True)):  # type: ignore[arg-type]
            found = _first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r} against {b!r}"


async def side_by_side(
    http: httpx.AsyncClient,
    servers: dict[str, tuple[str, int]],
    body: dict[str, Any],
    token: str,
    *,
    requests: int,
    rounds: int,
) -> tuple[dict[str, list[float]], dict[str, float], Any]:
    """CPU ms per request of each server per round (interleaved), round trips per request,
    and the (identical) data."""
    headers = {"Authorization": f"Bearer {token}"}
    answers: dict[str, Any] = {}
    for name, (base, _) in servers.items():
        for _ in range(2):  # warm caches (keys, parsed documents) and connections
            await http.post(f"{base}/graphql", json=body, headers=headers)
        response = await http.post(f"{base}/graphql", json=body, headers=headers)
        assert response.status_code == 200, (name, response.text)
        answers[name] = response.json()
    assert "errors" not in answers["service"], answers["service"]
    difference = _first_difference(answers["service"], answers["baseline"], "$")
    assert difference is None, f"the baseline's JSON differs at {difference}"
    counters = {"service": _service_commands, "baseline": _baseline_commands}
    cpu: dict[str, list[float]] = {name: [] for name in servers}
    trips: dict[str, list[float]] = {name: [] for name in servers}
    for _ in range(rounds):
        for name, (base, pid) in servers.items():
            before = await counters[name](http, base)
            started = cpu_seconds(pid, tree=True)
            for _ in range(requests):
                response = await http.post(f"{base}/graphql", json=body, headers=headers)
                assert response.status_code == 200, response.text
            cpu[name].append((cpu_seconds(pid, tree=True) - started) / requests * 1000)
            trips[name].append((await counters[name](http, base) - before) / requests)
    return cpu, {n: statistics.median(t) for n, t in trips.items()}, answers["service"]["data"]


async def http_rows(uri: str, token: str, rounds: int) -> list[Row]:
    service_port, baseline_port = free_port(), free_port()
    service = start_service(uri, service_port)
    baseline = start_baseline(uri, baseline_port)
    rows: list[Row] = []
    try:
        servers = {
            "service": (f"http://127.0.0.1:{service_port}", service.pid),
            "baseline": (f"http://127.0.0.1:{baseline_port}", baseline.pid),
        }
        for base, process in ((servers["service"][0], service), (servers["baseline"][0], baseline)):
            await wait_ready(f"{base}/readyz", process)
        async with httpx.AsyncClient(timeout=60) as http:
            for label, body, requests, limit in (
                ("nested page", {"query": NESTED_PAGE, "variables": PAGE_SIZES}, 24, 5.0),
                ("`{ viewer { subject } }`", {"query": VIEWER}, 240, 2.0),
            ):
                cpu, trips, data = await side_by_side(
                    http, servers, body, token, requests=requests, rounds=rounds
                )
                if label == "nested page":
                    label += f" ({_items(data)} items)"
                ratios = [s / b for s, b in zip(cpu["service"], cpu["baseline"], strict=True)]
                rows.append(
                    Row(
                        f"{label}: API CPU ms / request",
                        f"{spread(cpu['service'])} ({trips['service']:g} round trips)",
                        f"{spread(cpu['baseline'])} ({trips['baseline']:g} round trips)",
                        ratios,
                        f"<= {limit:g}x",
                        limit,
                    )
                )
    finally:
        stop(service)
        stop(baseline)
    return rows


async def workers_row(uri: str, token: str, rounds: int, seconds: float) -> Row | None:
    """Requests per second of the viewer query, two workers against one, interleaved."""
    if not workers_supported():
        return None
    ports = {1: free_port(), 2: free_port()}
    servers = {n: start_service(uri, port, workers=n) for n, port in ports.items()}
    try:
        for n, process in servers.items():
            await wait_ready(f"http://127.0.0.1:{ports[n]}/readyz", process)
            # One worker answering /readyz does not make them all ready: load it a moment.
            await requests_per_second(ports[n], VIEWER, token, seconds=1.0, connections=16)
        rates: dict[int, list[float]] = {1: [], 2: []}
        cpu: dict[int, list[float]] = {1: [], 2: []}  # ms per request, all processes
        for _ in range(rounds):
            for n, port in ports.items():
                started = cpu_seconds(servers[n].pid, tree=True)
                rate = await requests_per_second(
                    port, VIEWER, token, seconds=seconds, connections=16
                )
                spent = cpu_seconds(servers[n].pid, tree=True) - started
                rates[n].append(rate)
                cpu[n].append(spent / (rate * seconds) * 1000)
        ratios = [two / one for one, two in zip(rates[1], rates[2], strict=True)]
        return Row(
            "`serve --workers 2` against 1: viewer requests / s (CPU ms / request)",
            f"2 workers: {spread(rates[2], 0)} ({spread(cpu[2])})",
            f"1 worker: {spread(rates[1], 0)} ({spread(cpu[1])})",
            ratios,
            ">= 1.8x",
            1.8,
            higher_is_better=True,
        )
    finally:
        for process in servers.values():
            stop(process)


def fanout_rows(results: dict[str, Any]) -> list[Row]:
    rounds = results["rounds_detail"]
    api_cpu = [r["api_cpu_us"] for r in rounds]
    raw_cpu = [r["raw_cpu_us"] for r in rounds]
    api_p99 = [r["api_p99_ms"] for r in rounds]
    raw_p99 = [r["raw_p99_ms"] for r in rounds]
    subscribers = results["subscribers"]
    kib = results["memory_kib_per_idle_subscribed_connection"]
    raw_kib = results["memory_kib_per_idle_raw_connection"]
    return [
        Row(
            "subscription: server CPU us / delivery",
            spread(api_cpu, 1),
            f"raw send: {spread(raw_cpu, 1)}",
            [fanout.ratio(a, r) for a, r in zip(api_cpu, raw_cpu, strict=True)],
            "<= 1.5x",
            1.5,
        ),
        Row(
            f"subscription: p99 latency ms to {subscribers}",
            spread(api_p99, 0),
            f"raw fan-out: {spread(raw_p99, 0)}",
            [fanout.ratio(a, r) for a, r in zip(api_p99, raw_p99, strict=True)],
            "<= 1.2x",
            1.2,
        ),
        Row(
            "memory KiB / idle subscribed socket",
            f"{kib}",
            f"bare socket: {raw_kib}",
            [kib],
            "<= 32 KiB",
            32.0,
            unit="KiB (one value)",
        ),
    ]


def print_table(rows: list[Row]) -> None:
    header = ("measure", "service", "baseline", "ratio min / median / max", "goal", "met")
    lines = [header] + [
        (
            r.measure,
            r.service,
            r.baseline,
            f"{spread(r.ratios)} {r.unit}",
            r.goal,
            "yes" if r.met else "no",
        )
        for r in rows
    ]
    for line in lines:
        print("| " + " | ".join(line) + " |")
        if line is header:
            print("|" + "|".join("---" for _ in header) + "|")


async def run(uri: str, args: argparse.Namespace) -> list[Row]:
    parts: set[str] = set(args.only or PARTS)
    if args.skip_fanout:
        parts.discard("fanout")
    rows: list[Row] = []
    token = ""
    if parts & {"http", "workers"}:
        async with seeding_database(Settings(mongodb_uri=Secret(uri), db_name=DB_NAME)) as db:
            token = await seed(db)
    if "http" in parts:
        started = time.monotonic()
        rows += await http_rows(uri, token, args.rounds)
        print(f"# HTTP pairs: {time.monotonic() - started:.0f} s", file=sys.stderr)
    if "workers" in parts:
        started = time.monotonic()
        workers = await workers_row(uri, token, args.rounds, args.seconds)
        if workers is None:
            print("# `cityexchange serve` has no --workers option: skipped", file=sys.stderr)
        else:
            rows.append(workers)
        print(f"# workers: {time.monotonic() - started:.0f} s", file=sys.stderr)
    if "fanout" in parts:
        started = time.monotonic()
        results = await fanout.run(uri, args.subscribers, args.events, args.rounds)
        print(json.dumps(results), file=sys.stderr)
        rows += fanout_rows(results)
        print(f"# fan-out: {time.monotonic() - started:.0f} s", file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="per throughput round")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--skip-fanout", action="store_true")
    parser.add_argument(
        "--only", action="append", choices=PARTS, help="run only these rows (repeatable)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data, EmbeddedDatabase(Path(data)) as database:
        rows = asyncio.run(run(database.uri, args))
    print_table(rows)


if __name__ == "__main__":
    main()
