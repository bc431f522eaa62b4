"""Benchmark: live fan-out of one process to many subscribers.

Runs the service in its own process (uvicorn, as in production) on the embedded database,
connects WebSocket clients from this process, and writes a burst of events to the database
from here, so the server's CPU is spent on nothing but following the change stream and fanning
out. It prints:

- delivery latency (event commit -> a client has the message), p50 and p99, for one subscriber
  and for all of them;
- server CPU per delivered event, against a raw WebSocket send of the same payload by the same
  server stack (uvicorn + websockets, one `send_text` per connection);
- server memory per idle subscribed connection (RSS growth / connections).

    .venv/bin/python bench/fanout.py [--subscribers 1000] [--events 20]

The clients run on the same machine and compete with the server for its cores, so latency
here is an upper bound; CPU is read from /proc for the server process alone (Linux only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.seeding import seeding_database
from cityexchange.auth.realms import RealmRegistry
from cityexchange.auth.tokens import issue_access_token
from cityexchange.embedded import EmbeddedDatabase
from cityexchange.services import cities, problems
from cityexchange.services.clock import now
from cityexchange.services.models import City
from cityexchange.services.principal import Principal
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Hazard
from cityexchange.settings import Secret, Settings

DB_NAME = "bench_fanout"
SUBSCRIPTION = """subscription Floods($filter: EventFilter) {
  events(filter: $filter) {
    cursor type occurredAt city { slug name }
    subject { __typename ... on Problem { title urgency hazards city { slug name } } }
  }
}"""
WRITER = Principal("rotterdam", "bench", frozenset({"read", "publish"}), "bench")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


# --- the server process --------------------------------------------------------------------


def serve(port: int) -> None:
    """The service, plus /raw: WebSockets that are sent a given payload, as the baseline."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    from cityexchange.app import create_app

    service = create_app(Settings.from_env())
    raw_sockets: set[WebSocket] = set()

    async def raw(websocket: WebSocket) -> None:
        await websocket.accept()
        raw_sockets.add(websocket)
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            raw_sockets.discard(websocket)

    async def send(request: Request) -> JSONResponse:
        body = await request.json()
        payload, count = str(body["payload"]), int(body["count"])
        for _ in range(count):
            for websocket in list(raw_sockets):
                await websocket.send_text(payload)
        return JSONResponse({"sockets": len(raw_sockets)})

    baseline = Starlette(
        routes=[WebSocketRoute("/raw", raw), Route("/raw/send", send, methods=["POST"])]
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan" and str(scope["path"]).startswith("/raw"):
            await baseline(scope, receive, send)
        else:
            await service(scope, receive, send)

    # As the service runs in production (cityexchange serve, the container image).
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", ws_max_size=64 * 1024,
        ws_per_message_deflate=False,
    )  # fmt: skip


# --- the bench ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def _rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert found is not None
    return int(found.group(1)) * 1024


def ratio(a: float, b: float) -> float:
    """a / b; infinite when b is below the clock's resolution (too few sends to measure)."""
    return a / b if b else float("inf")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Client:
    ws: ClientConnection
    latencies: list[float] = field(default_factory=list[float])
    arrivals: list[float] = field(default_factory=list[float])
    received: int = 0
    last_text: str = ""
    done: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0

    async def listen(self, *, raw: bool) -> None:
        async for text in self.ws:
            arrived = time.time()
            assert isinstance(text, str)
            if raw:
                self.arrivals.append(arrived)
                self.received += 1
            else:
                message = json.loads(text)
                if message["type"] != "next":
                    continue
                event = message["payload"]["data"]["events"]
                committed = datetime.fromisoformat(event["occurredAt"]).timestamp()
                self.latencies.append(arrived - committed)
                self.received += 1
                self.last_text = text
            if self.expected and self.received >= self.expected:
                self.done.set()


async def _subscriber(address: str, token: str) -> Client:
    ws = await connect(
        f"ws://{address}/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        max_size=64 * 1024,
        ping_interval=None,
    )
    await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": token}}))
    ack = json.loads(await ws.recv())
    assert ack["type"] == "connection_ack", ack
    variables = {"filter": {"hazards": ["FLOOD"]}}
    subscribe = {"query": SUBSCRIPTION, "variables": variables, "operationName": "Floods"}
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
    return Client(ws)


