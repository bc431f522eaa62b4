"""`experts`: organisations and listed people of any city who work on given hazards and
sectors; and `updateViewerProfile`, where a person agrees to be listed."""

from __future__ import annotations

from typing import Annotated

import strawberry

from cityexchange.schema.cities import Person
from cityexchange.schema.context import Info
from cityexchange.schema.errors import UserError, attempt
from cityexchange.schema.organisations import Organisation, PublicContactInput, contact_of
from cityexchange.schema.relay import Connection, connection
from cityexchange.schema.retries import RETRY_KEY, RETRY_KEY_ECHO, Retry
from cityexchange.schema.taxonomy import Hazard, Sector
from cityexchange.services import cities, experts, models
from cityexchange.services.errors import NotFound
from cityexchange.services.pages import PageRequest

Expert = Annotated[Organisation | Person, strawberry.union("Expert")]


def _expert(found: experts.Expert) -> Organisation | Person:
    if isinstance(found, models.Organisation):
        return Organisation.from_domain(found)
    return Person.from_domain(found)


@strawberry.input
class UpdateViewerProfileInput:
    listed_as_expert: bool | None = strawberry.field(
        default=None,
        description="Be found by `experts`, with your public contact, by every member city.",
    )
    hazards: list[Hazard] | None = strawberry.field(
        default=None, description="The hazards you work on."
    )
    sectors: list[Sector] | None = None
    contact: PublicContactInput | None = None
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type
class UpdateViewerProfilePayload:
    person: Person | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


async def _viewer_person(info: Info) -> models.Person:
    ctx = info.context
    person = await cities.person_of_principal(db=ctx.db, actor=ctx.actor())
    if person is None:
        raise NotFound("Person", ctx.actor().subject)
    return person


@strawberry.type
class ExpertQueries:
    @strawberry.field(
        description="Who works on any of `hazards` and any of `sectors` (omitted: any), in "
        "every city: organisations first, then people who agreed to be listed; forward pages."
    )
    async def experts(
        self,
        info: Info,
        hazards: list[Hazard] | None = None,
        sectors: list[Sector] | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Expert]:
        ctx = info.context
        page = await experts.experts(
            db=ctx.db,
            actor=ctx.actor(),
            hazards=hazards,
            sectors=sectors,
            request=PageRequest(first=first, after=after),
        )
        # Attached: a mixed page has no one type whose relations could be loaded for all.
        return connection(page, _expert, attached=True)


@strawberry.type
class ExpertMutations:
    @strawberry.mutation(
        description="Say whether you are listed as an expert, on what, and how to reach you."
    )
    async def update_viewer_profile(
        self, info: Info, input: UpdateViewerProfileInput
    ) -> UpdateViewerProfilePayload:
        ctx = info.context
        changes = experts.ProfileChanges(
            listed_as_expert=input.listed_as_expert,
            hazards=input.hazards,
            sectors=input.sectors,
            contact=contact_of(input.contact),
        )
        person, errors = await attempt(
            lambda: experts.update_profile(db=ctx.db, actor=ctx.actor(), changes=changes),
            Retry(info, input, reload=lambda _: _viewer_person(info)),
        )
        return UpdateViewerProfilePayload(
            person=Person.from_domain(person) if person else None,
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )
