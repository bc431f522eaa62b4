"""The webhook deliverer: moves new events from the log into the durable queue, then sends
queued deliveries, signed per Standard Webhooks, retrying with exponential backoff and jitter.

Every API process runs one; they share the queue through the database (idempotent queueing,
leased claims), so replicas never send the same attempt twice. Within a process, attempts run
side by side, bounded per endpoint, per city and in all, each within a hard timeout: one city's
slow or broken endpoints cannot hold up another city's deliveries."""

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
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from cityexchange.services import chat_messages
from cityexchange.services.clock import now
from cityexchange.services.errors import InvalidInput, Unavailable
from cityexchange.services.ids import global_id
from cityexchange.services.models import Attempt, Delivery, Event, Webhook, WebhookFormat
from cityexchange.services.store import events as event_store
from cityexchange.services.store import webhooks as store
from cityexchange.services.store.database import Database
from cityexchange.services.visibility import SYSTEM_VIEWER, Viewer
from cityexchange.services.webhooks import check_target

log = logging.getLogger("cityexchange.webhooks")

MAX_ATTEMPTS = 6  # per delivery, the first included
POLL_SECONDS = 1.0  # the deliverer looks at least this often, woken or not

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
        "urgency": event.urgency.value if event.urgency else None,
    }, separators=(",", ":")).encode()  # fmt: skip


