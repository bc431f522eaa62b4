"""Use cases for adoption: a city takes up another city's solution, stage by stage; the
roll-up of who adopted it and how it went; the lineage of adaptations around a solution.

Stages run INTERESTED < PLANNING < PILOTING < ADOPTED. A city may skip ahead; going back
needs a note saying why, and so do ABANDONED and resuming after it. Each change is kept, in
order, with who made it and when (at most 50 changes per adoption).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cityexchange.services import audiences, limits
from cityexchange.services.clock import now
from cityexchange.services.errors import Forbidden, InvalidInput, NotFound
from cityexchange.services.models import (
    TAKEN_UP,
    Adoption,
    AdoptionStage,
    Event,
    EventType,
    Solution,
    StageChange,
)
from cityexchange.services.pages import ChildPages, PageRequest
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store import adoptions as store
from cityexchange.services.store import events as event_store
from cityexchange.services.store import outcomes as outcome_store
from cityexchange.services.store import solutions as solution_store
from cityexchange.services.store.database import Database
from cityexchange.services.visibility import Viewer

ORDER = (
    AdoptionStage.INTERESTED,
    AdoptionStage.PLANNING,
    AdoptionStage.PILOTING,
    AdoptionStage.ADOPTED,
)
# Cities at these stages count as adopting (Solution.adoptionCount, the roll-up).
STAGES_MAX = limits.LIST_MAX
MAX_LINEAGE_DEPTH = 10
LINEAGE_DESCENDANTS_MAX = limits.LIST_MAX


def solution_event(
    type: EventType,
    solution: Solution,
    actor: Principal,
    *,
    kind: str,
    id: str,
    audience: Sequence[str],
) -> Event:
    """An event about something done with `solution` (kind/id: what was done to), for the
    audience the thing done copied (services/audiences.copied)."""
    return Event(
        type=type,
        occurred_at=now(),
        city=actor.city,
        actor=actor.subject,
        subject_kind=kind,
        subject_id=id,
        subject_city=solution.city,
        thread_id=solution.id,
        hazards=solution.hazards,
        sectors=solution.details.sectors,
        tags=solution.details.tags,
        audience=tuple(audience),
    )


async def other_citys_solution(db: Database, actor: Principal, solution_id: str) -> Solution:
    """The solution, which must be another city's: a city does not adopt or endorse its own."""
    (solution,) = await solution_store.solutions_by_ids(db, [solution_id], viewer=Viewer.of(actor))
    if solution is None:
        raise NotFound("Solution", solution_id)
    if solution.city == actor.city:
        raise InvalidInput("solutionId", "is your own city's solution: only other cities' count")
    return solution


def check_move(current: AdoptionStage | None, stage: AdoptionStage, note: str | None) -> None:
    """The stage rules of the module's docstring; InvalidInput on the note field."""
    if note is not None:
        return
    if stage is AdoptionStage.ABANDONED:
        raise InvalidInput("note", "ABANDONED needs a note saying why the city stopped")
    if current is AdoptionStage.ABANDONED:
        raise InvalidInput("note", f"resuming at {stage} after ABANDONED needs a note saying why")
    if current is not None and ORDER.index(stage) < ORDER.index(current):
        raise InvalidInput("note", f"going back from {current} to {stage} needs a note saying why")


async def _check_adapted(db: Database, actor: Principal, original: str, adapted: str) -> None:
    """The adapted solution must be the adopting city's, adapted from `original` or from one
    of its adaptations (within MAX_LINEAGE_DEPTH): one query per level up."""
    viewer = Viewer.of(actor)
    (solution,) = await solution_store.solutions_by_ids(db, [adapted], viewer=viewer)
    if solution is None:
        raise NotFound("Solution", adapted)
    if solution.city != actor.city:
        raise InvalidInput("adaptedSolutionId", "must be a solution of your own city")
    for _ in range(MAX_LINEAGE_DEPTH):
        if solution is None or solution.adapted_from is None:
            break
        if solution.adapted_from.solution_id == original:
            return
        (solution,) = await solution_store.solutions_by_ids(
            db, [solution.adapted_from.solution_id], viewer=viewer
        )
    raise InvalidInput(
        "adaptedSolutionId", "must be adapted from this solution or from one of its adaptations"
    )


