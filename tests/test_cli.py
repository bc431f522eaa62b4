"""The README's promise: `cityexchange serve --demo` on the embedded database, and the admin
commands beside it, driven as an operator would, in real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityexchange.embedded import EmbeddedDatabase
from tests.conftest import Api, on_configured_database

CLI = str(Path(sys.executable).parent / "cityexchange")
STARTUP_SECONDS = 120
RESTART_SECONDS = 60  # a bound on "by itself", not a measurement

embedded_only = pytest.mark.skipif(
    "CITYEXCHANGE_MONGODB_URI" in os.environ, reason="exercises the embedded database"
)


class Serve:
    """A running `cityexchange serve`, its output collected line by line."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [CLI, "serve", "--port", "0", "--data-dir", str(data_dir), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self.url: str | None = None
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not self.ready.wait(STARTUP_SECONDS):
            self.stop()
            raise AssertionError("serve did not start:\n" + "".join(self.lines))

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith("GraphQL endpoint:"):
                self.url = line.split(":", 1)[1].strip()
            if "Application startup complete" in line:
                self.ready.set()
        self.ready.set()

    def tokens(self) -> dict[str, str]:
        pairs = [line.split() for line in self.lines if line.startswith("  ")]
        return {p[0]: p[1] for p in pairs if len(p) == 2}

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(60)
        self.reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code


def _run(
    *args: str, data_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env or dict(os.environ),
        check=False,
    )


def _gql(url: str, token: str, query: str) -> dict[str, object]:
    response = httpx.post(
        url, json={"query": query}, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    body: dict[str, object] = response.json()
    assert "errors" not in body, body
    data: dict[str, object] = body["data"]  # type: ignore[assignment]
    return data


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"
    state = tmp_path / "data" / "embedded.json"
    if state.exists():  # never leave a database behind, even when a test fails
        pid = json.loads(state.read_text())["pid"]
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


@embedded_only
def test_serve_demo_then_admin_commands_then_restart_keeps_data(data_dir: Path) -> None:
    serve = Serve(data_dir, "--demo")
    try:
        assert serve.url is not None
        assert serve.url.endswith("/graphql")
        tokens = serve.tokens()
        assert len(tokens) >= 8
        data = _gql(
            serve.url,
            tokens["rotterdam"],
            "{ viewer { city { name } } problems { totalCount } cities { totalCount }"
            ' solutions(filter: {search: "gentilly"}) { edges { node {'
            " adaptedFrom { city { slug } } } } } }",
        )
        assert data["viewer"] == {"city": {"name": "Rotterdam"}}
        assert data["cities"] == {"totalCount": 30}  # the library's (cityexchange/data)
        assert data["problems"]["totalCount"] >= 50  # type: ignore[index]
        adapted = data["solutions"]["edges"][0]["node"]  # type: ignore[index]
        assert adapted["adaptedFrom"]["city"] == {"slug": "rotterdam"}

        # Admin commands reach the database the running service uses.
        added = _run(
            "city",
            "add",
            "--slug",
            "bristol",
            "--name",
            "Bristol",
            "--country",
            "gb",
            "--hazard",
            "flood",
            data_dir=data_dir,
        )
        assert added.returncode == 0, added.stderr
        assert json.loads(added.stdout)["slug"] == "bristol"
        issued = _run(
            "token",
            "issue",
            "--city",
            "bristol",
            "--scope",
            "read publish",
            "--sub",
            "ops",
            data_dir=data_dir,
        )
        assert issued.returncode == 0, issued.stderr
        token = json.loads(issued.stdout)["access_token"]
        data = _gql(serve.url, token, "{ viewer { subject scopes city { slug country } } }")
        assert data["viewer"] == {
            "subject": "ops",
            "scopes": ["publish", "read"],
            "city": {"slug": "bristol", "country": "GB"},
        }
        database_pid = json.loads((data_dir / "embedded.json").read_text())["pid"]
    finally:
        code = serve.stop()
    assert code == 0, "".join(serve.lines)
    assert not _alive(database_pid), "the embedded database outlived the service"
    assert not (data_dir / "embedded.json").exists()

    again = Serve(data_dir)  # no --demo: what is there must have survived the restart
    try:
        issued = _run("token", "issue", "--city", "bristol", data_dir=data_dir)
        token = json.loads(issued.stdout)["access_token"]
        assert again.url is not None
        data = _gql(again.url, token, "{ cities { totalCount } problems { totalCount } }")
        assert data["cities"] == {"totalCount": 31}
    finally:
        assert again.stop(signal.SIGINT) == 0, "".join(again.lines)


@embedded_only
def test_admin_commands_start_the_database_themselves_when_nothing_runs(data_dir: Path) -> None:
    added = _run(
        "city", "add", "--slug", "lagos", "--name", "Lagos", "--country", "NG", data_dir=data_dir
    )
    assert added.returncode == 0, added.stderr
    issued = _run("token", "issue", "--city", "lagos", "--scope", "read", data_dir=data_dir)
    assert issued.returncode == 0, issued.stderr
    body = json.loads(issued.stdout)
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["issuer"].endswith("/realms/lagos")


@embedded_only
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("token", "issue", "--city", "atlantis"), "City 'atlantis' not found"),
        (("token", "issue", "--city", "lagos", "--scope", "read sudo"), "unknown scope(s) sudo"),
        (("city", "add", "--slug", "X!", "--name", "X", "--country", "NL"), "slug"),
        (("city", "add", "--slug", "xx", "--name", "X", "--country", "Netherlands"), "country"),
    ],
)
def test_admin_errors_go_to_stderr_with_a_non_zero_status(
    data_dir: Path, args: tuple[str, ...], message: str
) -> None:
    result = _run(*args, data_dir=data_dir)
    assert result.returncode != 0
    assert result.stdout == ""
    assert message in result.stderr


