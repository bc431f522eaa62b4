"""Embargoed drafts publish themselves when their embargo ends (services/access.py).

Every replica polls for drafts due; two replicas that find the same one both try, and the
version check lets one of them change it (the other's Conflict is expected and ignored). A
draft whose embargo ended while no replica ran is published at the next start's first poll.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from cityexchange.services import access, polling
from cityexchange.services.clock import now
from cityexchange.services.errors import Conflict, NotFound
from cityexchange.services.store import audiences as audience_store
from cityexchange.services.store.database import Database

log = logging.getLogger("cityexchange.embargoes")
BATCH = 100  # drafts published per poll at most; the rest at the next one


async def publish_due(db: Database, *, at: datetime | None = None) -> int:
    """Publish every draft due at `at` (now unless given), up to BATCH; how many were published."""
    moment = at or now()
    published = 0
    for kind, id in await audience_store.embargoes_due(db, at=moment, limit=BATCH):
        try:
            done = await access.end_embargo(db=db, kind=kind, id=id, at=moment)  # type: ignore[arg-type]
        except (Conflict, NotFound):
            continue  # another replica, or an edit, was first: it is not due any more
        if done is not None:
            published += 1
            log.info("published %s %s: its embargo ended", kind.lower(), id)
    return published


async def publish_when_due(db: Database, stopping: asyncio.Event, *, every: float) -> None:
    """Poll every `every` seconds until `stopping` is set; an outage waits for the next poll."""

    async def round() -> None:
        while await publish_due(db) == BATCH:
            pass  # more are due: go on at once

    paused = "embargoes: the database is unreachable; trying again later"
    await polling.every(every, stopping, round, log=log, paused=paused)
