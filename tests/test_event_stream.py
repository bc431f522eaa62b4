"""The process's change stream recovers from the event log when the server can no longer
resume it (ChangeStreamHistoryLost), losing and repeating nothing."""

from __future__ import annotations

import asyncio
import logging
import os

import bson
import pytest

from cityexchange.services import problems
from cityexchange.services.models import Event
from cityexchange.services.principal import Principal
from cityexchange.services.store.database import Database
from cityexchange.services.store.event_stream import EventStream
from cityexchange.services.taxonomy import Hazard

WRITER = Principal("rotterdam", "cro", frozenset({"read", "publish"}), "tests")


def lost_token(db: Database) -> dict[str, str]:
    """A resume token from before the oldest change the server still has. Resume tokens are
    opaque and each server has its own format; this is SecantusDB's (a BSON document:
    position, cluster time, namespace, document key), so the test runs on it only."""
    position = {"s": 0, "t": bson.Timestamp(1, 1), "n": f"{db.db.name}.events", "k": {"_id": 0}}
    return {"_data": bson.encode(position).hex()}


async def _publish(db: Database, title: str) -> int:
    await problems.publish(
        db=db,
        actor=WRITER,
        draft=problems.ProblemDraft(title=title, summary="s", hazards=[Hazard.FLOOD]),
    )
    doc = await db.events.find_one({}, sort=[("_id", -1)])
    assert doc is not None
    return int(doc["_id"])


@pytest.mark.skipif(
    "CITYEXCHANGE_MONGODB_URI" in os.environ, reason="the lost resume token is SecantusDB's"
)
async def test_history_lost_recovers_from_the_log(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Event] = []
    first = await _publish(db, "Seen before the stream stopped")
    missed = [await _publish(db, f"Missed {i}") for i in range(3)]
    stream = EventStream(db, publish=seen.append, last_seq=first, resume_token=lost_token(db))
    stopping = asyncio.Event()
    with caplog.at_level(logging.WARNING, logger="cityexchange.live"):
        task = asyncio.create_task(stream.run(stopping))
        try:
            async with asyncio.timeout(20):
                while len(seen) < 3:
                    await asyncio.sleep(0.05)
                live = await _publish(db, "Live after recovery")
                while len(seen) < 4:
                    await asyncio.sleep(0.05)
        finally:
            stopping.set()
            await task
    assert [e.seq for e in seen] == [*missed, live]
    assert "change stream history lost" in caplog.text
