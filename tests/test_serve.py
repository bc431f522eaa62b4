"""`cityexchange serve`'s edges, driven as an operator would, in real processes: the next
steps on an empty database, a port other than 8000 in every issuer, the dev server opened
as `localhost`, several workers behind one /metrics, what shutdown waits for, --version and
`python -m cityexchange`."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.test_cli import CLI, Serve, _run, data_dir, embedded_only

__all__ = ["data_dir"]  # the fixture, shared with test_cli


def _base(serve: Serve) -> str:
    assert serve.url is not None
    return serve.url.removesuffix("/graphql")


async def _handshake(base: str, origin: str, token: str) -> str:
    """Open the GraphQL socket from a page on `origin`; the server's first answer."""
    address = base.removeprefix("http://")
    async with connect(
        f"ws://{address}/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        origin=origin,  # type: ignore[arg-type]
    ) as ws:
        init = {"authorization": f"Bearer {token}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        return str(message["type"])


@embedded_only
async def test_serve_on_an_empty_database_follows_its_port_and_says_what_to_do(
    data_dir: Path,
) -> None:
    serve = await asyncio.to_thread(Serve, data_dir)  # --port 0: never 8000
    try:
        output = "".join(serve.lines)
        assert "The database has no member cities yet" in output
        where = f"--data-dir {data_dir}"
        assert (
            f"cityexchange city add --slug rotterdam --name Rotterdam --country NL {where}"
            in output
        )
        assert f'token issue --city rotterdam --scope "read publish comment" {where}' in output
        base = _base(serve)
        port = int(base.rsplit(":", 1)[1])
        assert port != 8000

        # The next steps, as printed, work against this service.
        added = await asyncio.to_thread(
            _run,
            "city",
            "add",
            "--slug",
            "rotterdam",
            "--name",
            "Rotterdam",
            "--country",
            "NL",
            data_dir=data_dir,
        )
        assert added.returncode == 0, added.stderr
        assert json.loads(added.stdout)["issuer"] == f"{base}/realms/rotterdam"
        issued = await asyncio.to_thread(
            _run,
            "token",
            "issue",
            "--city",
            "rotterdam",
            "--scope",
            "read publish comment",
            data_dir=data_dir,
        )
        assert issued.returncode == 0, issued.stderr
        token = json.loads(issued.stdout)["access_token"]
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            metadata_doc = (
                await http.get("/.well-known/oauth-authorization-server/realms/rotterdam")
            ).json()
            assert metadata_doc["issuer"] == f"{base}/realms/rotterdam"
            assert metadata_doc["token_endpoint"] == f"{base}/realms/rotterdam/token"
            assert all(
                value.startswith(f"{base}/")
                for key, value in metadata_doc.items()
                if key.endswith(("_endpoint", "_uri"))
            )
            viewer = await http.post(
                "/graphql",
                json={"query": "{ viewer { city { slug } } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert viewer.json()["data"] == {"viewer": {"city": {"slug": "rotterdam"}}}

        # A page on http://localhost:<port> may open the socket at 127.0.0.1; another
        # site still may not.
        assert await _handshake(base, f"http://localhost:{port}", token) == "connection_ack"
        try:
            await _handshake(base, "http://evil.example", token)
            refused = None
        except InvalidStatus as error:
            refused = error.response.status_code
        assert refused == 403
    finally:
        code = await asyncio.to_thread(serve.stop)
    output = "".join(serve.lines)
    assert code == 0, output
    assert "waiting for the background loops to stop: " in output
    assert "Stopping the embedded database ..." in output
    assert "The embedded database stopped." in output


def _requests_total(metrics: str, route: str) -> float:
    labels = f'method="GET",route="{route}",status="200"'
    pattern = rf"^cityexchange_http_requests_total\{{{re.escape(labels)}\}} (\S+)$"
    found = re.search(pattern, metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@embedded_only
def test_workers_share_the_socket_and_metrics_add_up(data_dir: Path) -> None:
    serve = Serve(data_dir, "--workers", "2")
    try:
        base = _base(serve)
        answered_by: set[str] = set()
        for _ in range(20):  # a new connection each time: any worker may take it
            with httpx.Client(base_url=base, timeout=30) as http:
                response = http.get("/healthz")
                assert response.status_code == 200
        for _ in range(10):
            with httpx.Client(base_url=base, timeout=30) as http:
                metrics = http.get("/metrics").text
            assert _requests_total(metrics, "/healthz") == 20, metrics
            answered_by |= set(
                re.findall(r'^process_resident_memory_bytes\{pid="(\d+)"\}', metrics, re.MULTILINE)
            )
            assert "cityexchange_gc_collections_total" in metrics
            assert "cityexchange_websocket_connections 0.0" in metrics
        assert len(answered_by) == 2, "two workers, each with its process metrics"
        with httpx.Client(base_url=base, timeout=30) as http:
            ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
    finally:
        code = serve.stop()
    output = "".join(serve.lines)
    assert code == 0, output
    assert output.count("Application startup complete") == 2, output
    assert "The workers stopped." in output


def test_version_and_python_dash_m() -> None:
    version = metadata.version("cityexchange")
    shown = subprocess.run([CLI, "--version"], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == f"cityexchange {version}"
    module = subprocess.run(
        [sys.executable, "-m", "cityexchange", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert module.stdout.strip() == f"cityexchange {version}"
    helped = subprocess.run(
        [sys.executable, "-m", "cityexchange", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--workers" in helped.stdout


def test_every_option_has_help() -> None:
    from cityexchange.cli import _parser

    missing: list[str] = []

    def walk(parser: object, path: str) -> None:
        import argparse

        assert isinstance(parser, argparse.ArgumentParser)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif action.option_strings and not action.help:
                missing.append(f"{path} {action.option_strings[0]}")

    walk(_parser(), "cityexchange")
    assert missing == []
