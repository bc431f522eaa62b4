"""One city's webhooks cannot stall another's: a poisoned URL is that attempt's failure, a slow
receiver holds one slot until its timeout, and another city's delivery goes out meanwhile."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityexchange.app import create_app
from cityexchange.services import problems, webhooks
from cityexchange.services.clock import now
from cityexchange.services.delivery import Deliverer
from cityexchange.services.errors import NotFound
from cityexchange.services.models import EventFilter, Webhook
from cityexchange.services.principal import Principal
from cityexchange.services.store import webhooks as webhook_store
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Hazard
from cityexchange.settings import Settings
from tests.conftest import Api, add_city
from tests.live_support import on_loopback
from tests.test_webhooks import Receiver, receiving

ROTTERDAM = Principal("rotterdam", "cro", frozenset({"read", "publish", "admin"}), "tests")
LAGOS = Principal("lagos", "cro", frozenset({"read", "publish", "admin"}), "tests")
POISONED = [
    "http://127.0.0.1:9/hook\r\nX-Injected: 1",
    "http://[::1/x",
    "http://127.0.0.1:99999/hook",
]


@dataclass
class Hanging:
    """A receiver that takes every request and answers none until the test ends."""

    url: str = ""
    requests: int = 0
    started: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def hook(self, request: Request) -> Response:
        self.requests += 1
        self.started.set()
        await self.released.wait()
        return Response(status_code=200)


@asynccontextmanager
async def hanging() -> AsyncIterator[Hanging]:
    receiver = Hanging()
    app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
    async with on_loopback(app) as base:
        receiver.url = f"{base}/hook"
        try:
            yield receiver
        finally:
            receiver.released.set()  # lets the server stop


@asynccontextmanager
async def one_replica(settings: Settings, db: Database) -> AsyncIterator[Api]:
    """The app, as the only deliverer; retries 1 s apart so the poison does not flood the log."""
    app = create_app(dataclasses.replace(settings, webhook_retry_seconds=1.0))
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://test"
        ) as http,
    ):
        yield Api(http=http, db=db, settings=settings)


async def _stored(db: Database, city: str, url: str) -> str:
    """An endpoint written straight to the store, as rows from before URLs were checked."""
    hook = Webhook(
        id="", city=city, url=url, event_filter=EventFilter(cities=(city,)), description=None,
        secret=webhooks.new_secret(), created_at=now(),
    )  # fmt: skip
    return (await webhook_store.insert(db, hook)).id


async def _publish(actor: Principal, db: Database, title: str) -> None:
    await problems.publish(
        db=db,
        actor=actor,
        draft=problems.ProblemDraft(title=title, summary="s", hazards=[Hazard.FLOOD]),
    )


async def _deliveries(db: Database, hook_id: str) -> list[dict[str, Any]]:
    return [d async for d in db.db["webhook_deliveries"].find({"webhookId": hook_id})]


async def _until(condition: Callable[[], Awaitable[bool]], seconds: float = 30) -> None:
    async with asyncio.timeout(seconds):
        while not await condition():
            await asyncio.sleep(0.05)


async def test_a_poisoned_and_a_slow_endpoint_do_not_delay_another_city(
    db: Database, settings: Settings
) -> None:
    await add_city(db, "rotterdam")
    await add_city(db, "lagos")
    async with (
        hanging() as slow,
        receiving(Receiver()) as healthy,
        one_replica(settings, db) as app,
    ):
        poisoned = await _stored(db, "rotterdam", POISONED[0])
        slow_id = await _stored(db, "rotterdam", slow.url)
        token = await app.token("lagos")
        registered = await app.data(
            """mutation($input: RegisterWebhookInput!) { registerWebhook(input: $input) {
                webhook { id } userErrors { code } } }""",
            {"input": {"url": healthy.url, "filter": {"cities": ["lagos"]}}},
            token=token,
        )
        lagos_id = registered["registerWebhook"]["webhook"]["id"]
        for n in range(40):
            await _publish(ROTTERDAM, db, f"Flood {n}")

        async def poison_failed() -> bool:
            return any(d["attempts"] for d in await _deliveries(db, poisoned))

        await asyncio.wait_for(slow.started.wait(), 30)  # its first attempt hangs from now on
        await _until(poison_failed)
        await _publish(LAGOS, db, "Lagoon floods")

        async def lagos_received() -> bool:
            return len(healthy.received) == 1

        await _until(lagos_received)

        # Lagos was served while Rotterdam's slow endpoint had its first attempt in flight:
        # none of its 40 deliveries has an attempt recorded, not even a timeout (after 10 s).
        slow_log = await _deliveries(db, slow_id)
        assert len(slow_log) == 40
        assert all(d["attempts"] == [] for d in slow_log)
        assert slow.requests == 1  # one in flight per endpoint, not one per queued event
        errors = {a["error"] for d in await _deliveries(db, poisoned) for a in d["attempts"]}
        assert errors == {"refused: the url must not contain whitespace or control characters"}

        async def lagos_delivered() -> bool:
            return [d["state"] for d in await _deliveries(db, lagos_id)] == ["delivered"]

        await _until(lagos_delivered)


@asynccontextmanager
async def running(deliverer: Deliverer) -> AsyncIterator[asyncio.Event]:
    """The deliverer's loop, its dispatch position taken first so no event is missed."""
    await deliverer.dispatch()
    stopping = asyncio.Event()
    task = asyncio.create_task(deliverer.run(stopping))
    try:
        yield stopping
        assert not task.done(), "the deliverer's loop ended"
    finally:
        stopping.set()
        async with asyncio.timeout(30):
            await task