async def adopt(
    *,
    db: Database,
    actor: Principal,
    solution_id: str,
    stage: AdoptionStage,
    note: str | None = None,
    adapted_solution_id: str | None = None,
) -> Adoption:
    """Record how far the caller's city got with another city's solution; the same stage
    again with nothing new changes nothing."""
    actor.require(Scope.PUBLISH)
    why = limits.optional_text("note", note, max_length=limits.NOTE_MAX)
    solution = await other_citys_solution(db, actor, solution_id)
    if adapted_solution_id is not None:
        await _check_adapted(db, actor, solution.id, adapted_solution_id)
    moment = now()
    change = StageChange(stage, moment, actor.subject, why)
    changed = False

    async def write(session: Any) -> Adoption:
        nonlocal changed
        # Read inside the transaction: the rules apply to the stage as committed.
        audience = await audiences.copied(db, actor, "Solution", solution.id, session=session)
        current = await store.adoption_of(db, solution.id, actor.city, session=session)
        check_move(current.stage if current else None, stage, why)
        if current is None:
            draft = Adoption(
                id="",
                solution_id=solution.id,
                solution_city=solution.city,
                city=actor.city,
                stages=(change,),
                audience=audience,
                adapted_solution_id=adapted_solution_id,
                created_at=moment,
                updated_at=moment,
            )
            saved = await store.insert_adoption(db, draft, session=session)
        else:
            same_link = adapted_solution_id in (None, current.adapted_solution_id)
            # A repeat (a retry without a clientMutationId, say) adds nothing to the history.
            if stage is current.stage and why in (None, current.stages[-1].note) and same_link:
                changed = False
                return current
            if len(current.stages) >= STAGES_MAX:
                raise InvalidInput("stage", f"an adoption keeps at most {STAGES_MAX} changes")
            saved = await store.add_stage(
                db, current, change, adapted_solution_id=adapted_solution_id, session=session
            )
        was = current is not None and current.stage in TAKEN_UP
        delta = int(saved.stage in TAKEN_UP) - int(was)
        await solution_store.add_to_counters(db, solution.id, adoptions=delta, session=session)
        changed = True
        return saved

    return await event_store.record(
        db,
        write,
        lambda saved: (
            solution_event(
                EventType.ADOPTION_CHANGED,
                solution,
                actor,
                kind="Adoption",
                id=saved.id,
                audience=saved.audience,
            )
            if changed
            else None
        ),
    )


async def subject_adoption(db: Database, actor: Principal, id: str) -> Adoption:
    """An adoption its own city acts on (reporting outcomes); Forbidden for another city."""
    (adoption,) = await store.adoptions_by_ids(db, [id], viewer=Viewer.of(actor))
    if adoption is None:
        raise NotFound("Adoption", id)
    if adoption.city != actor.city:
        raise Forbidden(f"only {adoption.city} may report on its adoption")
    return adoption


async def by_ids(*, db: Database, actor: Principal, ids: Sequence[str]) -> list[Adoption | None]:
    actor.require(Scope.READ)
    return await store.adoptions_by_ids(db, ids, viewer=Viewer.of(actor))


async def adoptions_of(
    *, db: Database, actor: Principal, solution_ids: Sequence[str], request: PageRequest
) -> ChildPages[Adoption]:
    """Adoptions of each of many solutions, newest first, batched."""
    actor.require(Scope.READ)
    request.validate()
    return await store.adoptions_of(
        db, solution_ids, first=request.size, after=request.after, viewer=Viewer.of(actor)
    )


@dataclass(frozen=True, slots=True)
class AdoptionSummary:
    """Who took a solution up and how it went, with the roll-up in words."""

    stages: dict[AdoptionStage, int]
    adopting_cities: tuple[str, ...]  # at PILOTING or ADOPTED, first adopters first
    improving_cities: int  # adopting cities with a metric moving toward its target
    text: str


def _cities(n: int) -> str:
    return f"{n} {'city' if n == 1 else 'cities'}"


def _text(stages: Counter[AdoptionStage], improving: Counter[tuple[str, str]]) -> str:
    """ "adopted by 4 cities; 3 report fewer flooded streets" and the like."""
    said = [
        f"{verb} {_cities(stages[stage])}"
        for stage, verb in (
            (AdoptionStage.ADOPTED, "adopted by"),
            (AdoptionStage.PILOTING, "piloted by"),
            (AdoptionStage.PLANNING, "planned by"),
            (AdoptionStage.INTERESTED, "of interest to"),
            (AdoptionStage.ABANDONED, "abandoned by"),
        )
        if stages[stage]
    ]
    text = ", ".join(said) if said else "no other city has taken this up yet"
    if improving:
        # The metric most cities report progress on; ties go to the first in name order.
        (metric, direction), n = min(improving.items(), key=lambda item: (-item[1], item[0]))
        text += f"; {n} report {direction} {metric}"
    return text


