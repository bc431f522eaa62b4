"""Use cases for solutions: publish (or adapt another city's), edit, walk the lineage."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cityexchange.services import (
    audiences,
    case_studies,
    limits,
    money,
    organisations,
    ranking,
    search,
    teams,
)
from cityexchange.services.case_studies import CheckedCriteria, SolutionCriteria
from cityexchange.services.clock import now
from cityexchange.services.errors import InvalidInput, NotFound
from cityexchange.services.listing import ListingFilter
from cityexchange.services.models import Adaptation, Event, EventType, Solution, SolutionDetails
from cityexchange.services.pages import ChildPages, Page, PageRequest, SolutionOrder
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.problems import lead_of
from cityexchange.services.store import cities as city_store
from cityexchange.services.store import events as event_store
from cityexchange.services.store import problems as problem_store
from cityexchange.services.store import search_index
from cityexchange.services.store import solutions as store
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Hazard
from cityexchange.services.text import Language
from cityexchange.services.visibility import PUBLIC, Viewer, Visibility

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
    language: Language | None = None  # None: detected from the text
    external_id: str | None = None  # a library's id (services/library_import.py)
    visibility: Visibility | None = None  # None: PUBLIC


@dataclass(frozen=True, slots=True)
class SolutionChanges:
    """Fields to change; None leaves a field as it is."""

    title: str | None = None
    summary: str | None = None
    hazards: Sequence[Hazard] | None = None
    problem_ids: Sequence[str] | None = None
    details: Mapping[str, object] = field(default_factory=dict[str, object])
    """New values of SolutionDetails fields, by field name."""
    language: Language | None = None


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
        cost=case_studies.priced(d.cost),
        evidence=case_studies.checked_evidence(d.evidence),
        residents_served=case_studies.checked_residents(d.residents_served),
    )


async def _with_cost_per_resident(db: Database, solution: Solution, viewer: Viewer) -> Solution:
    """`solution` with its EUR cost per resident: over the residents it serves, else over the
    largest affected population of its problems (as they are now)."""
    d = solution.details
    residents = d.residents_served
    if d.cost and d.cost.eur is not None and residents is None and solution.problem_ids:
        problems = await problem_store.problems_by_ids(db, solution.problem_ids, viewer=viewer)
        populations = [p.affected_population for p in problems if p and p.affected_population]
        residents = max(populations, default=None)
    figure = case_studies.per_resident(d.cost.eur if d.cost else None, residents)
    return replace(solution, cost_per_resident_eur=figure)


async def _with_partners(db: Database, details: SolutionDetails) -> SolutionDetails:
    """`details` whose partner organisations exist (NotFound for the first that does not)."""
    partners = await organisations.existing(db, "partnerIds", details.partner_ids)
    return replace(details, partner_ids=partners)


def _hazards(values: Sequence[Hazard]) -> tuple[Hazard, ...]:
    hazards = limits.items("hazards", values)
    if not hazards:
        raise InvalidInput("hazards", "name at least one hazard")
    return hazards


async def _existing_problems(db: Database, ids: Sequence[str], viewer: Viewer) -> tuple[str, ...]:
    wanted = limits.items("problemIds", ids)
    found = await problem_store.problems_by_ids(db, wanted, viewer=viewer)
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
        audience=solution.audience,
    )


async def publish(*, db: Database, actor: Principal, draft: SolutionDraft) -> Solution:
    """Publish a solution of the caller's city, optionally adapted from any city's solution."""
    actor.require(Scope.PUBLISH)
    viewer = Viewer.of(actor)
    adaptation = None
    if draft.adapted_from is not None:
        (original,) = await store.solutions_by_ids(db, [draft.adapted_from], viewer=viewer)
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
    visibility = audiences.checked(draft.visibility or PUBLIC, now=moment)
    team = (lead_of(actor, moment),)
    audience = await audiences.resolve(db, owner=actor.city, visibility=visibility, team=team)
    await money.loaded()
    solution = Solution(
        id="",
        city=actor.city,
        title=limits.text("title", draft.title, max_length=limits.TITLE_MAX),
        summary=limits.text("summary", draft.summary, max_length=limits.SUMMARY_MAX),
        hazards=_hazards(draft.hazards),
        problem_ids=await _existing_problems(db, draft.problem_ids, viewer),
        adapted_from=adaptation,
        details=await _with_partners(db, checked_details(draft.details)),
        version=1,
        created_at=moment,
        updated_at=moment,
        visibility=visibility,
        team=team,
        audience=audience,
    )
    solution = await _with_cost_per_resident(db, solution, viewer)
    language = await search.language_of(
        draft.language, solution.title, solution.summary, solution.details.body
    )
    draft_solution = replace(solution, language=language, external_id=draft.external_id)
    analysis = ranking.analyse(ranking.search_document_of_solution(draft_solution))
    kind = EventType.SOLUTION_ADAPTED if adaptation else EventType.SOLUTION_PUBLISHED

    async def write(session: Any) -> Solution:
        saved = await store.insert_solution(db, draft_solution, session=session)
        await search_index.index_new(db, analysis.for_id(saved.id), session=session)
        return saved

    return await event_store.record(db, write, lambda saved: _event(kind, saved, actor))


async def update(
    *, db: Database, actor: Principal, id: str, version: int, changes: SolutionChanges
) -> Solution:
    """Edit a solution; only its city or its team may (services/teams.py), and only from the
    version it last read."""
    actor.require(Scope.PUBLISH)
    viewer = Viewer.of(actor)
    current = await store.get_solution(db, id, viewer=viewer)
    teams.require_editor(actor, city=current.city, team=current.team, what="solution")
    c = changes
    await money.loaded()
    details = checked_details(replace(current.details, **c.details))
    if "partner_ids" in c.details:
        details = await _with_partners(db, details)
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
        else await _existing_problems(db, c.problem_ids, viewer),
        details=details,
        updated_at=now(),
    )
    edited = await _with_cost_per_resident(db, edited, viewer)
    edited = replace(edited, language=c.language or current.language)
    analysis = ranking.analyse(ranking.search_document_of_solution(edited))

    async def write(session: Any) -> Solution:
        saved = await store.save_solution(db, edited, expected_version=version, session=session)
        await search_index.index(db, analysis, session=session)
        return saved

    return await event_store.record(
        db, write, lambda saved: _event(EventType.SOLUTION_UPDATED, saved, actor)
    )


async def get(*, db: Database, actor: Principal, id: str) -> Solution:
    actor.require(Scope.READ)
    return await store.get_solution(db, id, viewer=Viewer.of(actor))


async def by_ids(*, db: Database, actor: Principal, ids: Sequence[str]) -> list[Solution | None]:
    actor.require(Scope.READ)
    return await store.solutions_by_ids(db, ids, viewer=Viewer.of(actor))


async def list_solutions(
    *,
    db: Database,
    actor: Principal,
    listing: ListingFilter,
    order: SolutionOrder,
    request: PageRequest,
    city: str | None = None,
    criteria: SolutionCriteria | None = None,
) -> Page[Solution]:
    actor.require(Scope.READ)
    checked = listing.checked()
    compared, matching = await _resolved(db, criteria)
    return await store.list_solutions(
        db,
        listing=checked,
        order=order,
        request=request,
        viewer=Viewer.of(actor),
        city=city,
        criteria=compared,
        cities=matching,
    )


async def _resolved(
    db: Database, criteria: SolutionCriteria | None
) -> tuple[CheckedCriteria | None, list[str] | None]:
    """The criteria with bounds in euros, and the slugs the implementing-city filter matches
    (None when it asks nothing): one more round trip, only when it is given."""
    if criteria is None:
        return None, None
    if criteria.cost or criteria.cost_per_resident:
        await money.loaded()
    checked = criteria.checked()
    if checked.city is None:
        return checked, None
    return checked, await city_store.slugs_of_cities_matching(db, checked.city)


async def adaptations_of(
    *, db: Database, actor: Principal, solution_ids: Sequence[str], request: PageRequest
) -> ChildPages[Solution]:
    """Adaptations of each of many solutions, batched."""
    actor.require(Scope.READ)
    request.validate()
    return await store.adaptations_of(
        db, solution_ids, first=request.size, after=request.after, viewer=Viewer.of(actor)
    )


async def of_organisations(
    *, db: Database, actor: Principal, organisation_ids: Sequence[str], request: PageRequest
) -> ChildPages[Solution]:
    """Solutions naming each of many organisations a partner, batched."""
    actor.require(Scope.READ)
    request.validate()
    return await store.solutions_of_organisations(
        db, organisation_ids, first=request.size, after=request.after, viewer=Viewer.of(actor)
    )


async def of_cities(
    *,
    db: Database,
    actor: Principal,
    cities: Sequence[str],
    listing: ListingFilter,
    order: SolutionOrder,
    request: PageRequest,
    criteria: SolutionCriteria | None = None,
) -> ChildPages[Solution]:
    """Solutions of each of many cities, batched."""
    actor.require(Scope.READ)
    request.validate()
    checked = listing.checked()
    compared, matching = await _resolved(db, criteria)
    return await store.solutions_of_cities(
        db,
        cities,
        listing=checked,
        order=order,
        first=request.size,
        after=request.after,
        viewer=Viewer.of(actor),
        criteria=compared,
        matching=matching,
    )
