"""The in-process hub: filters, and memory that stays bounded under a slow subscriber."""

from __future__ import annotations

import pytest

from services.clock import now
from services.live import QUEUE_LIMIT, EventFilter, Hub, SubscriberTooSlow
from services.models import Event, EventType
from services.taxonomy import Hazard


def _event(
    seq: int, hazard: Hazard = Hazard.FLOOD, city: str = "rotterdam", thread: str = "p1"
) -> Event:
    return Event(
        type=EventType.PROBLEM_PUBLISHED,
        occurred_at=now(),
        city=city,
        actor="a",
        subject_kind="Problem",
        subject_id=thread,
        subject_city=city,
        thread_id=thread,
        hazards=(hazard,),
        seq=seq,
    )


async def test_a_slow_subscriber_is_let_go_with_a_reason() -> None:
    fanned: list[int] = []
    hub = Hub(on_fanout=fanned.append)
    slow = hub.subscribe(EventFilter())
    fast = hub.subscribe(EventFilter())
    for seq in range(1, QUEUE_LIMIT + 2):
        hub.publish(_event(seq))
        await fast.next()  # the fast one keeps up
    assert hub.subscribers == 1  # the slow one was dropped, its queue bounded
    for _ in range(QUEUE_LIMIT - 1):
        await slow.next()
    with pytest.raises(SubscriberTooSlow):
        await slow.next()
    assert fanned[-1] == 1


async def test_events_are_published_once_and_in_order() -> None:
    hub = Hub()
    subscriber = hub.subscribe(EventFilter())
    for seq in (1, 2, 2, 1, 3):  # a replay after a reconnect overlaps what was sent
        hub.publish(_event(seq))
    assert [(await subscriber.next()).seq for _ in range(3)] == [1, 2, 3]
    assert subscriber.queue.empty()


@pytest.mark.parametrize(
    ("event_filter", "matches"),
    [
        (EventFilter(hazards=(Hazard.FLOOD,)), True),
        (EventFilter(hazards=(Hazard.HEAT_WAVE,)), False),
        (EventFilter(cities=("rotterdam",)), True),
        (EventFilter(cities=("lagos",)), False),
        (EventFilter(threads=("p1",)), True),
        (EventFilter(threads=("p2",)), False),
        (EventFilter(types=(EventType.COMMENT_ADDED,)), False),
        (EventFilter(hazards=(Hazard.FLOOD,), cities=("lagos",)), False),
    ],
)
def test_filters(event_filter: EventFilter, matches: bool) -> None:
    assert event_filter.matches(_event(1)) is matches
