"""The webhook deliverer is woken by every published event; while no endpoint is active those
wake-ups cost no database commands, and an endpoint registered meanwhile still gets its
events (from the next poll)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator

import pytest

from cityexchange.resources import database_uri
from cityexchange.services import problems, webhooks
from cityexchange.services.delivery import POLL_SECONDS, Deliverer
from cityexchange.services.models import EventFilter
from cityexchange.services.principal import Principal
from cityexchange.services.store.database import Database
from cityexchange.services.store.monitoring import CommandCounter
from cityexchange.services.taxonomy import Hazard
from cityexchange.settings import Settings
from tests.conftest import add_city

WRITER = Principal("rotterdam", "cro", frozenset({"read", "publish"}), "tests")


async def _publish(db: Database, title: str) -> None:
    draft = problems.ProblemDraft(title=title, summary="s", hazards=[Hazard.FLOOD])
    await problems.publish(db=db, actor=WRITER, draft=draft)


@pytest.fixture
async def counted(settings: Settings, db: Database) -> AsyncIterator[tuple[Database, list[str]]]:
    """The test's database through a client of its own that records every command sent."""
    sent: list[str] = []
    counting = Database.connect(
        database_uri(settings),
        settings.db_name,
        server_selection_timeout_ms=2000,
        timeout_ms=5000,
        listeners=[CommandCounter(lambda command, _: sent.append(command), lambda _: None)],
    )
    await add_city(db, "rotterdam")
    yield counting, sent
    await counting.close()


@contextlib.asynccontextmanager
async def running(deliverer: Deliverer) -> AsyncGenerator[None]:
    stopping = asyncio.Event()
    task = asyncio.create_task(deliverer.run(stopping))
    try:
        yield
    finally:
        stopping.set()
        await task


async def _sent(url: str, headers: dict[str, str], body: bytes) -> int:
    return 200


async def test_wake_ups_without_an_active_endpoint_cost_no_reads(
    db: Database, counted: tuple[Database, list[str]]
) -> None:
    counting, sent = counted
    deliverer = Deliverer(db=counting, send=_sent, production=False)
    await _publish(db, "First")
    async with running(deliverer):
        async with asyncio.timeout(5):  # its first look: the event, and no endpoint
            while "find" not in sent:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        sent.clear()
        started = time.monotonic()
        for i in range(20):  # as the hub does for each event it publishes
            await _publish(db, f"Flood {i}")
            deliverer.wake.set()
            await asyncio.sleep(0.02)
        # The window's polls, and one more: a look under way at either edge is counted too
        # (twenty wake-ups looking would be over a hundred commands).
        polls = int((time.monotonic() - started) / POLL_SECONDS) + 2
    # The deliverer used to look at every wake-up (a findAndModify of its position, then
    # the events, the endpoints, the queue); now only its polls look.
    assert sent.count("findAndModify") <= 2 * polls, sent  # its position, and one claim
    assert len(sent) <= 8 * polls, sent  # a look: about seven commands


async def test_an_endpoint_registered_meanwhile_gets_its_events(
    db: Database, counted: tuple[Database, list[str]]
) -> None:
    counting, _ = counted
    delivered: list[bytes] = []

    async def send(url: str, headers: dict[str, str], body: bytes) -> int:
        delivered.append(body)
        return 200

    deliverer = Deliverer(db=counting, send=send, production=False)
    await _publish(db, "Before any endpoint")
    async with running(deliverer):
        await asyncio.sleep(0.2)  # it has looked: no endpoint
        admin = Principal("rotterdam", "admin", frozenset({"admin"}), "tests")
        hook = await webhooks.register(
            db=db,
            actor=admin,
            url="http://127.0.0.1:9/hook",
            event_filter=EventFilter(),
            description=None,
            production=False,
        )
        await _publish(db, "After")
        deliverer.wake.set()  # a wake-up while it still knows of no endpoint
        async with asyncio.timeout(5 * POLL_SECONDS):
            while not delivered:
                await asyncio.sleep(0.02)
    assert b'"title"' not in delivered[0]  # the payload names the subject, by id
    assert hook.city == "rotterdam"
    assert b'"city":"rotterdam"' in delivered[0]
