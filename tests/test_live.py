"""Live updates over graphql-transport-ws, with real WebSocket clients and a live server."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from cityexchange.services import comments, problems, solutions
from cityexchange.services.principal import Principal
from cityexchange.services.taxonomy import Hazard
from tests.conftest import Api, add_city
from tests.live_support import Subscriber, live_server

EVENTS = """subscription($filter: EventFilter, $after: String) {
  events(filter: $filter, after: $after) {
    cursor type city { slug }
    subject { __typename ... on Problem { title } ... on Comment { body } }
  }
}"""
WRITER = Principal("rotterdam", "cro", frozenset({"read", "publish", "comment"}), "tests")


@pytest.fixture
async def address(api: Api) -> AsyncIterator[str]:
    await add_city(api.db, "rotterdam")
    async with live_server(api.settings) as address:
        yield address


async def _problem(api: Api, title: str, hazard: Hazard) -> str:
    problem = await problems.publish(
        db=api.db,
        actor=WRITER,
        draft=problems.ProblemDraft(title=title, summary="s", hazards=[hazard]),
    )
    return problem.id


def _payload(message: dict[str, object]) -> dict[str, object]:
    assert message["type"] == "next", message
    data = message["payload"]["data"]  # type: ignore[index]
    return data["events"]  # type: ignore[no-any-return,index]


async def test_subscribers_receive_exactly_what_their_filters_match(api: Api, address: str) -> None:
    token = await api.token("rotterdam")
    solution = await solutions.publish(
        db=api.db,
        actor=WRITER,
        draft=solutions.SolutionDraft(title="Water squares", summary="s", hazards=[Hazard.FLOOD]),
    )
    other = await solutions.publish(
        db=api.db,
        actor=WRITER,
        draft=solutions.SolutionDraft(title="Shade", summary="s", hazards=[Hazard.HEAT_WAVE]),
    )
    from cityexchange.schema.relay import to_global_id

    async with (
        Subscriber.connect(address, token) as floods,
        Subscriber.connect(address, token) as thread,
    ):
        await floods.acknowledged()
        await thread.acknowledged()
        await floods.subscribe(
            EVENTS, {"filter": {"hazards": ["FLOOD"], "types": ["PROBLEM_PUBLISHED"]}}
        )
        await thread.subscribe(
            EVENTS,
            {
                "filter": {
                    "thread": to_global_id("Solution", solution.id),
                    "types": ["COMMENT_ADDED"],
                }
            },
        )
        await asyncio.sleep(0.3)  # the subscriptions are registered
        await _problem(api, "Heat in the centre", Hazard.HEAT_WAVE)
        await _problem(api, "River floods", Hazard.FLOOD)
        await comments.add(
            db=api.db,
            actor=WRITER,
            subject_kind="Solution",
            subject_id=other.id,
            parent_id=None,
            body="Elsewhere",
        )
        await comments.add(
            db=api.db,
            actor=WRITER,
            subject_kind="Solution",
            subject_id=solution.id,
            parent_id=None,
            body="Here",
        )

        flood = _payload(await floods.next())
        assert flood["subject"] == {"__typename": "Problem", "title": "River floods"}
        assert flood["city"] == {"slug": "rotterdam"}
        assert await floods.silent()
        comment = _payload(await thread.next())
        assert comment["subject"] == {"__typename": "Comment", "body": "Here"}
        assert await thread.silent()


async def test_resuming_after_a_cursor_has_no_gap_and_no_duplicate(api: Api, address: str) -> None:
    token = await api.token("rotterdam")
    floods = {"filter": {"hazards": ["FLOOD"]}}
    async with Subscriber.connect(address, token) as first:
        await first.acknowledged()
        await first.subscribe(EVENTS, floods)
        await asyncio.sleep(0.3)
        await _problem(api, "Flood 0", Hazard.FLOOD)
        cursor = _payload(await first.next())["cursor"]
    for i in (1, 2, 3):  # while the client is away
        await _problem(api, f"Flood {i}", Hazard.FLOOD)
        await _problem(api, f"Heat {i}", Hazard.HEAT_WAVE)
    async with Subscriber.connect(address, token) as again:
        await again.acknowledged()
        await again.subscribe(EVENTS, {**floods, "after": cursor})
        titles = [
            _payload(await again.next())["subject"]["title"]  # type: ignore[index]
            for _ in range(3)
        ]
        assert titles == ["Flood 1", "Flood 2", "Flood 3"]
        await _problem(api, "Flood 4", Hazard.FLOOD)
        assert _payload(await again.next())["subject"]["title"] == "Flood 4"  # type: ignore[index]
        assert await again.silent()


async def test_sockets_without_a_valid_token_are_closed(api: Api, address: str) -> None:
    for token in (None, "not-a-token"):
        async with Subscriber.connect(address, token) as client:
            with pytest.raises(ConnectionClosed) as closed:
                await client.next()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4403


async def test_an_expiring_token_closes_the_socket_with_4403(api: Api, address: str) -> None:
    token = await api.token("rotterdam", ttl=2)
    async with Subscriber.connect(address, token) as client:
        await client.acknowledged()
        await client.subscribe(EVENTS)
        with pytest.raises(ConnectionClosed) as closed:
            await client.next(timeout=10)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, "token expired")


async def test_each_socket_closes_when_its_own_token_expires(api: Api, address: str) -> None:
    # One timer serves every socket's expiry: a socket that left first is skipped, and each
    # of the others closes at its own token's expiry, not at the earliest one's.
    left = await api.token("rotterdam", subject="left", ttl=2)
    async with Subscriber.connect(address, left) as client:
        await client.acknowledged()
    soon = await api.token("rotterdam", subject="soon", ttl=3)
    later = await api.token("rotterdam", subject="later", ttl=6)
    async with (
        Subscriber.connect(address, later) as patient,
        Subscriber.connect(address, soon) as hasty,
    ):
        for client in (patient, hasty):
            await client.acknowledged()
            await client.subscribe(EVENTS)
        with pytest.raises(ConnectionClosed) as closed:
            await hasty.next(timeout=10)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, "token expired")
        assert await patient.silent(1.0)  # still open, its token still valid
        with pytest.raises(ConnectionClosed) as closed:
            await patient.next(timeout=10)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, "token expired")


async def test_the_21st_subscription_on_a_socket_is_refused(api: Api, address: str) -> None:
    token = await api.token("rotterdam")
    async with Subscriber.connect(address, token) as client:
        await client.acknowledged()
        for _ in range(20):
            await client.subscribe(EVENTS)
        await client.subscribe(EVENTS)
        refused = await client.next()
        assert refused["type"] == "error"
        assert refused["id"] == "21"


async def test_one_change_stream_serves_200_subscribers(api: Api, address: str) -> None:
    # A token opens at most MAX_SOCKETS_PER_TOKEN sockets: 200 people of one city's CRO team.
    tokens = [await api.token("rotterdam", subject=f"cro-{i}") for i in range(200)]
    clients = [Subscriber.connect(address, token) for token in tokens]
    connected = [await c.__aenter__() for c in clients]
    try:
        for client in connected:
            await client.acknowledged()
            await client.subscribe(EVENTS, {"filter": {"types": ["PROBLEM_PUBLISHED"]}})
        async with httpx.AsyncClient() as http:
            async with asyncio.timeout(20):
                while (
                    "cityexchange_subscriptions_active 200.0"
                    not in (await http.get(f"http://{address}/metrics")).text
                ):
                    await asyncio.sleep(0.1)
            await _problem(api, "For everyone", Hazard.FLOOD)
            received = await asyncio.gather(*(c.next(timeout=30) for c in connected))
            assert all(
                _payload(m)["subject"] == {"__typename": "Problem", "title": "For everyone"}
                for m in received
            )
            metrics = (await http.get(f"http://{address}/metrics")).text
        assert "cityexchange_change_streams_open 1.0" in metrics
        assert "cityexchange_websocket_connections 200.0" in metrics
    finally:
        for client in clients:
            await client.__aexit__(None, None, None)


async def test_an_event_through_one_process_reaches_a_subscriber_of_another(
    api: Api, address: str
) -> None:
    uri = api.settings.mongodb_uri
    assert uri is not None
    env = {
        **os.environ,
        "CITYEXCHANGE_MONGODB_URI": uri.value,
        "CITYEXCHANGE_DB": api.settings.db_name,
    }
    second = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "uvicorn"),
            "--factory",
            "cityexchange.app:app_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        port = None
        assert second.stdout is not None
        async with asyncio.timeout(60):
            while port is None:
                line = await asyncio.to_thread(second.stdout.readline)
                found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
                port = found.group(1) if found else None
                assert line or second.poll() is None, "the second process died"
        token = await api.token("rotterdam")
        async with Subscriber.connect(f"127.0.0.1:{port}", token) as listener:
            await listener.acknowledged()
            await listener.subscribe(EVENTS)
            await asyncio.sleep(0.5)
            publish = """mutation { publishProblem(input: {title: "Across processes",
                summary: "s", hazards: [FLOOD]}) { problem { id } } }"""
            async with httpx.AsyncClient() as http:  # through the first process
                response = await http.post(
                    f"http://{address}/graphql",
                    json={"query": publish},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert response.json()["data"]["publishProblem"]["problem"]
            event = _payload(await listener.next(timeout=20))
            assert event["subject"] == {"__typename": "Problem", "title": "Across processes"}
    finally:
        second.terminate()
        second.wait(30)
        if second.stdout:
            second.stdout.close()
