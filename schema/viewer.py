"""Viewer: who the caller is, decided by the token's issuer."""

from __future__ import annotations

import strawberry

from schema.cities import City, Person, load_city
from schema.context import Info
from services import cities


@strawberry.type(description="The authenticated caller.")
class Viewer:
    subject: str = strawberry.field(description="The token's subject (`sub`).")
    scopes: list[str]
    client_id: str
    city_slug: strawberry.Private[str]

    @strawberry.field(description="The caller's city: the realm that issued the token.")
    async def city(self, info: Info) -> City:
        return await load_city(info, self.city_slug)

    @strawberry.field(description="The person the token speaks for, if it is one.")
    async def person(self, info: Info) -> Person | None:
        ctx = info.context
        person = await cities.person_of_principal(db=ctx.db, actor=ctx.actor())
        return Person.from_domain(person) if person else None
