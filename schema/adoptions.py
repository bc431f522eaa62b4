"""Adoption, outcomes over time, endorsement and lineage: their types and the fields they add
to Solution (attached in schema/solutions.py); the mutations are schema/adoption_mutations.py."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from cityexchange.schema.cities import City, Person, load_city
from cityexchange.schema.context import Info
from cityexchange.schema.relay import Connection, Node, connection, to_global_id
from cityexchange.services import adoptions, models
from cityexchange.services.errors import NotFound
from cityexchange.services.models import AdoptionStage, EndorsementKind

if TYPE_CHECKING:
    from cityexchange.schema.solutions import Solution

strawberry.enum(
    AdoptionStage,
    description="INTERESTED < PLANNING < PILOTING < ADOPTED; going back, ABANDONED and "
    "resuming after it need a note saying why.",
)
strawberry.enum(EndorsementKind, description="VALIDATED: the endorsing city checked it works.")

LazySolution = Annotated["Solution", strawberry.lazy("cityexchange.schema.solutions")]


async def _solution(info: Info, id: str | None) -> Solution | None:
    from cityexchange.schema.solutions import Solution

    if id is None:
        return None
    found = await info.context.loaders.solution_by_id.load(id)
    return Solution.from_domain(found) if found else None


async def _person(info: Info, subject: str) -> Person | None:
    person = await info.context.loaders.person_by_id.load(subject)
    return Person.from_domain(person) if person else None


@strawberry.type(description="One step of an adoption's history.")
class StageChange:
    stage: AdoptionStage
    at: datetime
    note: str | None
    by_subject: strawberry.Private[str]

    @strawberry.field(description="Who recorded it, when a person of the city did.")
    async def by(self, info: Info) -> Person | None:
        return await _person(info, self.by_subject)


@strawberry.type(description="A dated measurement; a solution's or an adoption's series.")
class OutcomeReport:
    metric: str
    value: float
    unit: str | None
    baseline: float | None = strawberry.field(description="The value before the change.")
    target: float | None
    measured_on: date
    note: str | None
    reported_at: datetime
    domain: strawberry.Private[models.OutcomeReport]

    @classmethod
    def from_domain(cls, report: models.OutcomeReport) -> OutcomeReport:
        r = report
        return cls(
            metric=r.metric,
            value=r.value,
            unit=r.unit,
            baseline=r.baseline,
            target=r.target,
            measured_on=r.measured_on,
            note=r.note,
            reported_at=r.reported_at,
            domain=r,
        )

    @strawberry.field(description="The reporting city.")
    async def city(self, info: Info) -> City:
        return await load_city(info, self.domain.city)


async def _series(
    info: Info, subject_id: str, first: int | None, after: str | None
) -> Connection[OutcomeReport]:
    page = await info.context.loaders.outcome_reports_by_subject.load(
        (subject_id, first, after, None)
    )
    return connection(page, OutcomeReport.from_domain)


@strawberry.type(description="A city taking up another city's solution, stage by stage.")
class Adoption(Node):
    stage: AdoptionStage
    stages: list[StageChange] = strawberry.field(description="Its history, oldest first.")
    created_at: datetime
    updated_at: datetime
    domain: strawberry.Private[models.Adoption]

    @classmethod
    def from_domain(cls, adoption: models.Adoption) -> Adoption:
        return cls(
            id=to_global_id("Adoption", adoption.id),
            stage=adoption.stage,
            stages=[
                StageChange(stage=s.stage, at=s.at, note=s.note, by_subject=s.by)
                for s in adoption.stages
            ],
            created_at=adoption.created_at,
            updated_at=adoption.updated_at,
            domain=adoption,
        )

    @strawberry.field(description="The adopting city.")
    async def city(self, info: Info) -> City:
        return await load_city(info, self.domain.city)

    @strawberry.field(description="The solution taken up; null once it is gone.")
    async def solution(self, info: Info) -> LazySolution | None:
        return await _solution(info, self.domain.solution_id)

    @strawberry.field(description="The adopting city's own adapted version, if it linked one.")
    async def adapted_solution(self, info: Info) -> LazySolution | None:
        return await _solution(info, self.domain.adapted_solution_id)

    @strawberry.field(description="The adopting city's outcome reports, oldest first.")
    async def outcome_reports(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[OutcomeReport]:
        return await _series(info, self.domain.id, first, after)


@strawberry.type(description="Another city vouching for a solution; one per city.")
class Endorsement:
    kind: EndorsementKind
    note: str | None
    created_at: datetime
    updated_at: datetime
    domain: strawberry.Private[models.Endorsement]

    @classmethod
    def from_domain(cls, e: models.Endorsement) -> Endorsement:
        return cls(
            kind=e.kind, note=e.note, created_at=e.created_at, updated_at=e.updated_at, domain=e
        )

    @strawberry.field(description="The endorsing city.")
    async def city(self, info: Info) -> City:
        return await load_city(info, self.domain.city)

    @strawberry.field(description="Who endorsed it, when a person of the city did.")
    async def by(self, info: Info) -> Person | None:
        return await _person(info, self.domain.by)

    @strawberry.field
    async def solution(self, info: Info) -> LazySolution | None:
        return await _solution(info, self.domain.solution_id)


@strawberry.type
class AdoptionStageCount:
    stage: AdoptionStage
    count: int


@strawberry.type(description="Who took a solution up and how it went.")
class AdoptionSummary:
    stages: list[AdoptionStageCount] = strawberry.field(description="Cities at each stage now.")
    adoption_count: int = strawberry.field(description="Cities at PILOTING or ADOPTED.")
    improving_cities: int = strawberry.field(
        description="Adopting cities whose latest report of a metric is nearer its target "
        "than its baseline."
    )
    text: str = strawberry.field(
        description="In words, e.g. adopted by 4 cities; 3 report fewer flooded streets."
    )
    slugs: strawberry.Private[tuple[str, ...]]

    @strawberry.field(description="Cities at PILOTING or ADOPTED, first adopters first.")
    async def adopting_cities(self, info: Info) -> list[City]:
        found = await info.context.loaders.city_by_slug.load_many(list(self.slugs))
        return [City.from_domain(city) for city in found if city]


@strawberry.type(description="A solution related by adaptation, and what changed.")
class LineageEntry:
    depth: int = strawberry.field(description="Levels away: 1 is the next one up or down.")
    solution: LazySolution
    adaptation_notes: str | None = strawberry.field(
        description="What changed from the solution it adapts."
    )
    adapted_from_id: strawberry.ID | None = strawberry.field(
        description="The solution it adapts (the tree's edge)."
    )


@strawberry.type
class Lineage:
    ancestors: list[LineageEntry] = strawberry.field(description="Nearest first.")
    descendants: list[LineageEntry] = strawberry.field(
        description="Level by level, newest first within a level; at most 50."
    )
    truncated: bool = strawberry.field(
        description="More descendants than shown: page each solution's `adaptations`."
    )


def _entry(entry: adoptions.LineageEntry) -> LineageEntry:
    from cityexchange.schema.solutions import Solution

    origin = entry.solution.adapted_from
    return LineageEntry(
        depth=entry.depth,
        solution=Solution.from_domain(entry.solution),
        adaptation_notes=origin.notes if origin else None,
        adapted_from_id=to_global_id("Solution", origin.solution_id) if origin else None,
    )


# Solution's fields, attached there with one line each (strawberry.field(resolver=...)).


async def solution_adoptions(
    root: Solution, info: Info, first: int | None = None, after: str | None = None
) -> Connection[Adoption]:
    """Other cities' adoptions of this solution, newest first."""
    page = await info.context.loaders.adoptions_by_solution.load(
        (root.domain.id, first, after, None)
    )
    return connection(page, Adoption.from_domain)


