"""Use cases for problems: publish, edit, close, mark answered, "we face this too"."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from cityexchange.services import audiences, limits, organisations, ranking, search, teams
from cityexchange.services.clock import now
from cityexchange.services.errors import InvalidInput, NotFound
from cityexchange.services.listing import ListingFilter
from cityexchange.services.models import Event, EventType, FacedBy, HelpOffer, Problem, Solution
from cityexchange.services.pages import ChildPages, Order, Page, PageRequest
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store import events as event_store
from cityexchange.services.store import people as people_store
from cityexchange.services.store import problems as store
from cityexchange.services.store import search_index
from cityexchange.services.store import solutions as solution_store
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Hazard, ProblemStatus, Sector, Urgency
from cityexchange.services.text import Language
from cityexchange.services.visibility import PUBLIC, TeamMember, TeamRole, Viewer, Visibility


@dataclass(frozen=True, slots=True)
class ProblemDraft:
    title: str
    summary: str
    hazards: Sequence[Hazard]
    body: str | None = None
    sectors: Sequence[Sector] | None = None
    tags: Sequence[str] | None = None
    urgency: Urgency | None = None
    stakeholders: Sequence[str] | None = None
    stakeholder_ids: Sequence[str] | None = None  # organisations in the exchange
    affected_population: int | None = None
    language: Language | None = None  # None: detected from the text
    external_id: str | None = None  # a library's id (services/library_import.py)
    visibility: Visibility | None = None  # None: PUBLIC


@dataclass(frozen=True, slots=True)
class ProblemChanges:
    """Fields to change; None leaves a field as it is."""

    title: str | None = None
    summary: str | None = None
    body: str | None = None
    hazards: Sequence[Hazard] | None = None
    sectors: Sequence[Sector] | None = None
    tags: Sequence[str] | None = None
    status: ProblemStatus | None = None
    urgency: Urgency | None = None
    stakeholders: Sequence[str] | None = None
    stakeholder_ids: Sequence[str] | None = None
    affected_population: int | None = None
    language: Language | None = None


def _event(type: EventType, problem: Problem, actor: Principal) -> Event:
    return Event(
        type=type,
        occurred_at=problem.updated_at,
        city=actor.city,
        actor=actor.subject,
        subject_kind="Problem",
        subject_id=problem.id,
        subject_city=problem.city,
        thread_id=problem.id,
        hazards=problem.hazards,
        sectors=problem.sectors,
        tags=problem.tags,
        urgency=problem.urgency,
        audience=problem.audience,
    )


def lead_of(actor: Principal, at: datetime) -> TeamMember:
    """The team's first member: whoever published it, as its lead."""
    return TeamMember("Person", actor.subject, TeamRole.LEAD, at, actor.subject, city=actor.city)


def _hazards(values: Sequence[Hazard]) -> tuple[Hazard, ...]:
    hazards = limits.items("hazards", values)
    if not hazards:
        raise InvalidInput("hazards", "name at least one hazard")
    return hazards


async def publish(*, db: Database, actor: Principal, draft: ProblemDraft) -> Problem:
    """Publish a problem of the caller's own city."""
    actor.require(Scope.PUBLISH)
    limits.non_negative("affectedPopulation", draft.affected_population)
    moment = now()
    visibility = audiences.checked(draft.visibility or PUBLIC, now=moment)
    team = (lead_of(actor, moment),)
    audience = await audiences.resolve(db, owner=actor.city, visibility=visibility, team=team)
    problem = Problem(
        id="",
        city=actor.city,
        title=limits.text("title", draft.title, max_length=limits.TITLE_MAX),
        summary=limits.text("summary", draft.summary, max_length=limits.SUMMARY_MAX),
        body=limits.optional_text("body", draft.body, max_length=limits.BODY_MAX),
        hazards=_hazards(draft.hazards),
        sectors=limits.items("sectors", draft.sectors),
        tags=limits.tags("tags", draft.tags),
        status=ProblemStatus.OPEN,
        urgency=draft.urgency or Urgency.ROUTINE,
        stakeholders=limits.texts("stakeholders", draft.stakeholders),
        affected_population=draft.affected_population,
        answered_by=(),
        faced_by=(),
        version=1,
        created_at=moment,
        updated_at=moment,
    )
    problem = replace(
        problem,
        language=await search.language_of(
            draft.language, problem.title, problem.summary, problem.body
        ),
        external_id=draft.external_id,
        stakeholder_ids=await organisations.existing(
            db, "stakeholderIds", draft.stakeholder_ids or ()
        ),
        visibility=visibility,
        team=team,
        audience=audience,
    )
    analysis = ranking.analyse(ranking.search_document_of_problem(problem))

    async def write(session: Any) -> Problem:
        saved = await store.insert_problem(db, problem, session=session)
        await search_index.index_new(db, analysis.for_id(saved.id), session=session)
        return saved

    return await event_store.record(
        db, write, lambda saved: _event(EventType.PROBLEM_PUBLISHED, saved, actor)
    )


