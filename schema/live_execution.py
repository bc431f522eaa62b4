"""How an `events` subscription takes its events: the one seam between the resolver
(schema/events.py) and shared execution (schema/sharing.py).

The resolver asks its operation's `Context.live` for the events to resolve, and resolves each
with loaders built afresh. A subscription of its own has none there and runs `OnItsOwn`.
Inside a shared subscription the sharing layer makes the execution and sets it:

- `GroupExecution`: a group's one live execution, from the hub only, from now on (members
  replay what they missed on their own); it tells the group once it listens, and which event
  each result of the execution is for.
- `CatchUp`: a member's replay of what it missed, from the log only, up to the last event
  committed; the member then takes its group's results past `last_seq`.

Only the execution writes what it records; the sharing layer reads it through properties.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

from cityexchange.services import events
from cityexchange.services.live import Hub
from cityexchange.services.models import Event, EventFilter
from cityexchange.services.principal import Principal
from cityexchange.services.store.database import Database


class LiveExecution(ABC):
    """The events one execution of an `events` subscription resolves."""

    def __init__(self) -> None:
        self._last_seq = 0
        self._ran_out = False

    @property
    def last_seq(self) -> int:
        """The event handed to the resolver last; 0 before the first."""
        return self._last_seq

    @property
    def ran_out(self) -> bool:
        """Whether the events ran to their end (a catch-up that reached the log's end)."""
        return self._ran_out

    async def events(
        self,
        *,
        db: Database,
        hub: Hub,
        actor: Principal,
        event_filter: EventFilter,
        after: str | None,
    ) -> AsyncGenerator[Event]:
        """The events to resolve, each recorded as it is handed over."""
        source = self._source(db=db, hub=hub, actor=actor, event_filter=event_filter, after=after)
        async with aclosing(source):
            async for event in source:
                self._last_seq = event.seq
                yield event
        self._ran_out = True

    @abstractmethod
    def _source(
        self,
        *,
        db: Database,
        hub: Hub,
        actor: Principal,
        event_filter: EventFilter,
        after: str | None,
    ) -> AsyncGenerator[Event]: ...


class OnItsOwn(LiveExecution):
    """A subscription of its own: missed events from the log after `after`, then live ones."""

    def _source(
        self,
        *,
        db: Database,
        hub: Hub,
        actor: Principal,
        event_filter: EventFilter,
        after: str | None,
    ) -> AsyncGenerator[Event]:
        return events.follow(db=db, hub=hub, actor=actor, event_filter=event_filter, after=after)


class GroupExecution(LiveExecution):
    """A group's one live execution: live events only, whatever `after` its members gave."""

    def __init__(self, on_live: Callable[[], None]) -> None:
        super().__init__()
        self._on_live = on_live
        self._claimed = 0

    def _source(
        self,
        *,
        db: Database,
        hub: Hub,
        actor: Principal,
        event_filter: EventFilter,
        after: str | None,
    ) -> AsyncGenerator[Event]:
        return events.follow(
            db=db,
            hub=hub,
            actor=actor,
            event_filter=event_filter,
            after=None,
            on_live=self._on_live,
            shared=True,
        )

    def claim(self) -> int | None:
        """The event the execution's result at hand is for: the one handed over since the
        last claim; None when there is none (the result is the execution's failure)."""
        if self._last_seq == self._claimed:
            return None
        self._claimed = self._last_seq
        return self._claimed


class CatchUp(LiveExecution):
    """A member's replay of the events after its `after`, from the log only."""

    def _source(
        self,
        *,
        db: Database,
        hub: Hub,
        actor: Principal,
        event_filter: EventFilter,
        after: str | None,
    ) -> AsyncGenerator[Event]:
        return events.replay(db=db, actor=actor, event_filter=event_filter, after=after)