async def solution_outcome_reports(
    root: Solution, info: Info, first: int | None = None, after: str | None = None
) -> Connection[OutcomeReport]:
    """The implementing city's outcome reports, oldest measurement first (adopters' are on
    each adoption)."""
    return await _series(info, root.domain.id, first, after)


async def solution_endorsements(
    root: Solution, info: Info, first: int | None = None, after: str | None = None
) -> Connection[Endorsement]:
    """Other cities' endorsements, newest first."""
    page = await info.context.loaders.endorsements_by_solution.load(
        (root.domain.id, first, after, None)
    )
    return connection(page, Endorsement.from_domain)


async def solution_lineage(root: Solution, info: Info, depth: int = 3) -> Lineage:
    """Where this solution came from and where it went, `depth` levels each way."""
    lineage = await info.context.loaders.lineage_by_solution.load((root.domain.id, depth))
    if lineage is None:
        raise NotFound("Solution", root.domain.id)
    return Lineage(
        ancestors=[_entry(e) for e in lineage.ancestors],
        descendants=[_entry(e) for e in lineage.descendants],
        truncated=lineage.truncated,
    )


async def solution_adoption_summary(root: Solution, info: Info) -> AdoptionSummary:
    """The roll-up: stages, adopting cities, improving outcomes, in numbers and words."""
    s = await info.context.loaders.adoption_summary_by_solution.load(root.domain.id)
    return AdoptionSummary(
        stages=[AdoptionStageCount(stage=stage, count=n) for stage, n in s.stages.items()],
        adoption_count=len(s.adopting_cities),
        improving_cities=s.improving_cities,
        text=s.text,
        slugs=s.adopting_cities,
    )
