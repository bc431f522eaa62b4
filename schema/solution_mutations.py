"""Solution mutations: publish (or adapt another city's solution) and edit."""

from __future__ import annotations

from datetime import date
from typing import Any

import strawberry

from cityexchange.schema.context import Info
from cityexchange.schema.errors import UserError, attempt
from cityexchange.schema.languages import Language
from cityexchange.schema.organisations import organisation_ids
from cityexchange.schema.relay import expect_global_id
from cityexchange.schema.retries import RETRY_KEY, RETRY_KEY_ECHO, Retry, created
from cityexchange.schema.solutions import Solution
from cityexchange.schema.taxonomy import Hazard, Sector, SolutionStatus
from cityexchange.schema.visibility import VisibilityInput, chosen
from cityexchange.services import models, solutions


@strawberry.input
class CostInput:
    amount: float
    currency: str
    year: int


@strawberry.input
class OutcomeInput:
    metric: str
    value: float
    unit: str | None = None
    note: str | None = None


@strawberry.input
class TransferabilityInput:
    prerequisites: list[str] | None = None
    context: str | None = None
    do_differently: str | None = None


@strawberry.input
class ContactInput:
    name: str | None = None
    email: str | None = None
    url: str | None = None


@strawberry.input
class LinkInput:
    url: str
    title: str | None = None


@strawberry.input(description="Nesta's Standards of Evidence: a level from 1 to 5, and sources.")
class EvidenceInput:
    level: int
    links: list[LinkInput] | None = None


@strawberry.input
class PublishSolutionInput:
    title: str
    summary: str
    hazards: list[Hazard]
    body: str | None = None
    problem_ids: list[strawberry.ID] | None = None
    adapted_from: strawberry.ID | None = strawberry.field(
        default=None, description="The solution (any city's) this one adapts."
    )
    adaptation_notes: str | None = None
    sectors: list[Sector] | None = None
    tags: list[str] | None = None
    status: SolutionStatus | None = None
    started_on: date | None = None
    completed_on: date | None = None
    cost: CostInput | None = None
    funding_sources: list[str] | None = None
    partners: list[str] | None = None
    partner_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Organisations in the exchange that took part."
    )
    outcomes: list[OutcomeInput] | None = None
    success_factors: list[str] | None = None
    limiting_factors: list[str] | None = None
    transferability: TransferabilityInput | None = None
    contact: ContactInput | None = None
    links: list[LinkInput] | None = None
    evidence: EvidenceInput | None = None
    residents_served: int | None = None
    language: Language | None = strawberry.field(
        default=None, description="The text's language; detected when not given."
    )
    visibility: VisibilityInput | None = None
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.input
class UpdateSolutionInput:
    id: strawberry.ID
    version: int = strawberry.field(description="The version you last read.")
    title: str | None = None
    summary: str | None = None
    hazards: list[Hazard] | None = None
    body: str | None = None
    problem_ids: list[strawberry.ID] | None = None
    sectors: list[Sector] | None = None
    tags: list[str] | None = None
    status: SolutionStatus | None = None
    started_on: date | None = None
    completed_on: date | None = None
    cost: CostInput | None = None
    funding_sources: list[str] | None = None
    partners: list[str] | None = None
    partner_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Organisations in the exchange that took part."
    )
    outcomes: list[OutcomeInput] | None = None
    success_factors: list[str] | None = None
    limiting_factors: list[str] | None = None
    transferability: TransferabilityInput | None = None
    contact: ContactInput | None = None
    links: list[LinkInput] | None = None
    evidence: EvidenceInput | None = None
    residents_served: int | None = None
    language: Language | None = strawberry.field(
        default=None, description="The text's language; detected when not given."
    )
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type
class PublishSolutionPayload:
    solution: Solution | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


@strawberry.type
class UpdateSolutionPayload:
    solution: Solution | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


