"""Suggestions: similar problems in other cities, and other cities' solutions ranked by
relevance x fit x evidence x freshness (docs/discovery.md, "Suggested solutions").

Each factor is in (0, 1] and the score is their product, so a solution must do well on all
four to rank high: a well-evidenced solution from an unlike city, or a close match that
nobody has shown to work, both fall behind. Whatever the page size, a call costs one
`related` search, one read of the candidates, one of the cities, and one of the candidates'
track records (three concurrent queries).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Generic, TypeVar

from cityexchange.services import evidence, peers, search
from cityexchange.services.clock import now
from cityexchange.services.errors import InvalidInput
from cityexchange.services.models import City, Problem, Solution
from cityexchange.services.peers import MatchReason, ReasonCode
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store import cities as city_store
from cityexchange.services.store import problems as problem_store
from cityexchange.services.store import solutions as solution_store
from cityexchange.services.store import track_records
from cityexchange.services.store.database import Database

T = TypeVar("T", Problem, Solution)

DEFAULT_SUGGESTIONS = 10
MAX_SUGGESTIONS = 50
# Candidates `related` returns, to be re-ranked by fit, evidence and freshness: more than a
# page, so a well-evidenced solution a little less alike in words can still rise.
POOL_FACTOR, POOL_MIN = 3, 30
FIT_FLOOR = 0.25  # fit of a city with nothing in common: unlike is a caution, not a veto
FRESH_FLOOR = 0.4  # freshness of very old work: what worked then may still work
HALF_LIFE_YEARS = 10.0
MATCHED_TERMS_SHOWN = 8


@dataclass(frozen=True, slots=True)
class Factors:
    relevance: float
    fit: float
    evidence: float
    freshness: float


@dataclass(frozen=True, slots=True)
class Suggestion(Generic[T]):
    item: T
    score: float
    factors: Factors
    reasons: tuple[MatchReason, ...]


def _size(first: int | None) -> int:
    if first is None:
        return DEFAULT_SUGGESTIONS
    if not 0 <= first <= MAX_SUGGESTIONS:
        raise InvalidInput("first", f"must be between 0 and {MAX_SUGGESTIONS}")
    return first


def _pool(size: int) -> int:
    return min(search.RELATED_MAX, max(POOL_MIN, POOL_FACTOR * size))


def _relevance(relevance: float, terms: Sequence[str]) -> tuple[float, MatchReason]:
    shown = list(dict.fromkeys(terms))[:MATCHED_TERMS_SHOWN]
    text = f"matches {', '.join(shown)}" if shown else "alike in its words"
    return max(relevance, 1e-6), MatchReason(ReasonCode.MATCHED_TERMS, text)


def fit(asking: City | None, implementing: City | None) -> tuple[float, tuple[MatchReason, ...]]:
    """How well the implementing city's context fits the asking city's, in (0, 1]."""
    if asking is None or implementing is None:
        return FIT_FLOOR, ()
    found = peers.match(asking, implementing)
    return FIT_FLOOR + (1 - FIT_FLOOR) * found.score, found.reasons


def freshness(solution: Solution, today: date) -> tuple[float, MatchReason]:
    """How recent the work is, in (0, 1]: halves towards the floor every HALF_LIFE_YEARS."""
    d = solution.details
    if d.completed_on is not None:
        when, what = d.completed_on, "completed"
    elif d.started_on is not None:
        when, what = d.started_on, "started"
    else:
        when, what = solution.created_at.date(), "published"
    years = max(0.0, (today - when).days / 365.25)
    score = FRESH_FLOOR + (1 - FRESH_FLOOR) * 0.5 ** (years / HALF_LIFE_YEARS)
    ago = "this year" if years < 1 else f"{int(years)} year{'s' if years >= 2 else ''} ago"
    return score, MatchReason(ReasonCode.FRESHNESS, f"{what} {when.year} ({ago})")


async def _cities(db: Database, slugs: Sequence[str]) -> dict[str, City]:
    wanted = list(dict.fromkeys(slugs))
    found = await city_store.cities_by_slugs(db, wanted)
    return {city.slug: city for city in found if city is not None}


def _ranked(suggestions: list[Suggestion[T]], size: int) -> list[Suggestion[T]]:
    suggestions.sort(key=lambda s: (-s.score, s.item.id))
    return suggestions[:size]


async def _suggested_solutions(
    db: Database, source: search.SearchDocument, size: int, *, today: date
) -> list[Suggestion[Solution]]:
    if size == 0:
        return []
    related = await search.related(
        db=db, document=source, kinds={"Solution"}, exclude_city=source.city, limit=_pool(size)
    )
    ids = [id for _, id, _, _ in related]
    found = await solution_store.solutions_by_ids(db, ids)
    candidates = [s for s in found if s is not None and s.city != source.city]
    cities, records = await asyncio.gather(
        _cities(db, [source.city, *(s.city for s in candidates)]),
        track_records.track_records(db, [s.id for s in candidates]),
    )
    by_id = {s.id: s for s in candidates}
    asking = cities.get(source.city)
    suggestions: list[Suggestion[Solution]] = []
    for _, id, relevance, terms in related:
        solution = by_id.get(id)
        if solution is None:
            continue
        relevant, matched = _relevance(relevance, terms)
        fitting, fit_reasons = fit(asking, cities.get(solution.city))
        shown = evidence.assess(solution, records.get(id, evidence.TrackRecord()))
        fresh, fresh_reason = freshness(solution, today)
        factors = Factors(relevant, fitting, shown.score, fresh)
        score = relevant * fitting * shown.score * fresh
        reasons = (matched, *fit_reasons, *shown.reasons, fresh_reason)
        suggestions.append(Suggestion(solution, round(score, 6), factors, reasons))
    return _ranked(suggestions, size)


async def suggested_solutions(
    *, db: Database, actor: Principal, problem: Problem, first: int | None
) -> list[Suggestion[Solution]]:
    """Other cities' solutions for a problem, best first; never its own city's."""
    actor.require(Scope.READ)
    source = search.search_document_of_problem(problem)
    return await _suggested_solutions(db, source, _size(first), today=now().date())


async def similar_solutions(
    *, db: Database, actor: Principal, solution: Solution, first: int | None
) -> list[Suggestion[Solution]]:
    """Other cities' solutions like this one, ranked as suggestions are."""
    actor.require(Scope.READ)
    source = search.search_document_of_solution(solution)
    return await _suggested_solutions(db, source, _size(first), today=now().date())


async def similar_problems(
    *, db: Database, actor: Principal, problem: Problem, first: int | None
) -> list[Suggestion[Problem]]:
    """Problems of other cities like this one, by relevance x fit of their city."""
    actor.require(Scope.READ)
    size = _size(first)
    if size == 0:
        return []
    related = await search.related(
        db=db,
        document=search.search_document_of_problem(problem),
        kinds={"Problem"},
        exclude_city=problem.city,
        limit=_pool(size),
    )
    found = await problem_store.problems_by_ids(db, [id for _, id, _, _ in related])
    by_id = {p.id: p for p in found if p is not None and p.city != problem.city}
    cities = await _cities(db, [problem.city, *(p.city for p in by_id.values())])
    asking = cities.get(problem.city)
    suggestions: list[Suggestion[Problem]] = []
    for _, id, relevance, terms in related:
        other = by_id.get(id)
        if other is None:
            continue
        relevant, matched = _relevance(relevance, terms)
        fitting, fit_reasons = fit(asking, cities.get(other.city))
        factors = Factors(relevant, fitting, 1.0, 1.0)
        score = round(relevant * fitting, 6)
        suggestions.append(Suggestion(other, score, factors, (matched, *fit_reasons)))
    return _ranked(suggestions, size)