async def summaries(
    *, db: Database, actor: Principal, solution_ids: Sequence[str]
) -> list[AdoptionSummary]:
    """The roll-up of each solution, aligned: two queries for all of them.

    A metric improves for an adopting city when its latest report is nearer its target than
    its baseline (the latest report's, else the series' first value): "fewer" when the
    target is below, "more" when above. Reports without a target say nothing about progress.
    """
    actor.require(Scope.READ)
    viewer = Viewer.of(actor)
    standings = await store.standings(db, solution_ids, viewer=viewer)
    trends = await outcome_store.adoption_trends(db, solution_ids, viewer=viewer)
    stages: dict[str, Counter[AdoptionStage]] = defaultdict(Counter)
    adopting: dict[str, list[str]] = defaultdict(list)
    for s in standings:
        stages[s.solution_id][s.stage] += 1
        if s.stage in TAKEN_UP:
            adopting[s.solution_id].append(s.city)
    improving: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for t in trends:
        start = t.baseline if t.baseline is not None else t.first
        if t.city not in adopting[t.solution_id] or t.target is None or start == t.target:
            continue
        if abs(t.target - t.last) < abs(t.target - start):
            direction = "fewer" if t.target < start else "more"
            improving[t.solution_id].add((t.city, t.metric, direction))
    result: list[AdoptionSummary] = []
    for id in solution_ids:
        metrics = Counter((metric, way) for _, metric, way in improving[id])
        result.append(
            AdoptionSummary(
                stages={stage: stages[id][stage] for stage in AdoptionStage},
                adopting_cities=tuple(adopting[id]),
                improving_cities=len({city for city, _, _ in improving[id]}),
                text=_text(stages[id], metrics),
            )
        )
    return result


@dataclass(frozen=True, slots=True)
class LineageEntry:
    solution: Solution
    depth: int  # levels away: 1 is the original it adapts, or a direct adaptation


@dataclass(frozen=True, slots=True)
class Lineage:
    ancestors: tuple[LineageEntry, ...]  # nearest first, up to the first original
    descendants: tuple[LineageEntry, ...]  # level by level; within a level, newest first
    truncated: bool  # more descendants than LINEAGE_DESCENDANTS_MAX: page `adaptations`


async def lineages(
    *, db: Database, actor: Principal, solution_ids: Sequence[str], depth: int
) -> list[Lineage | None]:
    """Ancestors and descendants of each solution, `depth` levels each way, aligned (None
    for a missing solution): one query per level for all of them together. Descendants
    stop at LINEAGE_DESCENDANTS_MAX per solution, breadth first."""
    actor.require(Scope.READ)
    if not 1 <= depth <= MAX_LINEAGE_DEPTH:
        raise InvalidInput("depth", f"must be between 1 and {MAX_LINEAGE_DEPTH}")
    viewer = Viewer.of(actor)
    roots = await solution_store.solutions_by_ids(db, solution_ids, viewer=viewer)
    found = {root.id: root for root in roots if root is not None}
    ancestors: dict[str, list[LineageEntry]] = {id: [] for id in found}
    climbing = {id: root for id, root in found.items() if root.adapted_from}
    for level in range(1, depth + 1):
        if not climbing:
            break
        parents = [s.adapted_from.solution_id for s in climbing.values() if s.adapted_from]
        loaded = await solution_store.solutions_by_ids(db, parents, viewer=viewer)
        by_id = {p.id: p for p in loaded if p is not None}
        next_climbing: dict[str, Solution] = {}
        for id, child in climbing.items():
            parent = by_id.get(child.adapted_from.solution_id) if child.adapted_from else None
            if parent is None:
                continue
            ancestors[id].append(LineageEntry(parent, level))
            if parent.adapted_from:
                next_climbing[id] = parent
        climbing = next_climbing
    descendants: dict[str, list[LineageEntry]] = {id: [] for id in found}
    truncated: set[str] = set()
    frontier = {id: [id] for id in found}
    for level in range(1, depth + 1):
        parents = [p for ids in frontier.values() for p in ids]
        if not parents:
            break
        # Per parent, one more than the cap at most: enough to fill any root and see more.
        pages = await solution_store.adaptations_of(
            db, parents, first=LINEAGE_DESCENDANTS_MAX + 1, after=None, viewer=viewer
        )
        for id, ids in frontier.items():
            children = [c for p in ids for c in pages.page(p, after=None).items]
            room = LINEAGE_DESCENDANTS_MAX - len(descendants[id])
            if len(children) > room:
                truncated.add(id)
            kept = children[:room]
            descendants[id].extend(LineageEntry(c, level) for c in kept)
            frontier[id] = [c.id for c in kept]
    return [
        Lineage(tuple(ancestors[id]), tuple(descendants[id]), id in truncated)
        if id in found
        else None
        for id in solution_ids
    ]
