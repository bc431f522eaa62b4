"""The in-process hub: filters, and memory that stays bounded under a slow subscriber."""

from __future__ import annotations

import pytest

from cityexchange.services.clock import now
from cityexchange.services.live import (
    LAG_LIMIT_SECONDS,
    QUEUE_LIMIT,
    EventFilter,
    Hub,
    SubscriberTooSlow,
)
from cityexchange.services.models import Event, EventType
from cityexchange.services.taxonomy import Hazard
from cityexchange.services.visibility import Viewer


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
    slow = hub.subscribe(EventFilter(), Viewer.of_city("rotterdam"))
    fast = hub.subscribe(EventFilter(), Viewer.of_city("rotterdam"))
    for seq in range(1, QUEUE_LIMIT + 2):
        hub.publish(_event(seq))
        await fast.next()  # the fast one keeps up
    assert hub.subscribers == 1  # the slow one was dropped, its queue released
    assert slow.queue.qsize() == 1
    with pytest.raises(SubscriberTooSlow):  # told at once; it resumes by cursor
        await slow.next()
    assert fanned[-1] == 1


async def test_a_subscriber_that_lags_is_let_go_before_the_transport_times_out() -> None:
    moment = [0.0]
    hub = Hub(clock=lambda: moment[0])
    slow = hub.subscribe(EventFilter(), Viewer.of_city("rotterdam"))
    hub.publish(_event(1))
    moment[0] = LAG_LIMIT_SECONDS / 2
    hub.publish(_event(2))
    assert hub.subscribers == 1
    assert (await slow.next()).seq == 1  # it reads, but slower than events come
    moment[0] = LAG_LIMIT_SECONDS * 1.6  # event 2 has waited longer than the limit
    hub.publish(_event(3))
    assert hub.subscribers == 0
    with pytest.raises(SubscriberTooSlow):
        await slow.next()


async def test_events_are_published_once_and_in_order() -> None:
    hub = Hub()
    subscriber = hub.subscribe(EventFilter(), Viewer.of_city("rotterdam"))
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