async def test_any_exception_in_an_attempt_is_that_attempts_failure(db: Database) -> None:
    await add_city(db, "rotterdam")
    poisoned = {await _stored(db, "rotterdam", url): url for url in POISONED}
    buggy = await _stored(db, "rotterdam", "http://127.0.0.1:9/buggy")
    healthy = await _stored(db, "rotterdam", "http://127.0.0.1:9/healthy")
    sent: list[str] = []

    async def send(url: str, headers: dict[str, str], body: bytes) -> int:
        sent.append(url)
        if url.endswith("/buggy"):
            raise RuntimeError("a bug, with details no city should see")
        return 200

    deliverer = Deliverer(db, send, production=False, retry_base_seconds=60)
    async with running(deliverer):
        await _publish(ROTTERDAM, db, "River floods")
        deliverer.wake.set()

        async def every_endpoint_tried() -> bool:
            logs = [await _deliveries(db, id) for id in [*poisoned, buggy, healthy]]
            return all(log and log[0]["attempts"] for log in logs)

        await _until(every_endpoint_tried)
    assert sorted(sent) == ["http://127.0.0.1:9/buggy", "http://127.0.0.1:9/healthy"]
    for id in poisoned:
        [delivery] = await _deliveries(db, id)
        assert delivery["state"] == "pending"  # retried later, with backoff
        assert delivery["attempts"][0]["error"].startswith("refused: the url must")
    [delivery] = await _deliveries(db, buggy)
    assert (delivery["state"], delivery["attempts"][0]["error"]) == (
        "pending",
        "internal error (RuntimeError)",
    )
    [delivery] = await _deliveries(db, healthy)
    assert (delivery["state"], delivery["attempts"][0]["status"]) == ("delivered", 200)


async def test_a_send_that_hangs_is_cut_at_the_timeout(db: Database) -> None:
    await add_city(db, "rotterdam")
    hook = await _stored(db, "rotterdam", "http://127.0.0.1:9/hangs")

    async def send(url: str, headers: dict[str, str], body: bytes) -> int:
        await asyncio.Event().wait()
        return 200

    deliverer = Deliverer(
        db, send, production=False, retry_base_seconds=60, send_timeout_seconds=0.2,
        lease_seconds=30,
    )  # fmt: skip
    async with running(deliverer):
        await _publish(ROTTERDAM, db, "River floods")
        deliverer.wake.set()

        async def attempted() -> bool:
            return any(d["attempts"] for d in await _deliveries(db, hook))

        await _until(attempted)
    [delivery] = await _deliveries(db, hook)
    assert delivery["state"] == "pending"
    assert delivery["attempts"][0]["error"] == "timed out after 0.2 s"