async def _raw(address: str) -> Client:
    return Client(await connect(f"ws://{address}/raw", ping_interval=None))


async def _connect_all(count: int, factory: Callable[[], Awaitable[Client]]) -> list[Client]:
    clients: list[Client] = []
    while len(clients) < count:
        batch = min(50, count - len(clients))
        clients += await asyncio.gather(*(factory() for _ in range(batch)))
    return clients


async def _subscriptions(http: httpx.AsyncClient, address: str) -> float:
    text = (await http.get(f"http://{address}/metrics")).text
    found = re.search(r"^cityexchange_subscriptions_active (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def _until_subscribed(http: httpx.AsyncClient, address: str, count: int) -> None:
    async with asyncio.timeout(120):
        while await _subscriptions(http, address) < count:
            await asyncio.sleep(0.1)


async def _burst(db: Database, events: int, label: str) -> None:
    for i in range(events):
        await problems.publish(
            db=db,
            actor=WRITER,
            draft=problems.ProblemDraft(
                title=f"{label} {i}", summary="A flood", hazards=[Hazard.FLOOD]
            ),
        )


async def _deliver(db: Database, clients: list[Client], events: int, label: str, pid: int) -> float:
    """Publish a burst; the server's CPU seconds until every client has it all."""
    tasks: list[asyncio.Task[None]] = []
    for client in clients:
        client.latencies.clear()
        client.received, client.expected = 0, events
        client.done.clear()
        tasks.append(asyncio.create_task(client.listen(raw=False)))
    cpu = _cpu_seconds(pid)
    await _burst(db, events, label)
    async with asyncio.timeout(300):
        await asyncio.gather(*(c.done.wait() for c in clients))
    cpu = _cpu_seconds(pid) - cpu
    for task in tasks:
        task.cancel()
    return cpu


async def _send_raw(
    http: httpx.AsyncClient, address: str, raws: list[Client], payload: str, events: int, pid: int
) -> float:
    """Have the server send `payload` `events` times to each raw socket; its CPU seconds.
    The clients' `arrivals` are when each message arrived (from `time.time()`)."""
    for client in raws:
        client.received, client.expected = 0, events
        client.arrivals.clear()
        client.done.clear()
    listeners = [asyncio.create_task(c.listen(raw=True)) for c in raws]
    cpu = _cpu_seconds(pid)
    await http.post(
        f"http://{address}/raw/send", json={"payload": payload, "count": events}, timeout=300
    )
    async with asyncio.timeout(300):
        await asyncio.gather(*(c.done.wait() for c in raws))
    cpu = _cpu_seconds(pid) - cpu
    for task in listeners:
        task.cancel()
    return cpu


async def run(uri: str, subscribers: int, events: int, rounds: int) -> dict[str, object]:
    settings = Settings(mongodb_uri=Secret(uri), db_name=DB_NAME)
    async with seeding_database(settings) as db:
        await cities.add_city(
            db=db, city=City(slug="rotterdam", name="Rotterdam", country="NL", created_at=now())
        )
        registry = RealmRegistry(db, settings.public_url)
        # One token per subscriber, as every person of a CRO team has their own: a token opens at
        # most MAX_SOCKETS_PER_TOKEN sockets. Groups of identical subscriptions key on the city
        # and scopes, not the subject, so the subscribers still share one execution.
        tokens: list[str] = []
        for i in range(subscribers):
            issued = await issue_access_token(
                registry, registry.realm("rotterdam"), subject=f"bench-{i}", scopes=["read"],
                client_id="bench", audience=settings.audience, ttl_seconds=3600,
            )  # fmt: skip
            tokens.append(f"Bearer {issued.access_token}")
        rest = iter(tokens[1:])

        port = _free_port()
        address = f"127.0.0.1:{port}"
        env = {**os.environ, "CITYEXCHANGE_MONGODB_URI": uri, "CITYEXCHANGE_DB": DB_NAME}
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port)], env=env, stdin=subprocess.DEVNULL
        )
        results: dict[str, object] = {
            "subscribers": subscribers, "events_per_burst": events, "rounds": rounds
        }  # fmt: skip
        try:
            async with httpx.AsyncClient() as http:
                async with asyncio.timeout(60):
                    while True:
                        try:
                            if (await http.get(f"http://{address}/readyz")).status_code == 200:
                                break
                        except httpx.TransportError:
                            pass
                        await asyncio.sleep(0.2)

                # One subscriber: the latency floor.
                one = await _subscriber(address, tokens[0])
                await _until_subscribed(http, address, 1)
                await _deliver(db, [one], events, "Warm-up", server.pid)
                await _deliver(db, [one], events, "Alone", server.pid)
                one_latencies = list(one.latencies)  # the bursts below clear them
                results["latency_ms_1_subscriber"] = {
                    "p50": round(_percentile(one.latencies, 0.5) * 1000, 1),
                    "p99": round(_percentile(one.latencies, 0.99) * 1000, 1),
                }

                # Many idle subscribed connections: memory.
                await asyncio.sleep(1)
                rss = _rss_bytes(server.pid)
                others = await _connect_all(
                    subscribers - 1, lambda: _subscriber(address, next(rest))
                )
                clients = [one, *others]
                await _until_subscribed(http, address, subscribers)
                await asyncio.sleep(2)
                rss_per = (_rss_bytes(server.pid) - rss) / (subscribers - 1)
                results["memory_kib_per_idle_subscribed_connection"] = round(rss_per / 1024, 1)

                # The baseline's sockets, connected alongside: memory of a bare connection.
                await asyncio.sleep(1)
                rss = _rss_bytes(server.pid)
                raws = await _connect_all(subscribers, lambda: _raw(address))
                await asyncio.sleep(2)
                rss_per = (_rss_bytes(server.pid) - rss) / subscribers
                results["memory_kib_per_idle_raw_connection"] = round(rss_per / 1024, 1)

                # Bursts to all subscribers, each followed by the same payload sent raw to as
                # many sockets: CPU per delivery of both (the median of the rounds), and latency.
                deliveries = subscribers * events
                api_cpu: list[float] = []
                raw_cpu: list[float] = []
                latencies: list[float] = []
                raw_latencies: list[float] = []
                detail: list[dict[str, float]] = []
                for round_ in range(rounds):
                    cpu = await _deliver(db, clients, events, f"Burst {round_}", server.pid)
                    api_cpu.append(cpu / deliveries)
                    these = [x for c in clients for x in c.latencies]
                    latencies += these
                    started = time.time()
                    cpu = await _send_raw(http, address, raws, one.last_text, events, server.pid)
                    raw_cpu.append(cpu / deliveries)
                    raw_these = [t - started for c in raws for t in c.arrivals]
                    raw_latencies += raw_these
                    detail.append(
                        {
                            "api_cpu_us": api_cpu[-1] * 1e6,
                            "raw_cpu_us": raw_cpu[-1] * 1e6,
                            "api_p99_ms": _percentile(these, 0.99) * 1000,
                            "raw_p99_ms": _percentile(raw_these, 0.99) * 1000,
                        }
                    )
                results["rounds_detail"] = detail
                api, raw = statistics.median(api_cpu), statistics.median(raw_cpu)
                results[f"latency_ms_{subscribers}_subscribers"] = {
                    "p50": round(_percentile(latencies, 0.5) * 1000, 1),
                    "p99": round(_percentile(latencies, 0.99) * 1000, 1),
                }
                results[f"raw_send_burst_latency_ms_{subscribers}_sockets"] = {
                    "p50": round(_percentile(raw_latencies, 0.5) * 1000, 1),
                    "p99": round(_percentile(raw_latencies, 0.99) * 1000, 1),
                }
                results["server_cpu_us_per_delivery"] = round(api * 1e6, 1)
                results["raw_send_cpu_us_per_delivery"] = round(raw * 1e6, 1)
                results["cpu_ratio_to_raw_send"] = round(ratio(api, raw), 2)
                results["cpu_ratio_per_round"] = [
                    round(ratio(a, r), 2) for a, r in zip(api_cpu, raw_cpu, strict=True)
                ]
                results["payload_bytes"] = len(one.last_text.encode())
                one_p99 = _percentile(one_latencies, 0.99) * 1000
                many_p99 = _percentile(latencies, 0.99) * 1000
                results["p99_ratio_many_to_one"] = round(many_p99 / max(one_p99, 0.1), 2)
                for client in [*clients, *raws]:
                    await client.ws.close()
        finally:
            server.terminate()
            server.wait(30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    with tempfile.TemporaryDirectory() as data, EmbeddedDatabase(Path(data)) as database:
        results = asyncio.run(run(database.uri, args.subscribers, args.events, args.rounds))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