async def update(
    *, db: Database, actor: Principal, id: str, version: int, changes: ProblemChanges
) -> Problem:
    """Edit or close a problem; only its city or its team may (services/teams.py), and only
    from the version it last read."""
    actor.require(Scope.PUBLISH)
    current = await store.get_problem(db, id, viewer=Viewer.of(actor))
    teams.require_editor(actor, city=current.city, team=current.team, what="problem")
    limits.non_negative("affectedPopulation", changes.affected_population)
    c = changes
    edited = replace(
        current,
        title=current.title
        if c.title is None
        else limits.text("title", c.title, max_length=limits.TITLE_MAX),
        summary=current.summary
        if c.summary is None
        else limits.text("summary", c.summary, max_length=limits.SUMMARY_MAX),
        body=current.body
        if c.body is None
        else limits.optional_text("body", c.body, max_length=limits.BODY_MAX),
        hazards=current.hazards if c.hazards is None else _hazards(c.hazards),
        sectors=current.sectors if c.sectors is None else limits.items("sectors", c.sectors),
        tags=current.tags if c.tags is None else limits.tags("tags", c.tags),
        status=c.status or current.status,
        urgency=c.urgency or current.urgency,
        stakeholders=current.stakeholders
        if c.stakeholders is None
        else limits.texts("stakeholders", c.stakeholders),
        affected_population=current.affected_population
        if c.affected_population is None
        else c.affected_population,
        updated_at=now(),
        language=c.language or current.language,
        stakeholder_ids=current.stakeholder_ids
        if c.stakeholder_ids is None
        else await organisations.existing(db, "stakeholderIds", c.stakeholder_ids),
    )
    analysis = ranking.analyse(ranking.search_document_of_problem(edited))

    async def write(session: Any) -> Problem:
        saved = await store.save_problem(db, edited, expected_version=version, session=session)
        await search_index.index(db, analysis, session=session)
        return saved

    return await event_store.record(
        db, write, lambda saved: _event(EventType.PROBLEM_UPDATED, saved, actor)
    )


async def mark_answered(
    *, db: Database, actor: Principal, id: str, version: int, solution_ids: Sequence[str]
) -> Problem:
    """The problem's city marks the solution(s) that answered it; status becomes ADDRESSED."""
    actor.require(Scope.PUBLISH)
    viewer = Viewer.of(actor)
    current = await store.get_problem(db, id, viewer=viewer)
    teams.require_editor(actor, city=current.city, team=current.team, what="problem")
    wanted = limits.items("solutionIds", solution_ids)
    if not wanted:
        raise InvalidInput("solutionIds", "name at least one solution")
    found = await solution_store.solutions_by_ids(db, wanted, viewer=viewer)
    for solution_id, solution in zip(wanted, found, strict=True):
        if solution is None:
            raise NotFound("Solution", solution_id)
        if current.id not in solution.problem_ids:
            raise InvalidInput(
                "solutionIds",
                f"solution {solution_id} does not address this "
                "problem (it must list it in its problemIds)",
            )
    status = current.status if current.status is ProblemStatus.CLOSED else ProblemStatus.ADDRESSED
    edited = replace(current, status=status, updated_at=now())
    return await event_store.record(
        db,
        lambda session: store.add_answers(
            db, edited, wanted, expected_version=version, session=session
        ),
        lambda saved: _event(EventType.PROBLEM_ANSWERED, saved, actor),
    )


async def face_too(*, db: Database, actor: Principal, id: str) -> Problem:
    """The caller's city says it faces this problem too (idempotent)."""
    actor.require(Scope.PUBLISH)
    viewer = Viewer.of(actor)
    current = await store.get_problem(db, id, viewer=viewer)
    if current.city == actor.city:
        raise InvalidInput("problemId", "is your own city's problem")
    if any(f.city == actor.city for f in current.faced_by):
        return current
    faced = FacedBy(actor.city, now())

    async def write(session: Any) -> Problem | None:
        return await store.add_faced_by(db, id, faced, session=session)

    return await _marked(db, id, write, EventType.PROBLEM_FACED_TOO, actor, at=faced.at)


async def _marked(
    db: Database,
    id: str,
    write: Callable[[Any], Awaitable[Problem | None]],
    type: EventType,
    actor: Principal,
    *,
    at: datetime,
) -> Problem:
    """Another city's mark on a problem, written with its event; `write` gives None when
    there was nothing to write (the mark was there), and then the problem is read as it is."""
    saved = await event_store.record(
        db,
        write,
        lambda saved: replace(_event(type, saved, actor), occurred_at=at) if saved else None,
    )
    if saved is not None:
        return saved
    return await store.get_problem(db, id, viewer=Viewer.of(actor))


MAX_HELP_OFFERS = 100  # per problem
MAX_HELP_OFFERS_PER_CITY = 5  # per problem and responding city: no one city fills the list
HELP_NOTE_MAX = 2_000