@embedded_only
def test_a_bad_setting_stops_the_start_with_a_clear_message(data_dir: Path) -> None:
    env = {**os.environ, "CITYEXCHANGE_ENV": "staging"}
    result = subprocess.run(
        [CLI, "serve", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 2
    assert "CITYEXCHANGE_ENV='staging': use 'dev' or 'prod'" in result.stderr


@embedded_only
def test_without_the_extra_the_error_says_what_to_install(tmp_path: Path) -> None:
    # The bare interpreter has neither the extra's executable beside it nor on PATH.
    site = sysconfig.get_paths()["purelib"]
    root = Path(__file__).resolve().parent.parent
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": os.pathsep.join([str(root), site]),
        "HOME": str(tmp_path),
    }
    result = subprocess.run(
        [
            getattr(sys, "_base_executable", sys.executable),
            "-m",
            "cityexchange.cli",
            "serve",
            "--data-dir",
            str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "pip install -e '.[embedded]'" in result.stderr


def test_schema_command_prints_the_committed_sdl() -> None:
    committed = Path(__file__).resolve().parent.parent / "schema" / "schema.graphql"
    result = subprocess.run([CLI, "schema"], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout == committed.read_text(), (
        "schema/schema.graphql is stale: run `cityexchange schema > schema/schema.graphql`"
    )


@embedded_only
def test_serve_survives_being_told_to_stop_during_startup(data_dir: Path) -> None:
    # SIGTERM lands while the embedded database starts or the demo loads: the service must
    # still stop, and take its database with it.
    process = subprocess.Popen(
        [CLI, "serve", "--port", "0", "--demo", "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        state = data_dir / "embedded.json"
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        pid = json.loads(state.read_text())["pid"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


async def test_admin_commands_use_the_configured_database(api: Api) -> None:
    async def run(*args: str) -> dict[str, Any]:
        return await on_configured_database(api, *args)

    await run("city", "add", "--slug", "medellin", "--name", "Medellín", "--country", "CO")
    token = await run("token", "issue", "--city", "medellin", "--scope", "read")
    data = await api.data("{ viewer { city { name } } }", token=token["access_token"])
    assert data["viewer"] == {"city": {"name": "Medellín"}}


async def test_migrate_and_demo_load_prepare_a_configured_database(api: Api) -> None:
    async def run(*args: str) -> dict[str, Any]:
        return await on_configured_database(api, *args)

    await api.db.db["problems"].drop_indexes()
    assert await run("migrate") == {"database": api.settings.db_name, "indexes": "up to date"}
    assert len(await api.db.db["problems"].index_information()) > 1  # back, and more than _id

    loaded = await run("demo", "load")
    assert len(loaded["tokens"]) == 8
    again = await run("demo", "load")  # an existing database is left as it is
    assert again["tokens"].keys() == loaded["tokens"].keys()
    assert await api.db.db["cities"].count_documents({}) == 30
    data = await api.data("{ viewer { city { slug } } }", token=loaded["tokens"]["rotterdam"])
    assert data["viewer"] == {"city": {"slug": "rotterdam"}}


def _readiness(base: str) -> int:
    try:
        return httpx.get(f"{base}/readyz", timeout=10).status_code
    except httpx.TransportError:
        return 0


def _await(condition: Callable[[], bool], seconds: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what()
        time.sleep(0.05)


def _take_port(port: int) -> socket.socket:
    """Listen on `port` as soon as the killed database has let go of it."""
    deadline = time.monotonic() + 10
    while True:
        taker = socket.socket()
        taker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            taker.bind(("127.0.0.1", port))
        except OSError:
            taker.close()
            assert time.monotonic() < deadline, "the killed database kept its port"
            time.sleep(0.01)
            continue
        taker.listen()
        return taker


@embedded_only
def test_serve_restarts_its_database_when_it_dies(data_dir: Path) -> None:
    serve = Serve(data_dir)
    try:
        assert serve.url is not None
        base = serve.url.removesuffix("/graphql")
        assert _readiness(base) == 200
        # SecantusDB cannot open a store killed while it was creating a collection's table
        # (a SecantusDB bug): let the start-up's index creation finish before the kill.
        migrated = _run("migrate", data_dir=data_dir)
        assert migrated.returncode == 0, migrated.stderr
        state = data_dir / "embedded.json"
        killed = json.loads(state.read_text())
        os.kill(killed["pid"], signal.SIGKILL)
        # Someone else holds the port for a while: the first restarts fail, and are retried
        # after growing delays; the outage lasts long enough for readiness to see it.

        def output() -> str:  # the service's own account, should a wait run out
            return "".join(serve.lines)

        with _take_port(killed["port"]):
            _await(lambda: _readiness(base) == 503, 30, output)
            _await(lambda: any("did not start again" in x for x in serve.lines), 30, output)
        _await(lambda: _readiness(base) == 200, RESTART_SECONDS, output)
        again = json.loads(state.read_text())
        assert again["pid"] != killed["pid"]
        assert again["port"] == killed["port"]  # the service's client kept its address
        assert not _alive(killed["pid"]), "the dead database was not reaped (a zombie)"
    finally:
        code = serve.stop()
    assert code == 0, "".join(serve.lines)
    assert not _alive(again["pid"]), "the restarted database outlived the service"


def _write_stale_state(data_dir: Path) -> None:
    """embedded.json as a run killed with -9 leaves it: naming a process that is gone."""
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()  # reaped: its pid runs nothing now
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "embedded.json").write_text(json.dumps({"pid": dead.pid, "port": 1}))


@embedded_only
def test_a_stale_state_file_is_named_and_then_ignored(data_dir: Path) -> None:
    _write_stale_state(data_dir)
    result = _run("migrate", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "embedded.json is stale" in result.stderr
    assert "Traceback" not in result.stderr

    _write_stale_state(data_dir)
    serve = Serve(data_dir)
    try:
        assert serve.url is not None
        assert _readiness(serve.url.removesuffix("/graphql")) == 200
        assert any("embedded.json is stale" in line for line in serve.lines)
    finally:
        assert serve.stop() == 0, "".join(serve.lines)


@embedded_only
def test_storage_held_by_a_process_the_state_file_does_not_name_is_a_clear_message(
    data_dir: Path,
) -> None:
    holder = EmbeddedDatabase(data_dir)
    holder.start()
    try:
        _write_stale_state(data_dir)  # while another database (still stopping, say) holds it
        result = _run("migrate", data_dir=data_dir)
    finally:
        holder.stop()
    assert result.returncode == 2
    assert "is in use by a process that does not answer" in result.stderr
    assert "Traceback" not in result.stderr
