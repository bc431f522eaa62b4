"""The webhook deliverer: moves new events from the log into the durable queue, then sends
queued deliveries, signed per Standard Webhooks, retrying with exponential backoff and jitter.

Every API process runs one; they share the queue through the database (idempotent queueing,
leased claims), so replicas never send the same attempt twice."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from services.clock import now
from services.errors import Unavailable
from services.ids import global_id
from services.models import Attempt, Delivery, Event
from services.store import events as event_store
from services.store import webhooks as store
from services.store.database import Database
from services.webhooks import public_host

log = logging.getLogger("cityexchange.webhooks")

Send = Callable[[str, dict[str, str], bytes], Awaitable[int]]


class SendFailed(Exception):
    """The receiver could not be reached (no HTTP status)."""


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: base64 HMAC-SHA256 of "{id}.{timestamp}.{body}" with the secret's
    key (the base64 after "whsec_"), as "v1,<signature>"."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def payload(event: Event) -> bytes:
    return json.dumps({
        "id": f"evt_{event.seq}", "type": event.type.value,
        "occurredAt": event.occurred_at.isoformat(), "city": event.city, "actor": event.actor,
        "subject": {"kind": event.subject_kind,
                    "id": global_id(event.subject_kind, event.subject_id)},
        "subjectCity": event.subject_city, "hazards": [h.value for h in event.hazards],
        "sectors": [s.value for s in event.sectors], "tags": list(event.tags),
    }, separators=(",", ":")).encode()  # fmt: skip


@dataclass(slots=True)
class Deliverer:
    db: Database
    send: Send
    production: bool
    retry_base_seconds: float = 10.0
    max_attempts: int = 6
    disable_after: int = 5
    lease_seconds: float = 30.0
    on_attempt: Callable[[str], None] = lambda outcome: None
    on_lag: Callable[[float], None] = lambda seconds: None
    worker: str = field(default_factory=lambda: secrets.token_hex(6))
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, stopping: asyncio.Event) -> None:
        """Queue and send until `stopping` is set; the attempt in flight finishes first."""
        while not stopping.is_set():
            try:
                await self.dispatch()
                while not stopping.is_set():
                    delivery = await store.claim(
                        self.db, worker=self.worker, lease_seconds=self.lease_seconds
                    )
                    if delivery is None:
                        break
                    await self.attempt(delivery)
            except Unavailable:
                log.warning("webhook deliveries paused: the database is unreachable")
            except Exception:
                # A bug must not stop every city's deliveries: log it, keep going.
                log.exception("webhook deliverer failed; retrying")
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(stopping, self.wake), 1.0)

    async def dispatch(self) -> None:
        """Queue a delivery for every new event and every endpoint whose filter matches."""
        position = await store.dispatch_position(
            self.db, default=await event_store.latest_seq(self.db)
        )
        while True:
            events = await event_store.events_after(self.db, {}, after=position, limit=200)
            if not events:
                return
            hooks = await store.active(self.db)
            for event in events:
                for hook in hooks:
                    if event.occurred_at >= hook.created_at and hook.event_filter.matches(event):
                        await store.enqueue(
                            self.db, hook, event_seq=event.seq, event_at=event.occurred_at
                        )
            position = events[-1].seq
            await store.advance_dispatch(self.db, position)

    async def attempt(self, delivery: Delivery) -> None:
        started, moment = time.monotonic(), now()
        hook = await store.get(self.db, delivery.webhook_id)
        if hook is None:  # deleted since it was queued: its deliveries went with it
            await store.discard(self.db, delivery.id)
            return
        event = await event_store.event_by_seq(self.db, delivery.event_seq)
        status: int | None = None
        error: str | None = None
        if hook.disabled_at is not None:
            error = "the endpoint was disabled"
        elif event is None:
            error = "the event is past the log's retention"
        elif self.production and not await asyncio.to_thread(
            public_host, urlsplit(hook.url).hostname or ""
        ):
            error = "refused: the endpoint resolves to a private or loopback address"
        else:
            body = payload(event)
            message_id, timestamp = f"evt_{event.seq}", int(time.time())
            headers = {
                "content-type": "application/json",
                "webhook-id": message_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(hook.secret, message_id, timestamp, body),
            }
            try:
                status = await self.send(hook.url, headers, body)
            except SendFailed as exc:
                error = str(exc) or type(exc).__name__
        attempt = Attempt(
            at=moment,
            status=status,
            error=error,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        made = len(delivery.attempts) + 1
        if status is not None and 200 <= status < 300:
            outcome, state, due = "delivered", "delivered", None
            if event is not None:
                self.on_lag((now() - event.occurred_at).total_seconds())
        elif made >= self.max_attempts or hook.disabled_at is not None:
            outcome, state, due = "failed", "failed", None
        else:
            delay = self.retry_base_seconds * 2 ** (made - 1) * random.uniform(0.8, 1.2)  # noqa: S311
            outcome, state, due = "retry", "pending", now() + timedelta(seconds=delay)
        await store.finish_attempt(
            self.db, delivery.id, attempt, worker=self.worker, state=state, due_at=due
        )
        if state != "pending":
            await store.note_outcome(
                self.db, hook.id, failed=state == "failed", disable_after=self.disable_after
            )
        self.on_attempt(outcome)


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
