"""Organisations in GraphQL: the `Organisation` node and its people, and the mutations that
create, edit and staff organisations (services/organisations.py decides who may)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from cityexchange.schema.cities import City, Person, load_city
from cityexchange.schema.context import Info
from cityexchange.schema.errors import UserError, attempt
from cityexchange.schema.organisation_loaders import ChildrenKey
from cityexchange.schema.relay import Connection, Node, connection, expect_global_id, to_global_id
from cityexchange.schema.retries import RETRY_KEY, RETRY_KEY_ECHO, Retry, created
from cityexchange.schema.taxonomy import Hazard, OrganisationKind, Sector
from cityexchange.services import cities, models, organisations
from cityexchange.services.errors import NotFound
from cityexchange.services.models import OrganisationRole

if TYPE_CHECKING:
    from cityexchange.schema.problems import Problem
    from cityexchange.schema.solutions import Solution


@strawberry.type(description="How to reach an organisation or a listed expert.")
class PublicContact:
    email: str | None
    url: str | None
    phone: str | None

    @classmethod
    def from_domain(cls, contact: models.PublicContact | None) -> PublicContact | None:
        if contact is None:
            return None
        return cls(email=contact.email, url=contact.url, phone=contact.phone)


@strawberry.input(description="Each part optional; e-mail, http(s) URL, phone number.")
class PublicContactInput:
    email: str | None = None
    url: str | None = None
    phone: str | None = None

    def to_domain(self) -> models.PublicContact:
        return models.PublicContact(email=self.email, url=self.url, phone=self.phone)


def contact_of(contact: PublicContactInput | None) -> models.PublicContact | None:
    return contact.to_domain() if contact is not None else None


@strawberry.type(
    description="One of a city's actors (agency, utility, business, NGO, university, community "
    "group), or an international organisation working with many cities (no city)."
)
class Organisation(Node):
    name: str
    kind: OrganisationKind
    sectors: list[Sector]
    hazards: list[Hazard] = strawberry.field(description="The hazards it works on.")
    description: str | None
    contact: PublicContact | None = strawberry.field(description="Its public contact.")
    international: bool = strawberry.field(description="Works with many cities; no city.")
    version: int = strawberry.field(description="Send it back with updateOrganisation.")
    created_at: datetime
    updated_at: datetime
    organisation_id: strawberry.Private[str]
    city_slug: strawberry.Private[str | None]

    @classmethod
    def from_domain(cls, organisation: models.Organisation) -> Organisation:
        return cls(
            id=to_global_id("Organisation", organisation.id),
            name=organisation.name,
            kind=organisation.kind,
            sectors=list(organisation.sectors),
            hazards=list(organisation.hazards),
            description=organisation.description,
            contact=PublicContact.from_domain(organisation.contact),
            international=organisation.city is None,
            version=organisation.version,
            created_at=organisation.created_at,
            updated_at=organisation.updated_at,
            organisation_id=organisation.id,
            city_slug=organisation.city,
        )

    @strawberry.field(description="Its city; null for an international organisation.")
    async def city(self, info: Info) -> City | None:
        return await load_city(info, self.city_slug) if self.city_slug else None

    @strawberry.field(
        description="Problems that name it a stakeholder, newest first (those you may see)."
    )
    async def problems(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Annotated[Problem, strawberry.lazy("cityexchange.schema.problems")]]:
        from cityexchange.schema.problems import Problem

        loader = info.context.organisation_loaders.problems_by_organisation
        page = await loader.load(ChildrenKey(self.organisation_id, first, after))
        return connection(page, Problem.from_domain)

    @strawberry.field(
        description="Solutions that name it a partner, newest first (those you may see)."
    )
    async def solutions(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Annotated[Solution, strawberry.lazy("cityexchange.schema.solutions")]]:
        from cityexchange.schema.solutions import Solution

        loader = info.context.organisation_loaders.solutions_by_organisation
        page = await loader.load(ChildrenKey(self.organisation_id, first, after))
        return connection(page, Solution.from_domain)

    @strawberry.field(description="The people bound to it, oldest first.")
    async def people(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Person]:
        loader = info.context.organisation_loaders.people_by_organisation
        page = await loader.load(ChildrenKey(self.organisation_id, first, after))
        return connection(page, Person.from_domain)


def _maybe(organisation: models.Organisation | None) -> Organisation | None:
    return Organisation.from_domain(organisation) if organisation else None


def organisation_ids(values: list[strawberry.ID] | None, field: str) -> list[str] | None:
    """The ids of a list of Organisation global ids (None: not given)."""
    if values is None:
        return None
    return [_organisation_id(v, field) for v in values]


async def organisations_of(info: Info, ids: Sequence[str]) -> list[Organisation]:
    """The organisations of `ids` that exist, in order (a relation's field)."""
    found = await info.context.organisation_loaders.organisation_by_id.load_many(list(ids))
    return [Organisation.from_domain(o) for o in found if o is not None]


def _organisation_id(global_id: str, field: str) -> str:
    return expect_global_id(global_id, ("Organisation",), field=field)[1]


@strawberry.input
class CreateOrganisationInput:
    name: str = strawberry.field(description="At most 200 characters; unique in its city.")
    kind: OrganisationKind
    international: bool = strawberry.field(
        default=False,
        description="An international organisation (no city); else one of your city's.",
    )
    sectors: list[Sector] | None = None
    hazards: list[Hazard] | None = None
    description: str | None = strawberry.field(default=None, description="At most 1000.")
    contact: PublicContactInput | None = None
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.input
class UpdateOrganisationInput:
    id: strawberry.ID
    version: int = strawberry.field(description="The version you last read.")
    name: str | None = None
    kind: OrganisationKind | None = None
    sectors: list[Sector] | None = None
    hazards: list[Hazard] | None = None
    description: str | None = None
    contact: PublicContactInput | None = None
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type
class OrganisationPayload:
    organisation: Organisation | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


@strawberry.input
class SetPersonOrganisationInput:
    person_id: strawberry.ID
    organisation_id: strawberry.ID | None = strawberry.field(
        default=None, description="Null: the person leaves their organisation."
    )
    role: OrganisationRole | None = strawberry.field(
        default=None, description="Default MEMBER; only with an organisationId."
    )
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type
class SetPersonOrganisationPayload:
    person: Person | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


async def _reload(info: Info, id: str) -> models.Organisation:
    """The organisation as it is now: what a retry with the same clientMutationId returns."""
    ctx = info.context
    return await organisations.get(db=ctx.db, actor=ctx.actor(), id=id)


async def _person(info: Info, id: str) -> models.Person:
    ctx = info.context
    [person] = await cities.people_by_ids(db=ctx.db, actor=ctx.actor(), ids=[id])
    if person is None:
        raise NotFound("Person", id)
    return person


@strawberry.type
class OrganisationMutations:
    @strawberry.mutation(
        description="Add one of your city's organisations, or an international one (scope: admin)."
    )
    async def create_organisation(
        self, info: Info, input: CreateOrganisationInput
    ) -> OrganisationPayload:
        ctx = info.context
        actor = ctx.actor()
        draft = models.OrganisationDraft(
            city=None if input.international else actor.city,
            name=input.name,
            kind=input.kind,
            sectors=tuple(input.sectors or ()),
            hazards=tuple(input.hazards or ()),
            description=input.description,
            contact=contact_of(input.contact),
        )
        organisation, errors = await attempt(
            lambda: organisations.create(db=ctx.db, actor=actor, draft=draft),
            Retry(info, input, reload=created(lambda id: _reload(info, id))),
        )
        return OrganisationPayload(
            organisation=_maybe(organisation),
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )

    @strawberry.mutation(description="Edit an organisation: its city's admins, or its own admins.")
    async def update_organisation(
        self, info: Info, input: UpdateOrganisationInput
    ) -> OrganisationPayload:
        ctx = info.context
        changes = organisations.OrganisationChanges(
            name=input.name,
            kind=input.kind,
            sectors=input.sectors,
            hazards=input.hazards,
            description=input.description,
            contact=contact_of(input.contact),
        )

        async def update() -> models.Organisation:
            return await organisations.update(
                db=ctx.db,
                actor=ctx.actor(),
                id=_organisation_id(input.id, "id"),
                version=input.version,
                changes=changes,
            )

        organisation, errors = await attempt(
            update,
            Retry(info, input, reload=lambda _: _reload(info, _organisation_id(input.id, "id"))),
        )
        return OrganisationPayload(
            organisation=_maybe(organisation),
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )

    @strawberry.mutation(
        description="Bind a person to an organisation with a role, or unbind them: the "
        "person's city's admins, or the organisation's own admins for its people."
    )
    async def set_person_organisation(
        self, info: Info, input: SetPersonOrganisationInput
    ) -> SetPersonOrganisationPayload:
        ctx = info.context

        def person_id() -> str:
            return expect_global_id(input.person_id, ("Person",), field="personId")[1]

        async def bind() -> models.Person:
            organisation_id = (
                _organisation_id(input.organisation_id, "organisationId")
                if input.organisation_id
                else None
            )
            return await organisations.set_person_organisation(
                db=ctx.db,
                actor=ctx.actor(),
                person_id=person_id(),
                organisation_id=organisation_id,
                role=input.role,
            )

        person, errors = await attempt(
            bind, Retry(info, input, reload=lambda _: _person(info, person_id()))
        )
        return SetPersonOrganisationPayload(
            person=Person.from_domain(person) if person else None,
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )
