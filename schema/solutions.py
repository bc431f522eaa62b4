"""Solution type with cost, outcomes, lessons and lineage; publish, adapt and edit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from cityexchange.schema import adoptions as take_up
from cityexchange.schema import suggestions
from cityexchange.schema.cities import City, Contact, attach_cities, load_city
from cityexchange.schema.context import Info
from cityexchange.schema.languages import Language
from cityexchange.schema.related import Attached, Resolved, attach_pages, fields_of, gather_quietly
from cityexchange.schema.relay import Connection, Node, connection, to_global_id
from cityexchange.schema.taxonomy import Hazard, Sector, SolutionStatus
from cityexchange.schema.visibility import TeamMember, Visibility, team_of
from cityexchange.services import case_studies, models
from cityexchange.services.listing import ListingFilter
from cityexchange.services.taxonomy import IncomeGroup

if TYPE_CHECKING:
    from strawberry.types.nodes import Selection

    from cityexchange.schema.comments import Comment
    from cityexchange.schema.organisations import Organisation
    from cityexchange.schema.problems import Problem


@strawberry.input(
    description="An amount range in `currency` (ISO 4217, default EUR), compared with the "
    "EUR figures at the rate table's latest rate."
)
class MoneyRange:
    min: float | None = None
    max: float | None = None
    currency: str = "EUR"


@strawberry.input(
    description="Attributes of the implementing city; values within a field are alternatives."
)
class ImplementingCityFilter:
    climate_zones: list[str] | None = strawberry.field(
        default=None, description="Köppen codes or their heads: 'A' is every tropical zone."
    )
    population_min: int | None = None
    population_max: int | None = None
    regions: list[str] | None = None
    coastal: bool | None = None
    networks: list[str] | None = None
    languages: list[str] | None = strawberry.field(
        default=None, description="ISO 639 codes, e.g. 'nl'."
    )
    income_groups: list[IncomeGroup] | None = None


@strawberry.input(description="Values within a field are alternatives; fields combine (AND).")
class SolutionFilter:
    cities: list[str] | None = None
    hazards: list[Hazard] | None = None
    sectors: list[Sector] | None = None
    tags: list[str] | None = None
    status: list[SolutionStatus] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    search: str | None = strawberry.field(
        default=None, description="Words to find in title, summary and tags (prefix match)."
    )
    cost: MoneyRange | None = strawberry.field(
        default=None, description="Total cost; solutions without a EUR figure never match."
    )
    cost_per_resident: MoneyRange | None = strawberry.field(
        default=None, description="Cost per resident served (or affected), see costPerResidentEur."
    )
    evidence_level_min: int | None = strawberry.field(
        default=None, description="At least this level of Nesta's Standards of Evidence (1-5)."
    )
    has_outcomes: bool | None = strawberry.field(
        default=None, description="Stated outcomes, or outcomes reported since."
    )
    adoption_count_min: int | None = strawberry.field(
        default=None, description="At least this many cities piloting or adopting it."
    )
    city: ImplementingCityFilter | None = None


def listing_of(filter: SolutionFilter | None) -> ListingFilter:
    if filter is None:
        return ListingFilter()
    return ListingFilter(
        cities=tuple(filter.cities or ()),
        hazards=tuple(filter.hazards or ()),
        sectors=tuple(filter.sectors or ()),
        tags=tuple(filter.tags or ()),
        statuses=tuple(s.value for s in filter.status or ()),
        created_after=filter.created_after,
        created_before=filter.created_before,
        updated_after=filter.updated_after,
        updated_before=filter.updated_before,
        search=filter.search,
    )


def criteria_of(filter: SolutionFilter | None) -> case_studies.SolutionCriteria:
    if filter is None:
        return case_studies.SolutionCriteria()
    city = filter.city
    return case_studies.SolutionCriteria(
        cost=_money_range(filter.cost),
        cost_per_resident=_money_range(filter.cost_per_resident),
        evidence_level_min=filter.evidence_level_min,
        has_outcomes=filter.has_outcomes,
        adoption_count_min=filter.adoption_count_min,
        city=case_studies.CityCriteria(
            climate_zones=tuple(city.climate_zones or ()),
            population_min=city.population_min,
            population_max=city.population_max,
            regions=tuple(city.regions or ()),
            coastal=city.coastal,
            networks=tuple(city.networks or ()),
            languages=tuple(city.languages or ()),
            income_groups=tuple(city.income_groups or ()),
        )
        if city
        else None,
    )


def _money_range(given: MoneyRange | None) -> case_studies.MoneyRange | None:
    return case_studies.MoneyRange(given.min, given.max, given.currency) if given else None


@strawberry.type(description="What it cost, in the currency and year it was spent.")
class Cost:
    amount: float
    currency: str = strawberry.field(description="ISO 4217 code.")
    year: int
    eur: float | None = strawberry.field(
        description="In euros at the average ECB rate of `year` (no inflation adjustment); "
        "null when there are no rates for `currency`."
    )


@strawberry.type
class Outcome:
    metric: str
    value: float
    unit: str | None
    note: str | None


@strawberry.type(description="What another city needs to know before adapting this.")
class Transferability:
    prerequisites: list[str]
    context: str | None
    do_differently: str | None = strawberry.field(description="What we would do differently.")


@strawberry.type
class Link:
    url: str
    title: str | None


@strawberry.type(description="How strongly the outcomes are shown: Nesta's Standards of Evidence.")
class Evidence:
    level: int = strawberry.field(
        description="1 described, 2 change measured, 3 caused (compared with a control), "
        "4 confirmed independently, 5 replicable at scale."
    )
    links: list[Link]


@strawberry.type(description="What a city did about one or more problems.")
class Solution(Node):
    title: str
    summary: str
    body: str | None = strawberry.field(description="Markdown.")
    status: SolutionStatus
    hazards: list[Hazard]
    sectors: list[Sector]
    tags: list[str]
    started_on: date | None
    completed_on: date | None
    cost: Cost | None
    funding_sources: list[str]
    partners: list[str]
    outcomes: list[Outcome]
    success_factors: list[str]
    limiting_factors: list[str]
    transferability: Transferability | None
    contact: Contact | None
    links: list[Link]
    evidence: Evidence | None
    residents_served: int | None = strawberry.field(description="Residents it serves, as stated.")
    cost_per_resident_eur: float | None = strawberry.field(
        description="cost.eur over residentsServed, else over the largest affected population "
        "of its problems; computed when the solution is written."
    )
    adaptation_notes: str | None = strawberry.field(
        description="What changed from the original, and why."
    )
    language: Language = strawberry.field(description="Given when published, or detected.")
    visibility: Visibility
    team: list[TeamMember] = strawberry.field(
        description="Who works on it, with their roles (its lead, contributors, observers)."
    )
    version: int
    created_at: datetime
    updated_at: datetime
    domain: strawberry.Private[models.Solution]
    attached: strawberry.Private[Attached] = field(default_factory=Attached)

    @classmethod
    def from_domain(cls, solution: models.Solution) -> Solution:
        d = solution.details
        t = d.transferability
        return cls(
            id=to_global_id("Solution", solution.id),
            title=solution.title,
            summary=solution.summary,
            body=d.body,
            status=d.status,
            hazards=list(solution.hazards),
            sectors=list(d.sectors),
            tags=list(d.tags),
            started_on=d.started_on,
            completed_on=d.completed_on,
            cost=Cost(
                amount=d.cost.amount, currency=d.cost.currency, year=d.cost.year, eur=d.cost.eur
            )
            if d.cost
            else None,
            funding_sources=list(d.funding_sources),
            partners=list(d.partners),
            outcomes=[
                Outcome(metric=o.metric, value=o.value, unit=o.unit, note=o.note)
                for o in d.outcomes
            ],
            success_factors=list(d.success_factors),
            limiting_factors=list(d.limiting_factors),
            transferability=Transferability(
                prerequisites=list(t.prerequisites),
                context=t.context,
                do_differently=t.do_differently,
            )
            if t
            else None,
            contact=Contact.from_domain(d.contact),
            links=[Link(url=x.url, title=x.title) for x in d.links],
            evidence=Evidence(
                level=d.evidence.level,
                links=[Link(url=x.url, title=x.title) for x in d.evidence.links],
            )
            if d.evidence
            else None,
            residents_served=d.residents_served,
            cost_per_resident_eur=solution.cost_per_resident_eur,
            adaptation_notes=solution.adapted_from.notes if solution.adapted_from else None,
            language=solution.language,
            visibility=Visibility.from_domain(solution.visibility),
            team=team_of(solution.team),
            version=solution.version,
            created_at=solution.created_at,
            updated_at=solution.updated_at,
            domain=solution,
        )

    @strawberry.field(graphql_type=City)
    def city(self, info: Info) -> Resolved[City]:
        return self.attached.get("city") or load_city(info, self.domain.city)

    similar_solutions: suggestions.SolutionSuggestionConnection = suggestions.SIMILAR_SOLUTIONS

    @classmethod
    async def attach_related(
        cls, info: Info, items: Sequence[Solution], selections: Sequence[Selection]
    ) -> None:
        """What `selections` ask of these solutions, loaded for all of them at once."""
        from cityexchange.schema.comments import Comment

        loaders = info.context.loaders
        wanted = fields_of(selections, _SOLUTION)
        await gather_quietly(
            [
                *attach_cities(info, items, lambda s: s.domain.city, wanted),
                *attach_pages(
                    info,
                    items,
                    wanted.get("adaptations", []),
                    parent_of=lambda s: s.domain.id,
                    load=loaders.adaptations_by_solution.load_many,
                    build=lambda page: connection(page, Solution.from_domain, attached=True),
                ),
                *attach_pages(
                    info,
                    items,
                    wanted.get("comments", []),
                    parent_of=lambda s: s.domain.id,
                    load=loaders.comments_by_subject.load_many,
                    build=lambda page: connection(page, Comment.from_domain, attached=True),
                ),
            ]
        )

    @strawberry.field(description="The problems (of any city) this solution addresses.")
    async def problems(
        self, info: Info
    ) -> list[Annotated[Problem, strawberry.lazy("cityexchange.schema.problems")]]:
        from cityexchange.schema.problems import Problem

        found = await info.context.loaders.problem_by_id.load_many(self.domain.problem_ids)
        return [Problem.from_domain(p) for p in found if p is not None]

    @strawberry.field(
        description="The organisations in the exchange that took part (`partners`: the others)."
    )
    async def partner_organisations(
        self, info: Info
    ) -> list[Annotated[Organisation, strawberry.lazy("cityexchange.schema.organisations")]]:
        from cityexchange.schema.organisations import organisations_of

        return await organisations_of(info, self.domain.details.partner_ids)

    @strawberry.field(description="The solution this one was adapted from.")
    async def adapted_from(self, info: Info) -> Solution | None:
        origin = self.domain.adapted_from
        if origin is None:
            return None
        original = await info.context.loaders.solution_by_id.load(origin.solution_id)
        return Solution.from_domain(original) if original else None

    @strawberry.field(
        description="Solutions other cities adapted from this one, newest first.",
        graphql_type=Connection["Solution"],
    )
    def adaptations(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Resolved[Connection[Solution]]:
        return self.attached.get(("adaptations", first, after)) or self._adaptations(
            info, first, after
        )

    async def _adaptations(
        self, info: Info, first: int | None, after: str | None
    ) -> Connection[Solution]:
        page = await info.context.loaders.adaptations_by_solution.load(
            (self.domain.id, first, after, None)
        )
        return connection(page, Solution.from_domain)

    @strawberry.field(
        description="Top-level comments, oldest first.",
        graphql_type=Connection[
            Annotated["Comment", strawberry.lazy("cityexchange.schema.comments")]
        ],
    )
    def comments(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Resolved[Connection[Comment]]:
        return self.attached.get(("comments", first, after)) or self._comments(info, first, after)

    async def _comments(
        self, info: Info, first: int | None, after: str | None
    ) -> Connection[Comment]:
        from cityexchange.schema.comments import Comment

        page = await info.context.loaders.comments_by_subject.load(
            (self.domain.id, first, after, None)
        )
        return connection(page, Comment.from_domain)

    # Take-up by other cities (schema/adoptions.py has the resolvers).
    adoptions: Connection[take_up.Adoption] = strawberry.field(
        resolver=take_up.solution_adoptions, description="Other cities' adoptions, newest first."
    )
    outcome_reports: Connection[take_up.OutcomeReport] = strawberry.field(
        resolver=take_up.solution_outcome_reports,
        description="Its city's dated outcome reports, oldest first (adopters' are on each "
        "Adoption).",
    )
    endorsements: Connection[take_up.Endorsement] = strawberry.field(
        resolver=take_up.solution_endorsements, description="Other cities' endorsements."
    )
    lineage: take_up.Lineage = strawberry.field(
        resolver=take_up.solution_lineage,
        description="Ancestors and descendants by adaptation, `depth` (1 to 10) levels each "
        "way, with what changed; at most 50 descendants, breadth first.",
    )
    adoption_summary: take_up.AdoptionSummary = strawberry.field(
        resolver=take_up.solution_adoption_summary,
        description="The roll-up: stages, adopting cities, improving outcomes, and a text "
        '("adopted by 4 cities; 3 report fewer flooded streets").',
    )


_SOLUTION = frozenset({"Solution", "Node", "CommentSubject"})