@dataclass(slots=True)
class Deliverer:
    """Sends up to `concurrency` deliveries at once, at most one per endpoint and `per_city`
    per city, so that a slow or failing endpoint holds one slot and never another city's
    deliveries. Each attempt is cut after `send_timeout_seconds` in all (DNS, connect, write,
    read); the lease must outlast it, or a second replica could send the same attempt."""

    db: Database
    send: Send
    production: bool
    app_url: str = "http://127.0.0.1:8000/app"  # the web app's, for chat messages' links
    retry_base_seconds: float = 10.0
    max_attempts: int = MAX_ATTEMPTS
    disable_after: int = 5
    lease_seconds: float = 30.0
    send_timeout_seconds: float = 10.0
    concurrency: int = 16
    per_city: int = 4
    shutdown_grace_seconds: float = 2.0
    on_attempt: Callable[[str], None] = lambda outcome: None
    on_lag: Callable[[float], None] = lambda seconds: None
    worker: str = field(default_factory=lambda: secrets.token_hex(6))
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    _in_flight: dict[str, str] = field(default_factory=dict[str, str], init=False, repr=False)
    """Endpoint id -> its city, for every attempt in flight in this process."""
    _deadlines: set[asyncio.Timeout] = field(
        default_factory=set[asyncio.Timeout], init=False, repr=False
    )
    _cutting: bool = field(default=False, init=False, repr=False)
    _endpoints: int | None = field(default=None, init=False, repr=False)
    """Active endpoints at the last dispatch that read them (None: not read yet)."""

    def __post_init__(self) -> None:
        if self.lease_seconds < 2 * self.send_timeout_seconds:
            raise ValueError("lease_seconds must be at least twice send_timeout_seconds")
        if self.concurrency < 1 or self.per_city < 1:
            raise ValueError("concurrency and per_city must be at least 1")

    async def run(self, stopping: asyncio.Event) -> None:
        """Queue and send until `stopping` is set; attempts in flight then get
        `shutdown_grace_seconds` before their sends are cut and their deliveries given back."""
        attempts: set[asyncio.Task[None]] = set()
        self._cutting = False
        try:
            while not stopping.is_set():
                # Cleared before looking, so a wake-up that comes while we look is not lost.
                self.wake.clear()
                await self._queue()
                await self._start_attempts(attempts, stopping)
                await self._until_work(stopping)
        finally:
            await self._settle(attempts)

    async def _until_work(self, stopping: asyncio.Event) -> None:
        """Wait for the next poll, or a wake-up that may bring work. Every published event
        wakes the deliverer; while no endpoint was active at the last look and no attempt is
        in flight, such a wake-up costs no database reads: the poll, within POLL_SECONDS,
        finds an endpoint registered since and queues the events it missed."""
        loop = asyncio.get_running_loop()
        poll_at = loop.time() + POLL_SECONDS
        while (remaining := poll_at - loop.time()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(stopping, self.wake), remaining)
            if stopping.is_set() or not self.wake.is_set():
                return
            if self._endpoints != 0 or self._in_flight:
                return
            self.wake.clear()

    async def _queue(self) -> None:
        try:
            await self.dispatch()
        except Unavailable:
            log.warning("webhook deliveries paused: the database is unreachable")
        except Exception:
            # A bug must not stop every city's deliveries: log it; what is queued still goes.
            log.exception("queueing webhook deliveries failed; retrying")

    async def _start_attempts(
        self, attempts: set[asyncio.Task[None]], stopping: asyncio.Event
    ) -> None:
        """Claim due deliveries of endpoints with nothing in flight, while there are slots."""
        try:
            while not stopping.is_set() and len(self._in_flight) < self.concurrency:
                cities = Counter(self._in_flight.values())
                delivery = await store.claim(
                    self.db,
                    worker=self.worker,
                    lease_seconds=self.lease_seconds,
                    skip_webhooks=list(self._in_flight),
                    skip_cities=[c for c, n in cities.items() if n >= self.per_city],
                )
                if delivery is None:
                    return
                hook = await store.get(self.db, delivery.webhook_id)
                if hook is None:  # deleted since it was queued: its deliveries went with it
                    await store.discard(self.db, delivery.id)
                    continue
                self._in_flight[hook.id] = hook.city
                task = asyncio.create_task(self._attempt(delivery, hook))
                attempts.add(task)
                task.add_done_callback(attempts.discard)
        except Unavailable:
            log.warning("webhook deliveries paused: the database is unreachable")
        except Exception:
            log.exception("claiming a webhook delivery failed; retrying")

    async def _attempt(self, delivery: Delivery, hook: Webhook) -> None:
        try:
            await self.attempt(delivery, hook)
        except Unavailable:
            # Not recorded: the lease runs out and the delivery is claimed again.
            log.warning("webhook delivery %s paused: the database is unreachable", delivery.id)
        except Exception:
            log.exception("webhook delivery %s: recording the attempt failed", delivery.id)
        finally:
            del self._in_flight[hook.id]
            self.wake.set()

    async def _settle(self, attempts: set[asyncio.Task[None]]) -> None:
        """Wait out the attempts in flight; past the grace, cut their sends (the store writes
        after a send are bounded by the driver's timeoutMS and run to the end)."""
        pending = set(attempts)
        if not pending:
            return
        try:
            await asyncio.wait(pending, timeout=self.shutdown_grace_seconds)
            self._cutting = True
            now_ = asyncio.get_running_loop().time()
            for deadline in list(self._deadlines):
                deadline.reschedule(now_)
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            for task in pending:
                task.cancel()

    async def dispatch(self) -> None:
        """Queue a delivery for every new event and every endpoint whose filter matches."""
        position = await store.dispatch_position(
            self.db, default=await event_store.latest_seq(self.db)
        )
        while True:
            events = await event_store.events_after(
                self.db, {}, after=position, limit=200, viewer=SYSTEM_VIEWER
            )
            if not events:
                return
            hooks = await store.active(self.db)
            self._endpoints = len(hooks)
            for event in events:
                for hook in hooks:
                    # A delivery carries only what any actor of the hook's city may see.
                    seen = Viewer.of_city(hook.city).may_read(event.audience, event.withheld)
                    if (
                        seen
                        and event.occurred_at >= hook.created_at
                        and hook.event_filter.matches(event)
                    ):
                        await store.enqueue(
                            self.db, hook, event_seq=event.seq, event_at=event.occurred_at
                        )
            position = events[-1].seq
            await store.advance_dispatch(self.db, position)

    async def attempt(self, delivery: Delivery, hook: Webhook) -> None:
        """One attempt of a claimed delivery: whatever goes wrong before the receiver answers
        is this attempt's recorded failure, retried with backoff like any other."""
        started, moment = time.monotonic(), now()
        event = await event_store.event_by_seq(self.db, delivery.event_seq)
        status: int | None = None
        error: str | None = None
        if hook.disabled_at is not None:
            error = "the endpoint was disabled"
        elif event is None:
            error = "the event is past the log's retention"
        elif not Viewer.of_city(hook.city).may_read(event.audience, event.withheld):
            # Its subject was narrowed since the delivery was queued: retries and
            # redeliveries carry only what the hook's city may see now.
            error = "the event is no longer visible to the webhook's city"
        else:
            try:
                status = await self._send(hook, event)
            except SendFailed as exc:
                error = str(exc) or type(exc).__name__
            except InvalidInput as exc:  # a URL stored before it was checked, or DNS changed
                error = f"refused: the url {exc.message}"
            except TimeoutError:
                if self._cutting:  # shutting down: given back, due again, no attempt counted
                    await store.release(self.db, delivery.id, worker=self.worker)
                    return
                error = f"timed out after {self.send_timeout_seconds:g} s"
            except Exception as exc:
                # A bug or a surprise from the HTTP client fails this attempt, not the
                # deliverer. Its message could hold anything: the log gets it, the city the type.
                log.exception("webhook delivery %s: the attempt failed unexpectedly", delivery.id)
                error = f"internal error ({type(exc).__name__})"
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

    async def _send(self, hook: Webhook, event: Event) -> int:
        """Check the target again (DNS can change), sign and send, all within the timeout."""
        async with asyncio.timeout(self.send_timeout_seconds) as deadline:
            self._deadlines.add(deadline)
            try:
                if self._cutting:
                    deadline.reschedule(asyncio.get_running_loop().time())
                url = await check_target(hook.url, production=self.production)
                body = await self._body(hook, event)
                message_id, timestamp = f"evt_{event.seq}", int(time.time())
                headers = {
                    "content-type": "application/json",
                    "webhook-id": message_id,
                    "webhook-timestamp": str(timestamp),
                    "webhook-signature": sign(hook.secret, message_id, timestamp, body),
                }
                return await self.send(url, headers, body)
            finally:
                self._deadlines.discard(deadline)

    async def _body(self, hook: Webhook, event: Event) -> bytes:
        """The event in the endpoint's format; a chat message is told as the endpoint's city
        may see its subject now (services/chat_messages.py)."""
        if hook.format is WebhookFormat.STANDARD:
            return payload(event)
        message = await chat_messages.message_of(
            self.db, event, city=hook.city, app_url=self.app_url
        )
        told = (chat_messages.slack if hook.format is WebhookFormat.SLACK else chat_messages.teams)(
            message
        )
        return json.dumps(told, ensure_ascii=False, separators=(",", ":")).encode()


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