async def offer_help(
    *,
    db: Database,
    actor: Principal,
    id: str,
    solution_id: str | None,
    person_id: str | None,
    note: str | None,
) -> Problem:
    """The caller's city offers another city's problem a solution of its own, a person of its
    own, or both (scope: publish); the same offer again changes nothing. Tells whoever may
    see the problem with HELP_OFFERED."""
    actor.require(Scope.PUBLISH)
    viewer = Viewer.of(actor)
    current = await store.get_problem(db, id, viewer=viewer)
    if current.city == actor.city:
        raise InvalidInput("problemId", "is your own city's problem")
    if solution_id is None and person_id is None:
        raise InvalidInput("solutionId", "offer a solution, a person or both")
    text = limits.optional_text("note", note, max_length=HELP_NOTE_MAX)
    if solution_id is not None:
        (solution,) = await solution_store.solutions_by_ids(db, [solution_id], viewer=viewer)
        if solution is None:
            raise NotFound("Solution", solution_id)
        if solution.city != actor.city:
            raise InvalidInput("solutionId", "is another city's solution: offer your own")
        if not Viewer.of_city(current.city).may_read(solution.audience):
            raise InvalidInput(
                "solutionId", f"is not visible to {current.city}: share it with them first"
            )
        solution_id = solution.id
    if person_id is not None:
        person = await people_store.person_in_city(db, city=actor.city, id=person_id)
        if person is None:
            raise NotFound("Person", person_id)
        person_id = person.id
    offer = HelpOffer(actor.city, now(), solution_id, person_id, text)
    same = (offer.city, solution_id, person_id)
    if any((o.city, o.solution_id, o.person_id) == same for o in current.help_offers):
        return current
    if len(current.help_offers) >= MAX_HELP_OFFERS:
        raise InvalidInput("problemId", f"has {MAX_HELP_OFFERS} offers of help already")
    if sum(o.city == actor.city for o in current.help_offers) >= MAX_HELP_OFFERS_PER_CITY:
        raise InvalidInput(
            "problemId", f"has {MAX_HELP_OFFERS_PER_CITY} offers of help from your city already"
        )

    async def write(session: Any) -> Problem | None:
        return await store.add_help_offer(
            db,
            id,
            offer,
            at_most=MAX_HELP_OFFERS,
            per_city=MAX_HELP_OFFERS_PER_CITY,
            session=session,
        )

    # Nothing written if the same offer or the last free place was taken meanwhile.
    saved = await _marked(db, id, write, EventType.HELP_OFFERED, actor, at=offer.at)
    if not any((o.city, o.solution_id, o.person_id) == same for o in saved.help_offers):
        raise InvalidInput("problemId", "had its last free place taken meanwhile: try again")
    return saved


async def get(*, db: Database, actor: Principal, id: str) -> Problem:
    actor.require(Scope.READ)
    return await store.get_problem(db, id, viewer=Viewer.of(actor))


async def by_ids(*, db: Database, actor: Principal, ids: Sequence[str]) -> list[Problem | None]:
    actor.require(Scope.READ)
    return await store.problems_by_ids(db, ids, viewer=Viewer.of(actor))


async def list_problems(
    *,
    db: Database,
    actor: Principal,
    listing: ListingFilter,
    order: Order,
    request: PageRequest,
    city: str | None = None,
) -> Page[Problem]:
    actor.require(Scope.READ)
    return await store.list_problems(
        db,
        listing=listing.checked(),
        order=order,
        request=request,
        viewer=Viewer.of(actor),
        city=city,
    )


async def solutions_of(
    *, db: Database, actor: Principal, problem_ids: Sequence[str], request: PageRequest
) -> ChildPages[Solution]:
    """Solutions addressing each of many problems, batched."""
    actor.require(Scope.READ)
    request.validate()
    return await solution_store.solutions_of_problems(
        db, problem_ids, first=request.size, after=request.after, viewer=Viewer.of(actor)
    )


async def of_organisations(
    *, db: Database, actor: Principal, organisation_ids: Sequence[str], request: PageRequest
) -> ChildPages[Problem]:
    """Problems naming each of many organisations a stakeholder, batched."""
    actor.require(Scope.READ)
    request.validate()
    return await store.problems_of_organisations(
        db, organisation_ids, first=request.size, after=request.after, viewer=Viewer.of(actor)
    )


async def of_cities(
    *,
    db: Database,
    actor: Principal,
    cities: Sequence[str],
    listing: ListingFilter,
    order: Order,
    request: PageRequest,
) -> ChildPages[Problem]:
    """Problems of each of many cities, batched."""
    actor.require(Scope.READ)
    request.validate()
    return await store.problems_of_cities(
        db,
        cities,
        listing=listing.checked(),
        order=order,
        first=request.size,
        after=request.after,
        viewer=Viewer.of(actor),
    )
