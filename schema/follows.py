"""Follow and unfollow; a person's own feed is in `viewer.feed`."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Protocol

import strawberry

from cityexchange.schema.context import Info
from cityexchange.schema.errors import UserError, attempt
from cityexchange.schema.relay import expect_global_id, to_global_id
from cityexchange.schema.retries import RETRY_KEY, RETRY_KEY_ECHO, Retry
from cityexchange.services import follows
from cityexchange.services.follows import FollowKind
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
        description="A city slug, a Hazard, a tag, or a problem's or solution's global id."
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
        description="Follow a city, hazard, tag, problem or solution: its "
        "events appear in viewer.feed."
    )
    async def follow(self, info: Info, input: FollowInput) -> FollowPayload:
        return await _change(info, input, follows.follow)

    @strawberry.mutation(description="Stop following something.")
    async def unfollow(self, info: Info, input: FollowInput) -> FollowPayload:
        return await _change(info, input, follows.unfollow)
