"""The service's background loops, run under the supervisor (cityexchange/supervisor.py).

To add one (a signing-key refresh, say), append a `Loop(name, run)` to `background_loops`:
`run(stopping)` works until the event is set, handles the errors it expects itself, and may
raise on the others (the supervisor logs them and starts it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cityexchange.auth.oauth_store import INDEXES as OAUTH_INDEXES
from cityexchange.resources import Resources
from cityexchange.services.embargoes import publish_when_due
from cityexchange.services.errors import Unavailable
from cityexchange.services.rate_limits import keep_synced
from cityexchange.services.store.indexes import ensure_indexes
from cityexchange.supervisor import Loop

log = logging.getLogger("cityexchange")
INDEX_RETRY_SECONDS = 5.0
METRICS_SAMPLE_SECONDS = 1.0


def background_loops(resources: Resources) -> list[Loop]:
    """Every loop the app's lifespan runs, by name (as `/readyz` shows them)."""
    r = resources

    async def rate_limits(stopping: asyncio.Event) -> None:
        await keep_synced(r.limiter, r.db, stopping)

    async def indexes(stopping: asyncio.Event) -> None:
        await ensure_indexes_until_done(r, stopping)

    async def embargoes(stopping: asyncio.Event) -> None:
        await publish_when_due(r.db, stopping, every=r.settings.embargo_poll_seconds)

    async def metrics(stopping: asyncio.Event) -> None:
        # Multi-worker metrics are read from files: what is measured by reading (gauges of
        # subscriptions, the gate's counts, GC) is written there now and then.
        while not stopping.is_set():
            r.metrics.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), METRICS_SAMPLE_SECONDS)

    loops = [
        Loop("indexes", indexes, once=True),
        Loop("change-stream", r.events.run),
        Loop("webhook-deliverer", r.deliverer.run),
        Loop("crisis-alerts", r.crisis_alerts.run),
        Loop("identity-providers", r.federation.keep_fresh),
        Loop("denylist", r.denylist.keep_fresh),
        Loop("signing-keys", r.registry.keep_fresh),
        Loop("rate-limit-sync", rate_limits),
        Loop("embargoes", embargoes),
        Loop("metrics", metrics),
    ]
    if r.outbox is not None:
        loops.append(Loop("mail", r.outbox.run))
    if r.digests is not None:
        loops.append(Loop("digests", r.digests.run))
    return loops


async def ensure_indexes_until_done(resources: Resources, stopping: asyncio.Event) -> None:
    """Create indexes at start; if the database is down, keep trying instead of dying."""
    retention = resources.settings.event_retention_days * 86_400
    while not stopping.is_set():
        try:
            await ensure_indexes(resources.db, OAUTH_INDEXES, event_retention_seconds=retention)
            return
        except Unavailable:
            log.warning(
                "database unreachable; creating indexes again in %.0fs", INDEX_RETRY_SECONDS
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), INDEX_RETRY_SECONDS)
