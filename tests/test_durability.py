"""An acknowledged write survives `kill -9` of the embedded database, with its event, and no
event number is handed out twice; a write reported "unavailable" was not stored."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from cityexchange.embedded import EmbeddedDatabase
from cityexchange.services import problems
from cityexchange.services.errors import OutcomeUnknown, Unavailable
from cityexchange.services.principal import Principal
from cityexchange.services.store.database import Database
from cityexchange.services.store.events import latest_seq
from cityexchange.services.store.indexes import ensure_indexes
from cityexchange.services.store.monitoring import CommandCounter
from cityexchange.services.taxonomy import Hazard
from tests.conftest import add_city

WRITER = Principal("rotterdam", "cro", frozenset({"read", "publish"}), "tests")
ROUNDS = 3
WRITERS = 10
ACKNOWLEDGED_BEFORE_KILL = 25

pytestmark = pytest.mark.skipif(
    "CITYEXCHANGE_MONGODB_URI" in os.environ, reason="kills its own embedded database process"
)


def connect(uri: str, *listeners: CommandCounter, timeout_ms: int = 5000) -> Database:
    return Database.connect(
        uri,
        "durable",
        server_selection_timeout_ms=2000,
        timeout_ms=timeout_ms,
        listeners=listeners,
    )


async def publish(db: Database, title: str) -> str:
    draft = problems.ProblemDraft(title=title, summary="s", hazards=[Hazard.FLOOD])
    return (await problems.publish(db=db, actor=WRITER, draft=draft)).id


async def write_until_killed(
    db: Database, database: EmbeddedDatabase, round_: int
) -> tuple[dict[str, str], set[str]]:
    """Writers publish until the database is killed under them; the titles acknowledged
    (with their ids) and the titles reported unavailable (not OutcomeUnknown)."""
    acknowledged: dict[str, str] = {}
    refused: set[str] = set()
    enough = asyncio.Event()

    async def writer(w: int) -> None:
        for i in range(10_000):
            title = f"round {round_} writer {w} write {i}"
            try:
                acknowledged[title] = await publish(db, title)
            except OutcomeUnknown:
                return  # may or may not be stored: nothing to check
            except Unavailable:
                refused.add(title)
                return
            if len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL:
                enough.set()

    writers = [asyncio.create_task(writer(w)) for w in range(WRITERS)]
    await enough.wait()
    assert database.process is not None
    os.kill(database.process.pid, signal.SIGKILL)  # writes are in flight
    await asyncio.gather(*writers)
    database.stop()  # reaps the killed process
    return acknowledged, refused


async def test_acknowledged_writes_and_events_survive_kill_9(tmp_path: Path) -> None:
    everything: dict[str, str] = {}
    for round_ in range(ROUNDS):
        database = EmbeddedDatabase(tmp_path)
        db = connect(database.start())
        try:
            if round_ == 0:
                await ensure_indexes(db)
                await add_city(db, "rotterdam")
            acknowledged, refused = await write_until_killed(db, database, round_)
        finally:
            await db.close()
        everything |= acknowledged

        database = EmbeddedDatabase(tmp_path)
        db = connect(database.start())
        try:
            stored = {
                doc["title"]: str(doc["_id"]) async for doc in db.problems.find({}, {"title": 1})
            }
            assert everything.items() <= stored.items(), "an acknowledged write was lost"
            assert not refused & stored.keys(), "a write reported unavailable was stored"
            numbers = [doc["_id"] async for doc in db.events.find({}, {"_id": 1}).sort("_id")]
            assert numbers == list(range(1, len(numbers) + 1))
            subjects = {
                str(doc["subject"]["id"])
                async for doc in db.events.find({"type": "PROBLEM_PUBLISHED"}, {"subject": 1})
            }
            assert set(stored.values()) == subjects  # every stored write has its event
            last = await latest_seq(db)
            await publish(db, f"after round {round_}")
            assert await latest_seq(db) == last + 1  # the next number, never an old one
            everything |= {
                doc["title"]: str(doc["_id"])
                async for doc in db.problems.find({"title": f"after round {round_}"})
            }
        finally:
            await db.close()
            database.stop()


async def test_a_commit_whose_answer_does_not_come_is_outcome_unknown(tmp_path: Path) -> None:
    """The commit is sent, then the database stops answering until the time budget is spent:
    not "unavailable", since the database goes on to store the write."""
    database = EmbeddedDatabase(tmp_path)
    uri = database.start()
    assert database.process is not None
    pid = database.process.pid
    armed = False

    def started(command: str, _origin: str) -> None:
        nonlocal armed
        if armed and command == "commitTransaction":
            armed = False
            os.kill(pid, signal.SIGSTOP)  # the commit is on its way; no answer in time

    checker = connect(uri)
    db = connect(uri, CommandCounter(started, lambda _: None), timeout_ms=3000)
    try:
        await ensure_indexes(checker)
        await add_city(checker, "rotterdam")
        armed = True
        with pytest.raises(OutcomeUnknown):
            await publish(db, "cut by the time budget")
        os.kill(pid, signal.SIGCONT)
        async with asyncio.timeout(30):  # a bound on a hang, not a measurement
            while await checker.problems.find_one({"title": "cut by the time budget"}) is None:
                await asyncio.sleep(0.05)
        assert await checker.events.count_documents({"type": "PROBLEM_PUBLISHED"}) == 1
    finally:
        os.kill(pid, signal.SIGCONT)
        await db.close()
        await checker.close()
        database.stop()
