"""Follow and unfollow, and saved filters; a person's own feed is `viewer.feed`, live as the
`viewerEvents` subscription."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Protocol

import strawberry

from cityexchange.schema.context import Info
from cityexchange.schema.errors import UserError, attempt
from cityexchange.schema.events import EventFilter, domain_filter, thread_kind
from cityexchange.schema.relay import expect_global_id, to_global_id
from cityexchange.schema.retries import RETRY_KEY, RETRY_KEY_ECHO, Retry, still_gone
from cityexchange.schema.taxonomy import Hazard, Sector, Urgency
from cityexchange.services import follows, saved_filters
from cityexchange.services.follows import FollowKind
from cityexchange.services.models import EventType
from cityexchange.services.principal import Principal
from cityexchange.services.store.database import Database

strawberry.enum(FollowKind, description="What one can follow.")

_NODE_KINDS = {FollowKind.PROBLEM: "Problem", FollowKind.SOLUTION: "Solution"}


class Change(Protocol):
    """follows.follow or follows.unfollow."""

    def __call__(
        self, *, db: Database, actor: Principal, kind: FollowKind, value: str, for_city: bool
    ) -> Awaitable[list[follows.Follow]]: ...


@strawberry.type
class Follow:
    kind: FollowKind
    value: str = strawberry.field(
        description="A city slug, a Hazard, a Sector, a tag, or a problem's or solution's "
        "global id."
    )
    since: datetime
    for_city: bool = strawberry.field(
        description="Followed for your whole city: in the feed of everyone in it."
    )

    @classmethod
    def from_domain(cls, follow: follows.Follow) -> Follow:
        node_kind = _NODE_KINDS.get(follow.kind)
        value = to_global_id(node_kind, follow.value) if node_kind else follow.value
        return cls(kind=follow.kind, value=value, since=follow.since, for_city=follow.for_city)


@strawberry.input
class FollowInput:
    kind: FollowKind
    value: str
    for_city: bool = strawberry.field(
        default=False,
        description="Follow for your whole city (scope: publish); a city following a "
        "problem or solution emits FOLLOWED_BY_CITY.",
    )
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type
class FollowPayload:
    follows: list[Follow] | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


def _value(input: FollowInput) -> str:
    node_kind = _NODE_KINDS.get(input.kind)
    if node_kind is None:
        return input.value
    return expect_global_id(input.value, (node_kind,), field="value")[1]


async def _change(info: Info, input: FollowInput, change: Change) -> FollowPayload:
    """Follow or unfollow; the caller's follows afterwards, or why not."""
    ctx = info.context
    found, errors = await attempt(
        lambda: change(
            db=ctx.db,
            actor=ctx.actor(),
            kind=input.kind,
            value=_value(input),
            for_city=input.for_city,
        ),
        Retry(info, input, reload=lambda _: follows.follows_of(db=ctx.db, actor=ctx.actor())),
    )
    return FollowPayload(
        follows=[Follow.from_domain(f) for f in found] if found is not None else None,
        user_errors=errors,
        client_mutation_id=input.client_mutation_id,
    )


@strawberry.type
class FollowMutations:
    @strawberry.mutation(
        description="Follow a city, hazard, sector, tag, problem or solution: its "
        "events appear in viewer.feed and viewerEvents."
    )
    async def follow(self, info: Info, input: FollowInput) -> FollowPayload:
        return await _change(info, input, follows.follow)

    @strawberry.mutation(description="Stop following something.")
    async def unfollow(self, info: Info, input: FollowInput) -> FollowPayload:
        return await _change(info, input, follows.unfollow)


@strawberry.type(description="An EventFilter as it was saved.")
class SavedEventFilter:
    cities: list[str]
    hazards: list[Hazard]
    sectors: list[Sector]
    tags: list[str]
    types: list[EventType]
    thread: strawberry.ID | None
    urgency: list[Urgency]


@strawberry.type(
    description="A filter you saved: it selects events for viewer.feed and viewerEvents."
)
class SavedFilter:
    name: str
    filter: SavedEventFilter
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, saved: saved_filters.SavedFilter) -> SavedFilter:
        f = saved.event_filter
        # A filter names at most one thread (EventFilter.thread): a problem or a solution.
        thread = to_global_id(saved.thread_kind, f.threads[0]) if f.threads else None
        return cls(
            name=saved.name,
            filter=SavedEventFilter(
                cities=list(f.cities),
                hazards=list(f.hazards),
                sectors=list(f.sectors),
                tags=list(f.tags),
                types=list(f.types),
                thread=strawberry.ID(thread) if thread else None,
                urgency=list(f.urgencies),
            ),
            created_at=saved.created_at,
            updated_at=saved.updated_at,
        )


@strawberry.input
class SaveFilterInput:
    name: str = strawberry.field(description="Saving under a name you used replaces that filter.")
    filter: EventFilter
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type
class SaveFilterPayload:
    saved_filter: SavedFilter | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


@strawberry.input
class DeleteSavedFilterInput:
    name: str
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type
class DeleteSavedFilterPayload:
    deleted_name: str | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


@strawberry.type
class SavedFilterMutations:
    @strawberry.mutation(
        description="Save an event filter under a name (at most 20): its events join "
        "viewer.feed and viewerEvents."
    )
    async def save_filter(self, info: Info, input: SaveFilterInput) -> SaveFilterPayload:
        ctx = info.context
        actor = ctx.actor()
        saved, errors = await attempt(
            lambda: saved_filters.save(
                db=ctx.db,
                actor=actor,
                name=input.name,
                event_filter=domain_filter(input.filter),
                thread_kind=thread_kind(input.filter),
            ),
            Retry(
                info,
                input,
                reload=lambda _: saved_filters.named(db=ctx.db, actor=actor, name=input.name),
            ),
        )
        return SaveFilterPayload(
            saved_filter=SavedFilter.from_domain(saved) if saved else None,
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )

    @strawberry.mutation(description="Delete one of your saved filters.")
    async def delete_saved_filter(
        self, info: Info, input: DeleteSavedFilterInput
    ) -> DeleteSavedFilterPayload:
        ctx = info.context
        actor = ctx.actor()
        _, errors = await attempt(
            lambda: saved_filters.delete(db=ctx.db, actor=actor, name=input.name),
            Retry(info, input, reload=still_gone),
        )
        return DeleteSavedFilterPayload(
            deleted_name=None if errors else input.name.strip(),
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )
