"""Use cases for solutions: publish (or adapt another city's), edit, walk the lineage."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from cityexchange.services import limits
from cityexchange.services.clock import now
from cityexchange.services.errors import InvalidInput, NotFound
from cityexchange.services.listing import ListingFilter
from cityexchange.services.models import Adaptation, Event, EventType, Solution, SolutionDetails
from cityexchange.services.pages import ChildPages, Order, Page, PageRequest
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store import events as event_store
from cityexchange.services.store import problems as problem_store
from cityexchange.services.store import solutions as store
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Hazard

_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True, slots=True)
class SolutionDraft:
    title: str
    summary: str
    hazards: Sequence[Hazard]
    problem_ids: Sequence[str] = ()
    adapted_from: str | None = None
    adaptation_notes: str | None = None
    details: SolutionDetails = field(default_factory=SolutionDetails)


@dataclass(frozen=True, slots=True)
class SolutionChanges:
    """Fields to change; None leaves a field as it is."""

    title: str | None = None
    summary: str | None = None
    hazards: Sequence[Hazard] | None = None
    problem_ids: Sequence[str] | None = None
    details: Mapping[str, object] = field(default_factory=dict[str, object])
    """New values of SolutionDetails fields, by field name."""


def checked_details(details: SolutionDetails) -> SolutionDetails:
    """Details within the input limits (services/limits.py); money and dates that make sense."""
    d = details
    if d.cost is not None:
        limits.non_negative(("cost", "amount"), d.cost.amount)
        if not _CURRENCY.match(d.cost.currency):
            raise InvalidInput(("cost", "currency"), "must be an ISO 4217 code such as 'EUR'")
        if not 1900 <= d.cost.year <= 2100:
            raise InvalidInput(("cost", "year"), "must be a year between 1900 and 2100")
    if d.started_on and d.completed_on and d.completed_on < d.started_on:
        raise InvalidInput("completedOn", "must not be before startedOn")
    for index, link in enumerate(limits.items("links", d.links)):
        if not link.url.startswith(("https://", "http://")) or len(link.url) > 2000:
            raise InvalidInput(("links", str(index), "url"), "must be an http(s) URL")
    for index, outcome in enumerate(limits.items("outcomes", d.outcomes)):
        limits.text(
            ("outcomes", str(index), "metric"), outcome.metric, max_length=limits.SHORT_TEXT_MAX
        )
        limits.optional_text(
            ("outcomes", str(index), "note"), outcome.note, max_length=limits.NOTE_MAX
        )
        limits.optional_text(("outcomes", str(index), "unit"), outcome.unit, max_length=50)
    for index, link in enumerate(d.links):
        limits.optional_text(
            ("links", str(index), "title"), link.title, max_length=limits.SHORT_TEXT_MAX
        )
    if d.contact is not None:
        for name in ("name", "email", "url"):
            value = getattr(d.contact, name)
            limits.optional_text(("contact", name), value, max_length=limits.SHORT_TEXT_MAX)
    transfer = d.transferability
    if transfer is not None:
        limits.texts(
            ("transferability", "prerequisites"), transfer.prerequisites, max_length=limits.NOTE_MAX
        )
        limits.optional_text(
            ("transferability", "context"), transfer.context, max_length=limits.NOTE_MAX
        )
        limits.optional_text(
            ("transferability", "doDifferently"),
            transfer.do_differently,
            max_length=limits.NOTE_MAX,
        )
    return replace(
        d,
        body=limits.optional_text("body", d.body, max_length=limits.BODY_MAX),
        funding_sources=limits.texts("fundingSources", d.funding_sources),
        partners=limits.texts("partners", d.partners),
        success_factors=limits.texts(
            "successFactors", d.success_factors, max_length=limits.NOTE_MAX
        ),
        limiting_factors=limits.texts(
            "limitingFactors", d.limiting_factors, max_length=limits.NOTE_MAX
        ),
        sectors=limits.items("sectors", d.sectors),
        tags=limits.tags("tags", d.tags),
    )


def _hazards(values: Sequence[Hazard]) -> tuple[Hazard, ...]:
    hazards = limits.items("hazards", values)
    if not hazards:
        raise InvalidInput("hazards", "name at least one hazard")
    return hazards


async def _existing_problems(db: Database, ids: Sequence[str]) -> tuple[str, ...]:
    wanted = limits.items("problemIds", ids)
    found = await problem_store.problems_by_ids(db, wanted)
    for problem_id, problem in zip(wanted, found, strict=True):
        if problem is None:
            raise NotFound("Problem", problem_id)
    return wanted


def _event(type: EventType, solution: Solution, actor: Principal) -> Event:
    return Event(
        type=type,
        occurred_at=solution.updated_at,
        city=actor.city,
        actor=actor.subject,
        subject_kind="Solution",
        subject_id=solution.id,
        subject_city=solution.city,
        thread_id=solution.id,
        hazards=solution.hazards,
        sectors=solution.details.sectors,
        tags=solution.details.tags,
    )


async def publish(*, db: Database, actor: Principal, draft: SolutionDraft) -> Solution:
    """Publish a solution of the caller's city, optionally adapted from any city's solution."""
    actor.require(Scope.PUBLISH)
    adaptation = None
    if draft.adapted_from is not None:
        (original,) = await store.solutions_by_ids(db, [draft.adapted_from])
        if original is None:
            raise NotFound("Solution", draft.adapted_from)
        adaptation = Adaptation(
            original.id,
            limits.optional_text(
                "adaptationNotes", draft.adaptation_notes, max_length=limits.NOTE_MAX
            ),
        )
    elif draft.adaptation_notes:
        raise InvalidInput("adaptationNotes", "only makes sense with adaptedFrom")
    moment = now()
    solution = Solution(
        id="",
        city=actor.city,
        title=limits.text("title", draft.title, max_length=limits.TITLE_MAX),
        summary=limits.text("summary", draft.summary, max_length=limits.SUMMARY_MAX),
        hazards=_hazards(draft.hazards),
        problem_ids=await _existing_problems(db, draft.problem_ids),
        adapted_from=adaptation,
        details=checked_details(draft.details),
        version=1,
        created_at=moment,
        updated_at=moment,
    )
    kind = EventType.SOLUTION_ADAPTED if adaptation else EventType.SOLUTION_PUBLISHED
    draft_solution = solution
    return await event_store.record(
        db,
        lambda session: store.insert_solution(db, draft_solution, session=session),
        lambda saved: _event(kind, saved, actor),
    )


async def update(
    *, db: Database, actor: Principal, id: str, version: int, changes: SolutionChanges
) -> Solution:
    """Edit a solution; only its city may, and only from the version it last read."""
    actor.require(Scope.PUBLISH)
    current = await store.get_solution(db, id)
    actor.require_own_city(current.city, "solution")
    c = changes
    edited = replace(
        current,
        title=current.title
        if c.title is None
        else limits.text("title", c.title, max_length=limits.TITLE_MAX),
        summary=current.summary
        if c.summary is None
        else limits.text("summary", c.summary, max_length=limits.SUMMARY_MAX),
        hazards=current.hazards if c.hazards is None else _hazards(c.hazards),
        problem_ids=current.problem_ids
        if c.problem_ids is None
        else await _existing_problems(db, c.problem_ids),
        details=checked_details(replace(current.details, **c.details)),
        updated_at=now(),
    )
    return await event_store.record(
        db,
        lambda session: store.save_solution(db, edited, expected_version=version, session=session),
        lambda saved: _event(EventType.SOLUTION_UPDATED, saved, actor),
    )


async def get(*, db: Database, actor: Principal, id: str) -> Solution:
    actor.require(Scope.READ)
    return await store.get_solution(db, id)


async def by_ids(*, db: Database, actor: Principal, ids: Sequence[str]) -> list[Solution | None]:
    actor.require(Scope.READ)
    return await store.solutions_by_ids(db, ids)


async def list_solutions(
    *,
    db: Database,
    actor: Principal,
    listing: ListingFilter,
    order: Order,
    request: PageRequest,
    city: str | None = None,
) -> Page[Solution]:
    actor.require(Scope.READ)
    return await store.list_solutions(
        db, listing=listing.checked(), order=order, request=request, city=city
    )


async def adaptations_of(
    *, db: Database, actor: Principal, solution_ids: Sequence[str], request: PageRequest
) -> ChildPages[Solution]:
    """Adaptations of each of many solutions, batched."""
    actor.require(Scope.READ)
    request.validate()
    return await store.adaptations_of(db, solution_ids, first=request.size, after=request.after)


async def of_cities(
    *,
    db: Database,
    actor: Principal,
    cities: Sequence[str],
    listing: ListingFilter,
    order: Order,
    request: PageRequest,
) -> ChildPages[Solution]:
    """Solutions of each of many cities, batched."""
    actor.require(Scope.READ)
    request.validate()
    return await store.solutions_of_cities(
        db, cities, listing=listing.checked(), order=order, first=request.size, after=request.after
    )
