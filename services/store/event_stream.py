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

from cityexchange.services.errors import Unavailable
from cityexchange.services.models import Event
from cityexchange.services.store.database import Database
from cityexchange.services.store.events import event_from_doc, events_after, latest_seq
from cityexchange.services.visibility import SYSTEM_VIEWER

log = logging.getLogger("cityexchange.live")

CHANGE_STREAM_HISTORY_LOST = 286
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass(slots=True)
class EventStream:
    """Follows the event log. `last_seq` is the last event already published (0: start from
    the log's end); `resume_token` where the change stream itself resumes (None: from now,
    catching up from the log after `last_seq`)."""

    db: Database
    publish: Callable[[Event], None]
    on_open: Callable[[int], None] = lambda delta: None
    last_seq: int = 0
    resume_token: Any = None

    async def run(self, stopping: asyncio.Event) -> None:
        """Follow the log until `stopping` is set."""
        attempt = 0
        while not stopping.is_set():
            try:
                if self.last_seq == 0:
                    self.last_seq = await latest_seq(self.db)
                async with await self.db.events.watch(
                    [{"$match": {"operationType": "insert"}}], resume_after=self.resume_token,
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
                            self.resume_token = stream.resume_token
                    finally:
                        self.on_open(-1)
            except OperationFailure as exc:
                # The driver resumes by itself after resumable errors; what reaches here
                # cannot resume from the token. The log has every event: start a new
                # stream from now and replay what was missed from the log.
                if exc.code == CHANGE_STREAM_HISTORY_LOST:
                    log.warning(
                        "change stream history lost; recovering from the event log after event %d",
                        self.last_seq,
                    )
                else:
                    log.warning(
                        "change stream failed (code %s); recovering from the event log after "
                        "event %d",
                        exc.code,
                        self.last_seq,
                    )
                self.resume_token = None
                await self._pause(stopping, attempt)
                attempt += 1
            except (PyMongoError, Unavailable) as exc:
                log.warning("change stream interrupted (%s); resuming", type(exc).__name__)
                await self._pause(stopping, attempt)
                attempt += 1

    async def _replay(self) -> None:
        while True:
            missed = await events_after(
                self.db, {}, after=self.last_seq, limit=500, viewer=SYSTEM_VIEWER
            )
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
