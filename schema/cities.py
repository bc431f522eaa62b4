"""City and Person types: member cities (tenants and OAuth realms) and their people."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from cityexchange.schema.context import Info
from cityexchange.schema.related import Attached, Fields, ItemT, Resolved, fields_of, gather_quietly
from cityexchange.schema.relay import Connection, Node, connection, to_global_id
from cityexchange.schema.taxonomy import Hazard, OrganisationKind, Role, Sector
from cityexchange.services import models
from cityexchange.services.models import OrganisationRole
from cityexchange.services.pages import Order, SolutionOrder
from cityexchange.services.taxonomy import IncomeGroup

if TYPE_CHECKING:
    from strawberry.types.nodes import Selection

    from cityexchange.schema.organisations import Organisation, PublicContact
    from cityexchange.schema.peers import CityPeerConnection
    from cityexchange.schema.problems import Problem, ProblemFilter
    from cityexchange.schema.solutions import Solution, SolutionFilter


strawberry.enum(IncomeGroup, description="World Bank income group of the city's country.")
strawberry.enum(
    OrganisationRole, description="ADMIN: manages the organisation, its people and clients."
)


@strawberry.type
class GeoPoint:
    latitude: float
    longitude: float


@strawberry.type
class Contact:
    name: str | None
    email: str | None
    url: str | None

    @classmethod
    def from_domain(cls, contact: models.Contact | None) -> Contact | None:
        if contact is None:
            return None
        return cls(name=contact.name, email=contact.email, url=contact.url)


@strawberry.type(description="The hazards a city faces and its resilience strategy.")
class ResilienceProfile:
    hazards: list[Hazard]
    strategy: str | None
    strategy_year: int | None


@strawberry.type(description="A member city: a tenant of the exchange and an OAuth realm.")
class City(Node):
    slug: str
    name: str
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code.")
    region: str | None
    population: int | None
    location: GeoPoint | None
    timezone: str | None
    languages: list[str]
    climate_zone: str | None
    resilience_profile: ResilienceProfile
    contact: Contact | None = strawberry.field(description="The public CRO-team contact.")
    networks: list[str]
    coastal: bool | None = strawberry.field(description="On a sea coast; null: not stated.")
    rivers: list[str] = strawberry.field(description="The major rivers the city lies on.")
    income_group: IncomeGroup | None
    created_at: datetime

    @classmethod
    def from_domain(cls, city: models.City) -> City:
        location = city.location
        return cls(
            id=to_global_id("City", city.slug),
            slug=city.slug,
            name=city.name,
            country=city.country,
            region=city.region,
            population=city.population,
            location=GeoPoint(latitude=location.latitude, longitude=location.longitude)
            if location
            else None,
            timezone=city.timezone,
            languages=list(city.languages),
            climate_zone=city.climate_zone,
            resilience_profile=ResilienceProfile(
                hazards=list(city.profile.hazards),
                strategy=city.profile.strategy,
                strategy_year=city.profile.strategy_year,
            ),
            contact=Contact.from_domain(city.contact),
            networks=list(city.networks),
            coastal=city.coastal,
            rivers=list(city.rivers),
            income_group=city.income_group,
            created_at=city.created_at,
        )

    @strawberry.field(description="Cities ranked by how alike they are to this one, with why.")
    async def peers(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Annotated[CityPeerConnection, strawberry.lazy("cityexchange.schema.peers")]:
        from cityexchange.schema.peers import peers_of

        return await peers_of(info, self.slug, first=first, after=after)

    @strawberry.field
    async def people(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Person]:
        page = await info.context.loaders.people_by_city.load((self.slug, first, after, None))
        return connection(page, Person.from_domain)

    @strawberry.field(description="The city's organisations, by name.")
    async def organisations(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Annotated[Organisation, strawberry.lazy("cityexchange.schema.organisations")]]:
        from cityexchange.schema.organisation_loaders import ChildrenKey
        from cityexchange.schema.organisations import Organisation

        loader = info.context.organisation_loaders.organisations_by_city
        page = await loader.load(ChildrenKey(self.slug, first, after))
        return connection(page, Organisation.from_domain)

    @strawberry.field
    async def problems(
        self,
        info: Info,
        filter: Annotated[ProblemFilter, strawberry.lazy("cityexchange.schema.problems")]
        | None = None,
        order_by: Order = Order.CREATED_AT_DESC,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Annotated[Problem, strawberry.lazy("cityexchange.schema.problems")]]:
        from cityexchange.schema.problems import Problem, listing_of

        key = (self.slug, first, after, (listing_of(filter), order_by))
        page = await info.context.loaders.problems_by_city.load(key)
        return connection(page, Problem.from_domain)

    @strawberry.field
    async def solutions(
        self,
        info: Info,
        filter: Annotated[SolutionFilter, strawberry.lazy("cityexchange.schema.solutions")]
        | None = None,
        order_by: SolutionOrder = SolutionOrder.CREATED_AT_DESC,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Annotated[Solution, strawberry.lazy("cityexchange.schema.solutions")]]:
        from cityexchange.schema.solutions import Solution, criteria_of, listing_of

        key = (self.slug, first, after, (listing_of(filter), criteria_of(filter), order_by))
        page = await info.context.loaders.solutions_by_city.load(key)
        return connection(page, Solution.from_domain)


@strawberry.type(description="The organisation a person names for themselves, as text.")
class Affiliation:
    name: str
    kind: OrganisationKind


@strawberry.type(description="A person with a role in a city, from one of its organisations.")
class Person(Node):
    name: str
    role: Role
    affiliation: Affiliation
    title: str | None
    organisation_role: OrganisationRole | None = strawberry.field(
        description="Their role in `organisation`; null when not bound."
    )
    listed_as_expert: bool = strawberry.field(
        description="Agreed to be found by `experts`, with their public contact."
    )
    hazards: list[Hazard] = strawberry.field(description="What they work on.")
    sectors: list[Sector]
    city_slug: strawberry.Private[str]
    organisation_id: strawberry.Private[str | None]
    shown_contact: strawberry.Private[models.PublicContact | None]
    attached: strawberry.Private[Attached] = field(default_factory=Attached)

    @classmethod
    def from_domain(cls, person: models.Person) -> Person:
        return cls(
            id=to_global_id("Person", person.id),
            name=person.name,
            role=person.role,
            affiliation=Affiliation(name=person.affiliation.name, kind=person.affiliation.kind),
            title=person.title,
            organisation_role=person.organisation_role,
            listed_as_expert=person.listed_as_expert,
            hazards=list(person.hazards),
            sectors=list(person.sectors),
            city_slug=person.city,
            organisation_id=person.organisation_id,
            # Shown only while they agree to be listed.
            shown_contact=person.contact if person.listed_as_expert else None,
        )

    @strawberry.field(description="The organisation they are bound to, if any.")
    async def organisation(
        self, info: Info
    ) -> Annotated[Organisation, strawberry.lazy("cityexchange.schema.organisations")] | None:
        from cityexchange.schema.organisations import Organisation

        if self.organisation_id is None:
            return None
        loader = info.context.organisation_loaders.organisation_by_id
        found = await loader.load(self.organisation_id)
        return Organisation.from_domain(found) if found else None

    @strawberry.field(description="Their public contact; null unless listed as an expert.")
    def public_contact(
        self,
    ) -> Annotated[PublicContact, strawberry.lazy("cityexchange.schema.organisations")] | None:
        from cityexchange.schema.organisations import PublicContact

        return PublicContact.from_domain(self.shown_contact)

    @strawberry.field(graphql_type=City)
    def city(self, info: Info) -> Resolved[City]:
        return self.attached.get("city") or load_city(info, self.city_slug)

    @classmethod
    async def attach_related(
        cls, info: Info, items: Sequence[Person], selections: Sequence[Selection]
    ) -> None:
        """What `selections` ask of these people, loaded for all of them at once."""
        wanted = fields_of(selections, _PERSON)
        await gather_quietly(attach_cities(info, items, lambda p: p.city_slug, wanted))


_PERSON = frozenset({"Person", "Node"})


def attach_cities(
    info: Info, items: Sequence[ItemT], slug_of: Callable[[ItemT], str], wanted: Fields
) -> list[Coroutine[Any, Any, None]]:
    """The load of the items' cities when `wanted` has `city`: one batch for the list."""
    if "city" not in wanted:
        return []
    return [_attach_cities(info, items, slug_of)]


async def _attach_cities(
    info: Info, items: Sequence[ItemT], slug_of: Callable[[ItemT], str]
) -> None:
    slugs = list(dict.fromkeys(slug_of(item) for item in items))
    found = await info.context.loaders.city_by_slug.load_many(slugs)
    shown = {slug: City.from_domain(city) for slug, city in zip(slugs, found, strict=True) if city}
    for item in items:
        city = shown.get(slug_of(item))
        if city is not None:  # a missing city is the field's error to raise
            item.attached["city"] = city


async def load_city(info: Info, slug: str) -> City:
    """A city through the request's loader; every stored record names an existing city."""
    city = await info.context.loaders.city_by_slug.load(slug)
    if city is None:
        raise LookupError(f"city {slug!r} is missing")
    return City.from_domain(city)
