"""The background loops' supervision and the resources' release: a loop that dies is logged,
started again and shown in /readyz; shutdown waits each loop a bounded time; a resource
whose close fails does not keep the others open."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pymongo.errors import InvalidOperation

from cityexchange.app import create_app
from cityexchange.resources import open_resources
from cityexchange.services.store.database import Database
from cityexchange.settings import Settings
from cityexchange.supervisor import Loop, LoopState, Supervisor
from tests.conftest import Api


async def _ready(http: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await http.get("/readyz")
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def _until(http: httpx.AsyncClient, wanted: Any, seconds: float = 20) -> dict[str, Any]:
    async with asyncio.timeout(seconds):
        while True:
            status, body = await _ready(http)
            if wanted(status, body):
                return body
            await asyncio.sleep(0.02)


async def test_a_loop_that_dies_is_restarted_and_readyz_says_so(
    settings: Settings, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    runs = 0
    release = asyncio.Event()

    async def flaky(stopping: asyncio.Event) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            await release.wait()  # observed running first
            raise RuntimeError("the first run breaks")
        await stopping.wait()

    app = create_app(settings, more_loops=[Loop("flaky", flaky)])
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(manager.app), base_url="http://t") as http,
    ):
        body = await _until(http, lambda status, body: status == 200)
        assert body["loops"]["flaky"]["state"] == "running"
        assert body["loops"]["indexes"]["state"] in ("running", "done")
        assert body["loops"]["change-stream"]["state"] == "running"
        release.set()
        body = await _until(http, lambda status, body: status == 503)
        assert body["status"] == "restarting: flaky"
        flaky_state = body["loops"]["flaky"]
        assert flaky_state["state"] == "restarting"
        assert flaky_state["last_error"] == "RuntimeError: the first run breaks"
        assert flaky_state["restarts"] == 1
        assert "since" in flaky_state
        # Started again after the first back-off delay: ready again, the error remembered.
        body = await _until(
            http, lambda status, body: status == 200 and body["loops"]["flaky"]["restarts"] == 1
        )
        assert body["loops"]["flaky"]["state"] == "running"
        assert body["loops"]["flaky"]["last_error"] == "RuntimeError: the first run breaks"
        body = await _until(
            http, lambda status, body: body["loops"]["indexes"]["state"] == "done", 60
        )
    assert runs == 2
    failures = [r for r in caplog.records if "the flaky loop failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None  # with its traceback
    assert "starting it again in 1.0s" in failures[0].getMessage()


async def test_shutdown_cancels_a_loop_that_overruns_and_still_stops_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stopped_in_time = asyncio.Event()

    async def stubborn(stopping: asyncio.Event) -> None:
        await stopping.wait()
        await asyncio.sleep(3600)  # ignores the stop

    async def broken_on_stop(stopping: asyncio.Event) -> None:
        await stopping.wait()
        raise RuntimeError("cleanup failed")

    async def polite(stopping: asyncio.Event) -> None:
        await stopping.wait()
        stopped_in_time.set()

    async def once(_: asyncio.Event) -> None:
        return

    supervisor = Supervisor(
        [
            Loop("stubborn", stubborn),
            Loop("broken-on-stop", broken_on_stop),
            Loop("polite", polite),
            Loop("once", once, once=True),
        ],
        stop_seconds=0.2,
    )
    async with asyncio.timeout(10), supervisor:
        while supervisor.status["once"].state is not LoopState.DONE:
            await asyncio.sleep(0.01)
    assert supervisor.status["stubborn"].state is LoopState.CANCELLED
    assert supervisor.status["broken-on-stop"].state is LoopState.STOPPED
    assert supervisor.status["broken-on-stop"].last_error == "RuntimeError: cleanup failed"
    assert supervisor.status["polite"].state is LoopState.STOPPED
    assert supervisor.status["once"].state is LoopState.DONE
    assert stopped_in_time.is_set()
    messages = [r.getMessage() for r in caplog.records]
    assert any("stubborn loop did not stop within" in m for m in messages)
    assert any("broken-on-stop loop failed while stopping" in m for m in messages)


async def test_a_loop_that_returns_before_the_stop_is_restarted() -> None:
    runs = 0

    async def quits(_: asyncio.Event) -> None:
        nonlocal runs
        runs += 1

    supervisor = Supervisor([Loop("quits", quits)], first_delay=0.01, max_delay=0.02)
    async with asyncio.timeout(10), supervisor:
        while runs < 3:
            await asyncio.sleep(0.01)
        status = supervisor.status["quits"]
        assert status.restarts >= 2
        assert status.last_error == "it returned before the stop"
    assert supervisor.status["quits"].state is LoopState.STOPPED


async def test_the_loops_share_one_stop_bound() -> None:
    async def stubborn(stopping: asyncio.Event) -> None:
        await stopping.wait()
        await asyncio.sleep(3600)

    supervisor = Supervisor([Loop(f"stubborn-{i}", stubborn) for i in range(5)], stop_seconds=0.3)
    started = asyncio.get_running_loop().time()
    async with supervisor:
        pass
    # Five overrunning loops cost one bound, not five.
    assert asyncio.get_running_loop().time() - started < 1.2
    assert {s.state for s in supervisor.status.values()} == {LoopState.CANCELLED}


class _TransportThatFailsToClose(httpx.AsyncBaseTransport):
    """The network edge of the identity-provider client, failing as it is closed."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(404)

    async def aclose(self) -> None:
        raise OSError("the socket would not close")


async def test_a_failing_close_does_not_keep_the_other_resources_open(
    settings: Settings, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "cityexchange")
    async with open_resources(settings, http_transport=_TransportThatFailsToClose()) as r:
        assert await r.db.db.command("ping")
        assert r.oauth.db.command("ping")
    failed = [rec for rec in caplog.records if rec.getMessage().startswith("closing ")]
    assert [rec.getMessage() for rec in failed] == [
        "closing the identity providers' HTTP client failed"
    ]
    assert failed[0].exc_info is not None
    # Everything opened before and after it is closed all the same.
    assert r.webhook_http.is_closed
    with pytest.raises(InvalidOperation):
        await r.db.db.command("ping")
    with pytest.raises(InvalidOperation):
        r.oauth.db.command("ping")
