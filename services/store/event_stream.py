"""The one change stream of a process: it follows the event log and hands every new event to
the hub, resuming after hiccups and recovering from the log when the stream's history is
lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymongo.errors import OperationFailure, PyMongoError

from services.errors import Unavailable
from services.models import Event
from services.store.database import Database
from services.store.events import event_from_doc, events_after, latest_seq

log = logging.getLogger("cityexchange.live")

CHANGE_STREAM_HISTORY_LOST = 286
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass(slots=True)
class EventStream:
    db: Database
    publish: Callable[[Event], None]
    on_open: Callable[[int], None] = lambda delta: None
    last_seq: int = 0

    async def run(self, stopping: asyncio.Event) -> None:
        """Follow the log until `stopping` is set."""
        resume_token: Any = None
        attempt = 0
        while not stopping.is_set():
            try:
                if self.last_seq == 0:
                    self.last_seq = await latest_seq(self.db)
                async with await self.db.events.watch(
                    [{"$match": {"operationType": "insert"}}], resume_after=resume_token,
                    max_await_time_ms=500,
                ) as stream:  # fmt: skip
                    self.on_open(1)
                    try:
                        # Whatever was committed while no stream was open is in the log.
                        await self._replay()
                        attempt = 0
                        while not stopping.is_set():
                            change = await stream.try_next()
                            if change is not None:
                                self._publish(event_from_doc(change["fullDocument"]))
                            resume_token = stream.resume_token
                    finally:
                        self.on_open(-1)
            except OperationFailure as exc:
                if exc.code == CHANGE_STREAM_HISTORY_LOST:
                    log.warning(
                        "change stream history lost; recovering from the event log after event %d",
                        self.last_seq,
                    )
                    resume_token = None
                else:
                    log.warning("change stream failed (%s); reopening", exc.code)
                await self._pause(stopping, attempt)
                attempt += 1
            except (PyMongoError, Unavailable) as exc:
                log.warning("change stream interrupted (%s); resuming", type(exc).__name__)
                await self._pause(stopping, attempt)
                attempt += 1

    async def _replay(self) -> None:
        while True:
            missed = await events_after(self.db, {}, after=self.last_seq, limit=500)
            for event in missed:
                self._publish(event)
            if len(missed) < 500:
                return

    def _publish(self, event: Event) -> None:
        if event.seq > self.last_seq:
            self.last_seq = event.seq
            self.publish(event)

    @staticmethod
    async def _pause(stopping: asyncio.Event, attempt: int) -> None:
        delay = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)
