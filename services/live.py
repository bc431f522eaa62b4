"""Live events: filters, and the in-process hub that fans one change stream out to every
subscriber of this process."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from cityexchange.services.models import Event, EventFilter, Interests
from cityexchange.services.visibility import Viewer

log = logging.getLogger("cityexchange.live")

QUEUE_LIMIT = 1_000  # events waiting for one subscriber; past this it is closed (it resumes)
# ... or the oldest of them waiting this long: a client that reads too slowly is told so
# while it still reads, well before the transport's keep-alive (20 s ping, 20 s timeout)
# would cut it off with a bare 1011.
LAG_LIMIT_SECONDS = 10.0


class SubscriberTooSlow(Exception):
    """A subscriber fell too far behind and was let go; it resumes by cursor."""

    def __init__(self) -> None:
        super().__init__(
            f"this subscription fell {QUEUE_LIMIT} events or {LAG_LIMIT_SECONDS:.0f} seconds "
            "behind and was closed; subscribe again with `after` set to the last cursor "
            "you received"
        )


def too_far_behind(waiting: int, oldest_at: float | None, now: float) -> bool:
    """Whether a subscriber with `waiting` items, the oldest queued at `oldest_at`, is let go."""
    if waiting >= QUEUE_LIMIT:
        return True
    return oldest_at is not None and now - oldest_at > LAG_LIMIT_SECONDS


@dataclass(eq=False, slots=True)
class Subscriber:
    filter: EventFilter | Interests
    viewer: Viewer  # what it may see: checked on every event, as every read checks it
    shared: bool = False  # a group's execution (schema/sharing.py), not a client's own
    queue: asyncio.Queue[Event | None] = field(
        default_factory=lambda: asyncio.Queue[Event | None](QUEUE_LIMIT)
    )
    overflowed: bool = False
    queued_at: deque[float] = field(default_factory=deque[float])  # of each event waiting

    async def next(self) -> Event:
        event = await self.queue.get()
        if event is None:
            raise SubscriberTooSlow
        if self.queued_at:
            self.queued_at.popleft()
        return event


@dataclass(slots=True)
class Hub:
    """Fans the events this process's change stream sees out to its subscribers."""

    on_fanout: Callable[[int], None] = lambda count: None
    on_publish: Callable[[], None] = lambda: None  # e.g. wake the webhook deliverer
    clock: Callable[[], float] = time.monotonic
    last_seq: int = 0
    _subscribers: set[Subscriber] = field(default_factory=set[Subscriber])

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def own_subscribers(self) -> int:
        """Subscribers that are clients' own subscriptions, not a shared group's."""
        return sum(1 for s in self._subscribers if not s.shared)

    def subscribe(
        self, event_filter: EventFilter | Interests, viewer: Viewer, *, shared: bool = False
    ) -> Subscriber:
        subscriber = Subscriber(event_filter, viewer, shared=shared)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def publish(self, event: Event) -> None:
        """Hand `event` to every matching subscriber, without ever waiting for one."""
        if event.seq <= self.last_seq:
            return  # already published (a replay after the stream reopened)
        self.last_seq = event.seq
        delivered, moment = 0, self.clock()
        for subscriber in list(self._subscribers):
            if subscriber.overflowed or not subscriber.filter.matches(event):
                continue
            if not subscriber.viewer.may_read(event.audience, event.withheld):
                continue
            waiting = subscriber.queue.qsize()
            oldest = subscriber.queued_at[0] if subscriber.queued_at else None
            if not too_far_behind(waiting + 1, oldest, moment):
                subscriber.queue.put_nowait(event)
                subscriber.queued_at.append(moment)
                delivered += 1
                continue
            # Memory stays bounded: drop the slow subscriber and what waits for it, and tell
            # it why at once; it resumes from the last cursor it received, nothing is lost.
            subscriber.overflowed = True
            self._subscribers.discard(subscriber)
            while not subscriber.queue.empty():
                subscriber.queue.get_nowait()
            subscriber.queued_at.clear()
            subscriber.queue.put_nowait(None)
        self.on_fanout(delivered)
        self.on_publish()
