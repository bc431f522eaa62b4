"""Who may see a problem or a solution, as the API shows and takes it (services/visibility.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from cityexchange.schema.context import Info
from cityexchange.services import visibility
from cityexchange.services.errors import InvalidInput
from cityexchange.services.visibility import Embargo, TeamRole, VisibilityLevel

if TYPE_CHECKING:
    from cityexchange.schema.cities import Person
    from cityexchange.schema.organisations import Organisation

strawberry.enum(
    VisibilityLevel,
    description="DRAFT: its team and the city's admins. CITY: every actor of the city. "
    "SHARED: the city and the named cities and networks. PUBLIC: every member city.",
)


@strawberry.type(description="Who may see it; the cities and networks of SHARED.")
class Visibility:
    level: VisibilityLevel
    cities: list[str] = strawberry.field(description="Slugs of the cities it is shared with.")
    networks: list[str] = strawberry.field(
        description="Networks whose member cities (when it was shared) may see it."
    )
    embargo_until: datetime | None = strawberry.field(
        description="A DRAFT's embargo: when it publishes itself, as `publishAs`."
    )
    publish_as: VisibilityLevel | None

    @classmethod
    def from_domain(cls, value: visibility.Visibility) -> Visibility:
        embargo = value.embargo
        return cls(
            level=value.level,
            cities=list(value.cities),
            networks=list(value.networks),
            embargo_until=embargo.until if embargo else None,
            publish_as=embargo.level if embargo else None,
        )


@strawberry.input(description="Who may see it. Omitted on publishing: PUBLIC.")
class VisibilityInput:
    level: VisibilityLevel
    cities: list[str] | None = strawberry.field(
        default=None, description="SHARED: slugs of member cities."
    )
    networks: list[str] | None = strawberry.field(
        default=None, description="SHARED: networks; their member cities now may see it."
    )
    embargo_until: datetime | None = strawberry.field(
        default=None,
        description="A DRAFT only: when it publishes itself (with publishAs; the cities and "
        "networks are those it will be SHARED with).",
    )
    publish_as: VisibilityLevel | None = None

    def to_domain(self) -> visibility.Visibility:
        embargo = None
        if self.embargo_until is not None or self.publish_as is not None:
            if self.embargo_until is None or self.publish_as is None:
                raise InvalidInput(
                    "embargoUntil", "an embargo names both embargoUntil and publishAs"
                )
            embargo = Embargo(until=self.embargo_until, level=self.publish_as)
        return visibility.Visibility(
            level=self.level,
            cities=tuple(self.cities or ()),
            networks=tuple(self.networks or ()),
            embargo=embargo,
        )


def chosen(value: VisibilityInput | None) -> visibility.Visibility | None:
    return value.to_domain() if value is not None else None


strawberry.enum(
    TeamRole,
    description="LEAD: edits, and manages the team and visibility. CONTRIBUTOR: edits. "
    "OBSERVER: reads (and gets its events).",
)


@strawberry.type(description="A person or an organisation on a problem's or solution's team.")
class TeamMember:
    role: TeamRole
    added_at: datetime
    domain: strawberry.Private[visibility.TeamMember]

    @classmethod
    def from_domain(cls, member: visibility.TeamMember) -> TeamMember:
        return cls(role=member.role, added_at=member.added_at, domain=member)

    @strawberry.field(description="The person, when a person is the member.")
    async def person(
        self, info: Info
    ) -> Annotated[Person, strawberry.lazy("cityexchange.schema.cities")] | None:
        from cityexchange.schema.cities import Person

        if self.domain.kind != "Person":
            return None
        found = await info.context.loaders.person_by_id.load(self.domain.id)
        return Person.from_domain(found) if found else None

    @strawberry.field(description="The organisation, when an organisation is the member.")
    async def organisation(
        self, info: Info
    ) -> Annotated[Organisation, strawberry.lazy("cityexchange.schema.organisations")] | None:
        from cityexchange.schema.organisations import Organisation

        if self.domain.kind != "Organisation":
            return None
        found = await info.context.organisation_loaders.organisation_by_id.load(self.domain.id)
        return Organisation.from_domain(found) if found else None


def team_of(team: Sequence[visibility.TeamMember]) -> list[TeamMember]:
    return [TeamMember.from_domain(m) for m in team]
