"""The service as production runs it: the image's documented command (uvicorn with the app
factory) in real processes, configured only by environment variables, on the test database.

Two replicas share one database; SIGTERM drains one (readiness 503, in-flight requests
finish, WebSockets close with 1001, a clean exit); every log line is one JSON object and no
token is ever in one; OTEL_* variables switch tracing on, and without them nothing of
OpenTelemetry is even imported."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from websockets.exceptions import ConnectionClosed

from tests.conftest import Api, add_city
from tests.live_support import Subscriber, on_loopback
from tests.queries import PUBLISH_PROBLEM, problem_input
from tests.test_cli import embedded_only
from tests.test_deploy import image_command

PUBLIC_URL = "https://exchange.test"
DRAIN_SECONDS = 2
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class Replica:
    process: subprocess.Popen[bytes]
    address: str
    log: Path

    def lines(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line.strip()]


@contextmanager
def replica(api: Api, log: Path, **env: str) -> Iterator[Replica]:
    """One API process started with the image's command, on a free loopback port."""
    command = image_command()
    command[command.index("--host") + 1] = "127.0.0.1"
    port = _free_port()
    command[command.index("--port") + 1] = str(port)
    uri = api.settings.mongodb_uri
    assert uri is not None
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CITYEXCHANGE_", "OTEL_"))},
        "CITYEXCHANGE_MONGODB_URI": uri.value,
        "CITYEXCHANGE_DB": api.settings.db_name,
        "CITYEXCHANGE_ENV": "prod",
        "CITYEXCHANGE_PUBLIC_URL": PUBLIC_URL,
        "CITYEXCHANGE_DRAIN_SECONDS": str(DRAIN_SECONDS),
        **env,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / command[0]), *command[1:]],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Replica(process, f"127.0.0.1:{port}", log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def _ready(http: httpx.AsyncClient, *replicas: Replica) -> None:
    async with asyncio.timeout(60):
        for r in replicas:
            while True:
                assert r.process.poll() is None, "\n".join(r.lines())
                try:
                    if (await http.get(f"http://{r.address}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)


def _prod(api: Api) -> Api:
    """Tokens the processes accept: issued under their public URL."""
    return Api(
        http=api.http, db=api.db, settings=dataclasses.replace(api.settings, public_url=PUBLIC_URL)
    )


async def _gql(
    http: httpx.AsyncClient, r: Replica, token: str, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    response = await http.post(
        f"http://{r.address}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body["data"]


async def _slow_request(address: str, token: str) -> tuple[asyncio.StreamWriter, Any, bytes]:
    """A request whose body is still arriving: in flight until the rest is sent."""
    host, port = address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = json.dumps({"query": "{ viewer { city { slug } } }"}).encode()
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    writer.write(head + body[:5])
    await writer.drain()
    return writer, reader, body[5:]


async def _accepts(address: str) -> bool:
    host, port = address.split(":")
    try:
        _, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        return False
    writer.close()
    return True


async def test_replicas_share_the_database_and_a_drained_one_loses_nothing(
    api: Api, tmp_path: Path
) -> None:
    await add_city(api.db, "rotterdam")
    token = await _prod(api).token("rotterdam")
    with (
        replica(api, tmp_path / "one.log") as one,
        replica(api, tmp_path / "two.log") as two,
    ):
        async with httpx.AsyncClient(timeout=30) as http:
            await _ready(http, one, two)
            data = await _gql(
                http, one, token, PUBLISH_PROBLEM, {"input": problem_input("Via one")}
            )
            written = data["publishProblem"]["problem"]["id"]
            read = await _gql(
                http,
                two,
                token,
                "query($id: ID!) { node(id: $id) { ... on Problem { title } } }",
                {"id": written},
            )
            assert read["node"] == {"title": "Via one"}

            async with Subscriber.connect(one.address, token) as subscriber:
                await subscriber.acknowledged()
                await subscriber.subscribe("subscription { events { cursor } }")
                writer, reader, rest = await _slow_request(one.address, token)

                signalled = time.monotonic()
                one.process.send_signal(signal.SIGTERM)
                # Draining: not ready, while still answering.
                async with asyncio.timeout(DRAIN_SECONDS):
                    while (await http.get(f"http://{one.address}/readyz")).status_code != 503:
                        await asyncio.sleep(0.05)
                drained = (await http.get(f"http://{one.address}/readyz")).json()
                assert drained["status"] == "draining"
                assert drained["loops"]["change-stream"]["state"] == "running"
                # Then sockets are told to go elsewhere: 1001, going away.
                with pytest.raises(ConnectionClosed) as closed:
                    await subscriber.next(timeout=DRAIN_SECONDS + 5)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1001
                assert time.monotonic() - signalled >= DRAIN_SECONDS
                # Then the server stops accepting connections ...
                async with asyncio.timeout(10):
                    while await _accepts(one.address):
                        await asyncio.sleep(0.05)
                # ... and the request in flight still gets its answer.
                writer.write(rest)
                await writer.drain()
                answer = await asyncio.wait_for(reader.read(), 10)
                writer.close()
                assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
                assert b'"slug":"rotterdam"' in answer

            exit_code = await asyncio.to_thread(one.process.wait, DRAIN_SECONDS + 20)
            assert exit_code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it stopped on
            # The other replica serves on.
            assert (await http.get(f"http://{two.address}/readyz")).status_code == 200

    lines = one.lines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all("request_id" in r and "timestamp" in r and "level" in r for r in records)
    requests = [r for r in records if r["event"] == "request"]
    graphql = [r for r in requests if r["path"] == "/graphql"]
    assert graphql
    assert all(r["request_id"] and r["city"] == "rotterdam" for r in graphql)
    assert {r["status"] for r in graphql} == {200}
    assert not [r for r in records if r["level"] in ("error", "critical")], lines
    assert not [line for line in lines + two.lines() if token in line]
    assert not [line for line in lines if token.split(".")[0] in line]  # not even a part


@dataclasses.dataclass
class Collector:
    """An OTLP/HTTP trace receiver on loopback."""

    exports: list[ExportTraceServiceRequest] = dataclasses.field(default_factory=list)

    async def traces(self, request: Request) -> Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.body())
        self.exports.append(export)
        return Response(status_code=200)

    def spans(self) -> set[tuple[str, str]]:
        return {
            (scope.scope.name, span.name)
            for export in self.exports
            for resource in export.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        }


@asynccontextmanager
async def collecting() -> AsyncIterator[tuple[Collector, str]]:
    collector = Collector()
    app = Starlette(routes=[Route("/v1/traces", collector.traces, methods=["POST"])])
    async with on_loopback(app) as endpoint:
        yield collector, endpoint


async def test_otel_variables_switch_tracing_on(api: Api, tmp_path: Path) -> None:
    await add_city(api.db, "rotterdam")
    token = await _prod(api).token("rotterdam")
    async with collecting() as (collector, endpoint), httpx.AsyncClient(timeout=30) as http:
        with replica(
            api,
            tmp_path / "traced.log",
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
        ) as traced:
            await _ready(http, traced)
            await _gql(http, traced, token, "{ problems(first: 1) { totalCount } }", {})
            traced.process.send_signal(signal.SIGTERM)  # the last spans are flushed on exit
            await asyncio.to_thread(traced.process.wait, DRAIN_SECONDS + 20)
    scopes = {scope for scope, _ in collector.spans()}
    assert "opentelemetry.instrumentation.asgi" in scopes  # the HTTP request
    assert "opentelemetry.instrumentation.pymongo" in scopes  # its database commands
    assert "strawberry" in scopes  # the GraphQL operation
    assert any(name.startswith("POST /graphql") for _, name in collector.spans())


def test_without_otel_variables_nothing_of_opentelemetry_is_loaded(api: Api) -> None:
    uri = api.settings.mongodb_uri
    assert uri is not None
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    probe = (
        "import sys\n"
        "from cityexchange.app import app_from_env\n"
        "app_from_env()\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith('opentelemetry')}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe],
        env={**environment, "CITYEXCHANGE_MONGODB_URI": uri.value},
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]", loaded.stdout + loaded.stderr


def test_logs_mask_tokens_and_keep_chatty_libraries_above_debug() -> None:
    probe = (
        "import logging\n"
        "from cityexchange import logs\n"
        "logs.configure(production=True, level='DEBUG')\n"
        "logging.getLogger('pymongo.command').debug('reply: {\"secret\": \"whsec_abc\"}')\n"
        "logging.getLogger('authlib').debug('issued eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln')\n"
        "logging.getLogger('cityexchange').info('sent Bearer abc.def-ghi and "
        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln')\n"
        "logging.getLogger('cityexchange').debug('the app at DEBUG')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["event"] for r in records] == [
        "sent [masked] and [masked]",
        "the app at DEBUG",
    ]
    assert all(r["request_id"] is None for r in records)


@embedded_only
def test_serve_in_production_writes_nothing_but_json_lines(tmp_path: Path) -> None:
    # `cityexchange serve` itself (not the image's uvicorn): the embedded database's start,
    # the banner, uvicorn's lines, the requests, the shutdown: every line one JSON object.
    port = _free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CITYEXCHANGE_", "OTEL_"))},
        "CITYEXCHANGE_ENV": "prod",
        "CITYEXCHANGE_PUBLIC_URL": PUBLIC_URL,
        "CITYEXCHANGE_DRAIN_SECONDS": "0",
        "PYTHONUNBUFFERED": "1",
    }
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [
                str(BIN / "cityexchange"),
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "data"),
            ],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None, out.read_text() + err.read_text()
                assert time.monotonic() < deadline, out.read_text()
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    lines = [line for line in (out.read_text() + err.read_text()).splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    events = [r["event"] for r in records]
    assert "starting the embedded database" in events
    (empty,) = [r for r in records if r["event"] == "the database has no member cities yet"]
    assert any(step.startswith("cityexchange city add") for step in empty["next_steps"])
    (serving,) = [r for r in records if r["event"] == "serving"]
    assert serving["url"] == f"http://127.0.0.1:{port}/graphql"
    assert any(r["event"] == "request" and r["path"] == "/healthz" for r in records)
    assert any(e.startswith("waiting for the background loops to stop") for e in events)
    assert events[-1] == "the embedded database stopped"
    assert not [r for r in records if r["level"] in ("error", "critical")], lines
