"""Live events: filters, and the in-process hub that fans one change stream out to every
subscriber of this process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from services.models import Event, EventFilter

log = logging.getLogger("cityexchange.live")

QUEUE_LIMIT = 1_000  # events waiting for one subscriber; past this it is closed (it resumes)


class SubscriberTooSlow(Exception):
    """A subscriber fell QUEUE_LIMIT events behind and was let go; it resumes by cursor."""

    def __init__(self) -> None:
        super().__init__(
            f"this subscription fell {QUEUE_LIMIT} events behind and was closed; "
            "subscribe again with `after` set to the last cursor you received"
        )


@dataclass(eq=False, slots=True)
class Subscriber:
    filter: EventFilter
    shared: bool = False  # a group's execution (schema/sharing.py), not a client's own
    queue: asyncio.Queue[Event | None] = field(
        default_factory=lambda: asyncio.Queue[Event | None](QUEUE_LIMIT)
    )
    overflowed: bool = False

    async def next(self) -> Event:
        event = await self.queue.get()
        if event is None:
            raise SubscriberTooSlow
        return event


@dataclass(slots=True)
class Hub:
    """Fans the events this process's change stream sees out to its subscribers."""

    on_fanout: Callable[[int], None] = lambda count: None
    on_publish: Callable[[], None] = lambda: None  # e.g. wake the webhook deliverer
    last_seq: int = 0
    _subscribers: set[Subscriber] = field(default_factory=set[Subscriber])

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def own_subscribers(self) -> int:
        """Subscribers that are clients' own subscriptions, not a shared group's."""
        return sum(1 for s in self._subscribers if not s.shared)

    def subscribe(self, event_filter: EventFilter, *, shared: bool = False) -> Subscriber:
        subscriber = Subscriber(event_filter, shared=shared)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def publish(self, event: Event) -> None:
        """Hand `event` to every matching subscriber, without ever waiting for one."""
        if event.seq <= self.last_seq:
            return  # already published (a replay after the stream reopened)
        self.last_seq = event.seq
        delivered = 0
        for subscriber in list(self._subscribers):
            if subscriber.overflowed or not subscriber.filter.matches(event):
                continue
            try:
                subscriber.queue.put_nowait(event)
                delivered += 1
            except asyncio.QueueFull:
                # Memory stays bounded: drop the slow subscriber, tell it why.
                subscriber.overflowed = True
                self._subscribers.discard(subscriber)
                subscriber.queue.get_nowait()
                subscriber.queue.put_nowait(None)
        self.on_fanout(delivered)
        self.on_publish()