def _details(input: PublishSolutionInput | UpdateSolutionInput) -> dict[str, Any]:
    """SolutionDetails fields the input sets (None leaves a field alone)."""
    given: dict[str, Any] = {
        "body": input.body,
        "status": input.status,
        "started_on": input.started_on,
        "completed_on": input.completed_on,
        "cost": models.Cost(input.cost.amount, input.cost.currency.upper(), input.cost.year)
        if input.cost
        else None,
        "funding_sources": _tuple(input.funding_sources),
        "partners": _tuple(input.partners),
        "partner_ids": _tuple(organisation_ids(input.partner_ids, "partnerIds")),
        "outcomes": tuple(models.Outcome(o.metric, o.value, o.unit, o.note) for o in input.outcomes)
        if input.outcomes is not None
        else None,
        "success_factors": _tuple(input.success_factors),
        "limiting_factors": _tuple(input.limiting_factors),
        "transferability": models.Transferability(
            tuple(input.transferability.prerequisites or ()),
            input.transferability.context,
            input.transferability.do_differently,
        )
        if input.transferability
        else None,
        "contact": models.Contact(input.contact.name, input.contact.email, input.contact.url)
        if input.contact
        else None,
        "links": tuple(models.Link(x.url, x.title) for x in input.links)
        if input.links is not None
        else None,
        "sectors": _tuple(input.sectors),
        "tags": _tuple(input.tags),
        "evidence": models.Evidence(
            input.evidence.level,
            tuple(models.Link(x.url, x.title) for x in input.evidence.links or ()),
        )
        if input.evidence
        else None,
        "residents_served": input.residents_served,
    }
    return {name: value for name, value in given.items() if value is not None}


def _tuple(values: list[Any] | None) -> tuple[Any, ...] | None:
    return tuple(values) if values is not None else None


def _ids(values: list[strawberry.ID] | None, kind: str, field: str) -> list[str] | None:
    if values is None:
        return None
    return [expect_global_id(v, (kind,), field=field)[1] for v in values]


async def _reload(info: Info, id: str) -> models.Solution:
    """The solution as it is now: what a retry with the same clientMutationId returns."""
    return await solutions.get(db=info.context.db, actor=info.context.actor(), id=id)


def _maybe(solution: models.Solution | None) -> Solution | None:
    return Solution.from_domain(solution) if solution else None


def _draft(input: PublishSolutionInput) -> solutions.SolutionDraft:
    origin = input.adapted_from
    return solutions.SolutionDraft(
        title=input.title,
        summary=input.summary,
        hazards=input.hazards,
        problem_ids=_ids(input.problem_ids, "Problem", "problemIds") or [],
        adapted_from=expect_global_id(origin, ("Solution",), field="adaptedFrom")[1]
        if origin
        else None,
        adaptation_notes=input.adaptation_notes,
        details=models.SolutionDetails(**_details(input)),
        language=input.language,
        visibility=chosen(input.visibility),
    )


@strawberry.type
class SolutionMutations:
    @strawberry.mutation(
        description="Publish your city's solution, or adapt another's (adaptedFrom). "
        "Scope: publish."
    )
    async def publish_solution(
        self, info: Info, input: PublishSolutionInput
    ) -> PublishSolutionPayload:
        ctx = info.context
        solution, errors = await attempt(
            lambda: solutions.publish(db=ctx.db, actor=ctx.actor(), draft=_draft(input)),
            Retry(info, input, reload=created(lambda id: _reload(info, id))),
        )
        return PublishSolutionPayload(
            solution=_maybe(solution),
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )

    @strawberry.mutation(description="Edit one of your city's solutions.")
    async def update_solution(
        self, info: Info, input: UpdateSolutionInput
    ) -> UpdateSolutionPayload:
        ctx = info.context
        solution, errors = await attempt(
            lambda: solutions.update(
                db=ctx.db,
                actor=ctx.actor(),
                id=expect_global_id(input.id, ("Solution",), field="id")[1],
                version=input.version,
                changes=solutions.SolutionChanges(
                    title=input.title,
                    summary=input.summary,
                    hazards=input.hazards,
                    problem_ids=_ids(input.problem_ids, "Problem", "problemIds"),
                    details=_details(input),
                    language=input.language,
                ),
            ),
            Retry(
                info,
                input,
                reload=lambda _: _reload(
                    info, expect_global_id(input.id, ("Solution",), field="id")[1]
                ),
            ),
        )
        return UpdateSolutionPayload(
            solution=_maybe(solution),
            user_errors=errors,
            client_mutation_id=input.client_mutation_id,
        )
