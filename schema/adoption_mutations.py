"""Mutations of take-up: adopt another city's solution, report outcomes, endorse."""

from __future__ import annotations

from datetime import date

import strawberry

from cityexchange.schema.adoptions import Adoption, Endorsement, OutcomeReport
from cityexchange.schema.context import Info
from cityexchange.schema.errors import UserError, attempt
from cityexchange.schema.relay import expect_global_id
from cityexchange.schema.retries import RETRY_KEY, RETRY_KEY_ECHO, Retry, created
from cityexchange.services import adoptions, endorsements, models, outcomes
from cityexchange.services.errors import NotFound
from cityexchange.services.models import AdoptionStage, EndorsementKind


@strawberry.input
class AdoptSolutionInput:
    solution_id: strawberry.ID = strawberry.field(description="Another city's solution.")
    stage: AdoptionStage
    note: str | None = strawberry.field(
        default=None, description="Why: needed to go back, to abandon, and to resume."
    )
    adapted_solution_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Your city's own version, adapted from this solution or one of its "
        "adaptations; null leaves the link as it is.",
    )
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.input
class ReportOutcomeInput:
    subject_id: strawberry.ID = strawberry.field(
        description="Your city's Solution, or your city's Adoption of another's."
    )
    metric: str
    value: float
    measured_on: date = strawberry.field(description="Not later than tomorrow (UTC).")
    unit: str | None = None
    baseline: float | None = None
    target: float | None = None
    note: str | None = None
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.input
class EndorseSolutionInput:
    solution_id: strawberry.ID = strawberry.field(description="Another city's solution.")
    kind: EndorsementKind
    note: str | None = None
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type
class AdoptSolutionPayload:
    adoption: Adoption | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


@strawberry.type
class ReportOutcomePayload:
    outcome_report: OutcomeReport | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


@strawberry.type
class EndorseSolutionPayload:
    endorsement: Endorsement | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


def _solution_id(global_id: str, field: str) -> str:
    return expect_global_id(global_id, ("Solution",), field=field)[1]


async def _reload_adoption(info: Info, id: str) -> models.Adoption:
    """The adoption as it is now: what a retry with the same clientMutationId returns."""
    ctx = info.context
    (found,) = await adoptions.by_ids(db=ctx.db, actor=ctx.actor(), ids=[id])
    if found is None:
        raise NotFound("Adoption", id)
    return found


async def _reload_report(info: Info, id: str) -> models.OutcomeReport:
    ctx = info.context
    (found,) = await outcomes.by_ids(db=ctx.db, actor=ctx.actor(), ids=[id])
    if found is None:
        raise NotFound("OutcomeReport", id)
    return found


async def _reload_endorsement(info: Info, id: str) -> models.Endorsement:
    ctx = info.context
    (found,) = await endorsements.by_ids(db=ctx.db, actor=ctx.actor(), ids=[id])
    if found is None:
        raise NotFound("Endorsement", id)
    return found


async def _adopt(info: Info, input: AdoptSolutionInput) -> models.Adoption:
    ctx = info.context
    adapted = input.adapted_solution_id
    return await adoptions.adopt(
        db=ctx.db,
        actor=ctx.actor(),
        solution_id=_solution_id(input.solution_id, "solutionId"),
        stage=input.stage,
        note=input.note,
        adapted_solution_id=_solution_id(adapted, "adaptedSolutionId") if adapted else None,
    )


async def _report(info: Info, input: ReportOutcomeInput) -> models.OutcomeReport:
    ctx = info.context
    kind, id = expect_global_id(input.subject_id, ("Solution", "Adoption"), field="subjectId")
    draft = outcomes.OutcomeDraft(
        metric=input.metric,
        value=input.value,
        measured_on=input.measured_on,
        unit=input.unit,
        baseline=input.baseline,
        target=input.target,
        note=input.note,
    )
    return await outcomes.report(
        db=ctx.db, actor=ctx.actor(), subject_kind=kind, subject_id=id, draft=draft
    )


async def _endorse(info: Info, input: EndorseSolutionInput) -> models.Endorsement:
    ctx = info.context
    return await endorsements.endorse(
        db=ctx.db,
        actor=ctx.actor(),
        solution_id=_solution_id(input.solution_id, "solutionId"),
        kind=input.kind,
        note=input.note,
    )


@strawberry.type
class AdoptionMutations:
    @strawberry.mutation(
        description="Record how far your city got with another city's solution "
        "(one adoption per city and solution, with its history). Scope: publish."
    )
    async def adopt_solution(self, info: Info, input: AdoptSolutionInput) -> AdoptSolutionPayload:
        adoption, errors = await attempt(
            lambda: _adopt(info, input),
            Retry(info, input, reload=created(lambda id: _reload_adoption(info, id))),
        )
        return AdoptSolutionPayload(
            adoption=Adoption.from_domain(adoption) if adoption else None,
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )

    @strawberry.mutation(
        description="Add a dated measurement to your solution's series or your adoption's "
        "(at most 500 each). Scope: publish."
    )
    async def report_outcome(self, info: Info, input: ReportOutcomeInput) -> ReportOutcomePayload:
        report, errors = await attempt(
            lambda: _report(info, input),
            Retry(info, input, reload=created(lambda id: _reload_report(info, id))),
        )
        return ReportOutcomePayload(
            outcome_report=OutcomeReport.from_domain(report) if report else None,
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )

    @strawberry.mutation(
        description="Endorse another city's solution; endorsing again revises your city's "
        "endorsement (one per city). Scope: publish."
    )
    async def endorse_solution(
        self, info: Info, input: EndorseSolutionInput
    ) -> EndorseSolutionPayload:
        endorsement, errors = await attempt(
            lambda: _endorse(info, input),
            Retry(info, input, reload=created(lambda id: _reload_endorsement(info, id))),
        )
        return EndorseSolutionPayload(
            endorsement=Endorsement.from_domain(endorsement) if endorsement else None,
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )
