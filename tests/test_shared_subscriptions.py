"""Identical subscriptions are executed once per event, whatever their cursors, and each
subscriber still gets exactly its own events: its missed ones, then the live ones."""

from __future__ import annotations

import asyncio
import gc
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from cityexchange.services import problems
from cityexchange.services.principal import Principal
from cityexchange.services.taxonomy import Hazard
from tests.conftest import Api, add_city
from tests.live_support import Subscriber, live_server

EVENTS = """subscription($filter: EventFilter, $after: String) {
  events(filter: $filter, after: $after) {
    cursor subject { ... on Problem { title city { slug } } }
  }
}"""
FLOODS = {"filter": {"hazards": ["FLOOD"]}}
WRITER = Principal("rotterdam", "cro", frozenset({"read", "publish"}), "tests")
SUBSCRIBERS = 30


@pytest.fixture
async def address(api: Api) -> AsyncIterator[str]:
    await add_city(api.db, "rotterdam")
    async with live_server(api.settings) as address:
        yield address


async def _publish(api: Api, title: str) -> None:
    await problems.publish(
        db=api.db,
        actor=WRITER,
        draft=problems.ProblemDraft(title=title, summary="s", hazards=[Hazard.FLOOD]),
    )


async def _metric(http: httpx.AsyncClient, address: str, line: str) -> float:
    text = (await http.get(f"http://{address}/metrics")).text
    found = re.search(rf"^{re.escape(line)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def _until(http: httpx.AsyncClient, address: str, line: str, value: float) -> None:
    async with asyncio.timeout(20):
        while await _metric(http, address, line) != value:
            await asyncio.sleep(0.05)


@asynccontextmanager
async def _subscribed(
    api: Api, address: str, count: int, prefix: str
) -> AsyncIterator[list[Subscriber]]:
    """`count` sockets, one token each (a token opens at most MAX_SOCKETS_PER_TOKEN
    sockets; the group keys on the city and scopes, not the subject), each subscribed to
    FLOODS, until the server counts them all."""
    tokens = [
        await api.token("rotterdam", scopes=("read",), subject=f"{prefix}-{i}")
        for i in range(count)
    ]
    clients = [Subscriber.connect(address, each) for each in tokens]
    subscribers = [await c.__aenter__() for c in clients]
    try:
        for subscriber in subscribers:
            await subscriber.acknowledged()
            await subscriber.subscribe(EVENTS, FLOODS)
        async with httpx.AsyncClient() as http:
            await _until(http, address, "cityexchange_subscriptions_active", count)
        yield subscribers
    finally:
        for client in clients:
            await client.__aexit__(None, None, None)


def _event(message: dict[str, object]) -> dict[str, object]:
    assert message["type"] == "next", message
    return message["payload"]["data"]["events"]  # type: ignore[index,no-any-return]


async def test_identical_subscriptions_run_once_per_event(api: Api, address: str) -> None:
    finds = [
        f'cityexchange_db_commands_total{{command="find",origin="{origin}"}}'
        for origin in ("request", "subscription")
    ]
    async with (
        _subscribed(api, address, SUBSCRIBERS, "cro") as subscribers,
        httpx.AsyncClient() as http,
    ):
        assert await _metric(http, address, "cityexchange_subscription_groups") == 1
        before = sum([await _metric(http, address, line) for line in finds])
        await _publish(api, "Once for all")
        received = await asyncio.gather(*(s.next() for s in subscribers))
        assert {str(_event(m)["subject"]) for m in received} == {
            str({"title": "Once for all", "city": {"slug": "rotterdam"}})
        }
        # One execution: the problem and its city read once, not once per subscriber
        # (30 subscribers on their own read 60 times).
        after = sum([await _metric(http, address, line) for line in finds])
        assert after - before <= 2


async def test_an_idle_member_keeps_neither_its_request_nor_its_plan(
    api: Api, address: str
) -> None:
    """Memory per idle subscriber (docs/performance.md): once live, a member's operation
    holds no variables and no plan of its own (its group holds the one shape), and it still
    gets its events. Fails loudly if strawberry's Operation renames `variables`."""
    from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation

    from cityexchange.schema import sharing

    async with _subscribed(api, address, 3, "idle") as subscribers:
        await asyncio.sleep(0.2)  # past each member's start
        gc.collect()
        operations = [o for o in gc.get_objects() if isinstance(o, Operation)]
        assert len(operations) == len(subscribers)
        assert [o.variables for o in operations] == [None] * len(subscribers)
        assert not [o for o in gc.get_objects() if isinstance(o, sharing.Plan)]
        await _publish(api, "Still delivered")
        for subscriber in subscribers:
            assert _event(await subscriber.next())["subject"] == {
                "title": "Still delivered",
                "city": {"slug": "rotterdam"},
            }


async def test_each_member_gets_the_groups_result_under_its_own_id(api: Api, address: str) -> None:
    """Members are sent the group's one encoded result, each behind its operation's id; a
    completed member is sent nothing more while the others go on."""
    token = await api.token("rotterdam", scopes=("read",))
    async with Subscriber.connect(address, token) as socket, httpx.AsyncClient() as http:
        await socket.acknowledged()
        first, second = (
            await socket.subscribe(EVENTS, FLOODS),
            await socket.subscribe(EVENTS, FLOODS),
        )
        await _until(http, address, "cityexchange_subscriptions_active", 2)
        assert await _metric(http, address, "cityexchange_subscription_groups") == 1
        await _publish(api, "For both")
        received = [await socket.next(), await socket.next()]
        assert {m["id"] for m in received} == {first, second}
        assert received[0]["payload"] == received[1]["payload"]
        assert set(received[0]) == {"id", "type", "payload"}
        assert _event(received[0])["subject"] == {
            "title": "For both",
            "city": {"slug": "rotterdam"},
        }

        await socket.ws.send(json.dumps({"id": first, "type": "complete"}))
        await _until(http, address, "cityexchange_subscriptions_active", 1)
        await _publish(api, "For the second")
        message = await socket.next()
        assert message["id"] == second
        assert _event(message)["subject"]["title"] == "For the second"  # type: ignore[index]
        assert await socket.silent(0.3)


async def test_a_member_with_a_cursor_catches_up_then_shares(api: Api, address: str) -> None:
    token = await api.token("rotterdam", scopes=("read",))
    async with (
        Subscriber.connect(address, token) as live,
        Subscriber.connect(address, token) as late,
        httpx.AsyncClient() as http,
    ):
        await live.acknowledged()
        await live.subscribe(EVENTS, FLOODS)
        await _until(http, address, "cityexchange_subscriptions_active", 1)
        await _publish(api, "First")
        await _publish(api, "Second")
        first = _event(await live.next())
        assert _event(await live.next())["subject"]["title"] == "Second"  # type: ignore[index]

        await late.acknowledged()
        await late.subscribe(EVENTS, {**FLOODS, "after": first["cursor"]})
        assert _event(await late.next())["subject"]["title"] == "Second"  # type: ignore[index]
        await _until(http, address, "cityexchange_subscriptions_active", 2)
        assert await _metric(http, address, "cityexchange_subscription_groups") == 1

        await _publish(api, "Third")
        for subscriber in (live, late):
            assert _event(await subscriber.next())["subject"]["title"] == "Third"  # type: ignore[index]
            assert await subscriber.silent(0.3)  # exactly once, nothing repeated


async def test_different_visibility_or_filters_are_not_shared(api: Api, address: str) -> None:
    await add_city(api.db, "lagos")
    async with (
        Subscriber.connect(address, await api.token("rotterdam", scopes=("read",))) as a,
        Subscriber.connect(address, await api.token("lagos", scopes=("read",))) as b,
        Subscriber.connect(address, await api.token("rotterdam", scopes=("read",))) as c,
        httpx.AsyncClient() as http,
    ):
        for subscriber, variables in ((a, FLOODS), (b, FLOODS), (c, {})):
            await subscriber.acknowledged()
            await subscriber.subscribe(EVENTS, variables)
        await _until(http, address, "cityexchange_subscriptions_active", 3)
        assert await _metric(http, address, "cityexchange_subscription_groups") == 3
        await _publish(api, "To each their own")
        for subscriber in (a, b, c):
            assert _event(await subscriber.next())["subject"]["title"] == "To each their own"  # type: ignore[index]
    async with httpx.AsyncClient() as http:  # the sockets closed: their groups are gone
        await _until(http, address, "cityexchange_subscription_groups", 0)
        await _until(http, address, "cityexchange_subscriptions_active", 0)


async def test_a_document_that_fails_validation_is_refused_to_every_member(
    api: Api, address: str
) -> None:
    token = await api.token("rotterdam", scopes=("read",))
    wrong = "subscription { events { cursor noSuchField } }"
    async with Subscriber.connect(address, token) as a, Subscriber.connect(address, token) as b:
        for subscriber in (a, b):
            await subscriber.acknowledged()
            await subscriber.subscribe(wrong)
        for subscriber in (a, b):
            message = await subscriber.next()
            assert message["type"] == "error"
            assert message["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_a_member_that_falls_behind_is_let_go_and_the_group_goes_on() -> None:
    from strawberry.types import ExecutionResult

    from cityexchange.schema.sharing import _Member, _Pending  # pyright: ignore[reportPrivateUsage]
    from cityexchange.services.live import QUEUE_LIMIT, SubscriberTooSlow

    slow, fast = _Member(), _Member()
    result = ExecutionResult(data={}, errors=None)
    for seq in range(1, QUEUE_LIMIT + 2):
        item = _Pending(seq, result, 0.0)
        slow.offer(item)
        fast.offer(item)
        assert await fast.take() is item
    with pytest.raises(SubscriberTooSlow):
        await slow.take()
    assert len(slow.pending) == 0  # its memory is released at once


async def test_a_member_that_lags_is_let_go() -> None:
    from strawberry.types import ExecutionResult

    from cityexchange.schema.sharing import _Member, _Pending  # pyright: ignore[reportPrivateUsage]
    from cityexchange.services.live import LAG_LIMIT_SECONDS, SubscriberTooSlow

    member = _Member()
    result = ExecutionResult(data={}, errors=None)
    first = _Pending(1, result, 0.0)
    member.offer(first)
    member.offer(_Pending(2, result, 0.0))
    assert await member.take() is first
    member.offer(_Pending(3, result, LAG_LIMIT_SECONDS + 1))  # result 2 has waited too long
    with pytest.raises(SubscriberTooSlow):
        await member.take()


async def test_a_cursor_resumes_on_a_process_that_has_seen_no_event_yet(api: Api) -> None:
    """A rolling update: the client resumes on a fresh process, whose hub is still empty."""
    await add_city(api.db, "rotterdam")
    for title in ("Seen", "Missed 1", "Missed 2"):
        await _publish(api, title)
    token = await api.token("rotterdam", scopes=("read",))
    feed = await api.data("{ feed(first: 1) { edges { cursor } } }", token=token)
    seen = feed["feed"]["edges"][0]["cursor"]
    async with live_server(api.settings) as address, Subscriber.connect(address, token) as late:
        await late.acknowledged()
        await late.subscribe(EVENTS, {**FLOODS, "after": seen})
        for title in ("Missed 1", "Missed 2"):
            assert _event(await late.next())["subject"]["title"] == title  # type: ignore[index]
        await _publish(api, "Live")
        assert _event(await late.next())["subject"]["title"] == "Live"  # type: ignore[index]
        assert await late.silent(0.3)


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        # the cursor variable is never defined
        ("subscription { events(after: $after) { cursor } }", {"after": "x"}),
        # the cursor variable is used elsewhere too: not shared, answered on its own
        (
            "subscription($a: String) { events(after: $a, filter: {tags: [$a]}) { cursor } }",
            {"a": "eA"},
        ),
    ],
)
async def test_documents_that_cannot_be_shared_are_answered_on_their_own(
    api: Api, address: str, document: str, variables: dict[str, str]
) -> None:
    token = await api.token("rotterdam", scopes=("read",))
    async with Subscriber.connect(address, token) as subscriber, httpx.AsyncClient() as http:
        await subscriber.acknowledged()
        await subscriber.subscribe(document, variables)
        message = await subscriber.next()
        assert message["type"] == "error", message  # validation or a bad cursor, as usual
        assert await _metric(http, address, "cityexchange_subscription_groups") == 0
