"""Viewer: who the caller is, decided by the token's issuer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from cityexchange.schema.cities import City, Person, load_city
from cityexchange.schema.context import Info
from cityexchange.schema.relay import Connection, connection

if TYPE_CHECKING:
    from cityexchange.schema.digests import Digest
    from cityexchange.schema.events import Event
    from cityexchange.schema.follows import Follow, SavedFilter
    from cityexchange.schema.organisations import Organisation
from cityexchange.services import cities, digests, follows, saved_filters
from cityexchange.services.pages import PageRequest


@strawberry.type(description="The authenticated caller.")
class Viewer:
    subject: str = strawberry.field(description="The token's subject (`sub`).")
    scopes: list[str]
    client_id: str
    city_slug: strawberry.Private[str]
    organisation_id: strawberry.Private[str | None] = None

    @strawberry.field(description="The caller's city: the realm that issued the token.")
    async def city(self, info: Info) -> City:
        return await load_city(info, self.city_slug)

    @strawberry.field(description="The organisation the token acts for (its `org`), if any.")
    async def organisation(
        self, info: Info
    ) -> Annotated[Organisation, strawberry.lazy("cityexchange.schema.organisations")] | None:
        from cityexchange.schema.organisations import Organisation

        if self.organisation_id is None:
            return None
        found = await info.context.organisation_loaders.organisation_by_id.load(
            self.organisation_id
        )
        return Organisation.from_domain(found) if found else None

    @strawberry.field(description="What you follow.")
    async def follows(
        self, info: Info
    ) -> list[Annotated[Follow, strawberry.lazy("cityexchange.schema.follows")]]:
        from cityexchange.schema.follows import Follow

        ctx = info.context
        found = await follows.follows_of(db=ctx.db, actor=ctx.actor())
        return [Follow.from_domain(f) for f in found]

    @strawberry.field(description="Your email digest, if you chose one (setDigest).")
    async def digest(
        self, info: Info
    ) -> Annotated[Digest, strawberry.lazy("cityexchange.schema.digests")] | None:
        from cityexchange.schema.digests import Digest

        ctx = info.context
        found = await digests.of(db=ctx.db, actor=ctx.actor())
        return Digest.from_domain(found) if found else None

    @strawberry.field(description="Your saved filters, by name.")
    async def saved_filters(
        self, info: Info
    ) -> list[Annotated[SavedFilter, strawberry.lazy("cityexchange.schema.follows")]]:
        from cityexchange.schema.follows import SavedFilter

        ctx = info.context
        found = await saved_filters.of(db=ctx.db, actor=ctx.actor())
        return [SavedFilter.from_domain(f) for f in found]

    @strawberry.field(
        description="Events about what you and your city follow and what your saved "
        "filters select, oldest first; live as the viewerEvents subscription."
    )
    async def feed(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Annotated[Event, strawberry.lazy("cityexchange.schema.events")]]:
        from cityexchange.schema.events import Event

        ctx = info.context
        page = await follows.feed(
            db=ctx.db, actor=ctx.actor(), request=PageRequest(first=first, after=after)
        )
        return connection(page, Event.from_domain)

    @strawberry.field(description="The person the token speaks for, if it is one.")
    async def person(self, info: Info) -> Person | None:
        ctx = info.context
        person = await cities.person_of_principal(db=ctx.db, actor=ctx.actor())
        return Person.from_domain(person) if person else None