async def test_shutdown_gives_an_attempt_in_flight_back_to_the_queue(db: Database) -> None:
    await add_city(db, "rotterdam")
    hook = await _stored(db, "rotterdam", "http://127.0.0.1:9/hook")
    in_flight = asyncio.Event()

    async def hangs(url: str, headers: dict[str, str], body: bytes) -> int:
        in_flight.set()
        await asyncio.Event().wait()
        return 200

    first = Deliverer(db, hangs, production=False, shutdown_grace_seconds=0.1)
    async with running(first):
        await _publish(ROTTERDAM, db, "River floods")
        first.wake.set()
        await asyncio.wait_for(in_flight.wait(), 30)
    [delivery] = await _deliveries(db, hook)
    assert (delivery["state"], delivery["attempts"]) == ("pending", [])  # not lost, not counted

    async def answers(url: str, headers: dict[str, str], body: bytes) -> int:
        return 204

    second = Deliverer(db, answers, production=False)
    async with running(second):
        second.wake.set()

        async def delivered() -> bool:
            return [d["state"] for d in await _deliveries(db, hook)] == ["delivered"]

        await _until(delivered)


async def test_a_lapsed_lease_is_claimed_again(db: Database) -> None:
    """A replica that died mid-attempt left its delivery in "sending": it goes out anyway."""
    await add_city(db, "rotterdam")
    hook = await _stored(db, "rotterdam", "http://127.0.0.1:9/hook")
    sent: list[str] = []

    async def send(url: str, headers: dict[str, str], body: bytes) -> int:
        sent.append(headers["webhook-id"])
        return 200

    deliverer = Deliverer(db, send, production=False)
    await deliverer.dispatch()
    await _publish(ROTTERDAM, db, "River floods")
    await deliverer.dispatch()
    # as if its lease had run out a second ago
    crashed = await webhook_store.claim(db, worker="crashed", lease_seconds=-1)
    assert crashed is not None
    assert crashed.webhook_id == hook
    requeued = await webhooks.redeliver(db=db, actor=ROTTERDAM, delivery_id=crashed.id)
    assert requeued.state == "pending"  # a lapsed claim does not block a redelivery
    async with running(deliverer):
        deliverer.wake.set()

        async def delivered() -> bool:
            return [d["state"] for d in await _deliveries(db, hook)] == ["delivered"]

        await _until(delivered)
    assert len(sent) == 1


async def test_another_citys_delivery_is_as_missing_as_none(db: Database) -> None:
    """redeliverWebhook must not tell Lagos that a delivery id of Rotterdam's exists."""
    await add_city(db, "rotterdam")
    await add_city(db, "lagos")
    await _stored(db, "rotterdam", "http://127.0.0.1:9/hook")
    deliverer = Deliverer(db, _never_sent, production=False)
    await deliverer.dispatch()
    await _publish(ROTTERDAM, db, "River floods")
    await deliverer.dispatch()
    delivery = await webhook_store.claim(db, worker="test", lease_seconds=-1)
    assert delivery is not None
    missing = "0" * 24
    refusals: list[tuple[str, str]] = []
    for id in (delivery.id, missing):
        with pytest.raises(NotFound) as refused:
            await webhooks.redeliver(db=db, actor=LAGOS, delivery_id=id)
        refusals.append((refused.value.kind, str(refused.value).replace(id, "<id>")))
    assert refusals[0] == refusals[1]
    assert refusals[0][0] == "Delivery"


async def _never_sent(url: str, headers: dict[str, str], body: bytes) -> int:
    raise AssertionError("nothing is sent in this test")
