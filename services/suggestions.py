"""Suggestions: similar problems in other cities, and other cities' solutions ranked by
relevance x fit x evidence x freshness (docs/discovery.md, "Suggested solutions").

Each factor is in (0, 1] and the score is their product, so a solution must do well on all
four to rank high: a well-evidenced solution from an unlike city, or a close match that
nobody has shown to work, both fall behind.

The verbs rank many lists at once (a level of a GraphQL document): each list costs its own
`related` search (the term statistics, then the postings of its chosen terms), and the
candidates of all the lists, their cities and their track records are read once for all,
whatever the page sizes and the number of lists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
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
from cityexchange.services.visibility import Viewer

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


@dataclass(frozen=True, slots=True)
class Wanted:
    """One list of suggestions: like which problem or solution, and how many (checked)."""

    source: Problem | Solution
    size: int

    @classmethod
    def of(cls, source: Problem | Solution, first: int | None) -> Wanted:
        """The list `first` asks for; InvalidInput when it is out of range."""
        return cls(source, _size(first))


Related = list[tuple[str, str, float, list[str]]]


def _document(source: Problem | Solution) -> search.SearchDocument:
    if isinstance(source, Problem):
        return search.search_document_of_problem(source)
    return search.search_document_of_solution(source)


async def _related(
    db: Database, sources: Sequence[search.SearchDocument], wanted: Sequence[Wanted], kind: str
) -> list[Related]:
    """Each list's candidates, concurrently: a `related` search cannot be shared."""

    async def one(source: search.SearchDocument, size: int) -> Related:
        if size == 0:
            return []
        return await search.related(
            db=db, document=source, kinds={kind}, exclude_city=source.city, limit=_pool(size)
        )

    return list(
        await asyncio.gather(*(one(d, w.size) for d, w in zip(sources, wanted, strict=True)))
    )


def _candidate_ids(related: Sequence[Related]) -> list[str]:
    return list(dict.fromkeys(id for hits in related for _, id, _, _ in hits))


async def _cities(db: Database, slugs: Iterable[str]) -> dict[str, City]:
    found = await city_store.cities_by_slugs(db, list(dict.fromkeys(slugs)))
    return {city.slug: city for city in found if city is not None}


def _ranked(suggestions: list[Suggestion[T]], size: int) -> list[Suggestion[T]]:
    suggestions.sort(key=lambda s: (-s.score, s.item.id))
    return suggestions[:size]


def _solutions_for(
    source: search.SearchDocument,
    size: int,
    related: Related,
    found: dict[str, Solution],
    cities: dict[str, City],
    records: dict[str, evidence.TrackRecord],
    today: date,
) -> list[Suggestion[Solution]]:
    asking = cities.get(source.city)
    suggestions: list[Suggestion[Solution]] = []
    for _, id, relevance, terms in related:
        solution = found.get(id)
        if solution is None or solution.city == source.city:
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
    *, db: Database, actor: Principal, wanted: Sequence[Wanted]
) -> list[list[Suggestion[Solution]]]:
    """Other cities' solutions for each problem, or like each solution, best first, aligned
    to `wanted`; never the source's own city's, nor a solution itself."""
    actor.require(Scope.READ)
    sources = [_document(w.source) for w in wanted]
    related = await _related(db, sources, wanted, "Solution")
    ids = _candidate_ids(related)
    if not ids:
        return [[] for _ in wanted]
    viewer = Viewer.of(actor)
    shown = await solution_store.solutions_by_ids(db, ids, viewer=viewer)
    found = {s.id: s for s in shown if s is not None}
    cities, records = await asyncio.gather(
        _cities(db, [*(d.city for d in sources), *(s.city for s in found.values())]),
        track_records.track_records(db, list(found), viewer=viewer),
    )
    today = now().date()
    return [
        _solutions_for(source, w.size, hits, found, cities, records, today)
        for source, w, hits in zip(sources, wanted, related, strict=True)
    ]


def _problems_for(
    source: search.SearchDocument,
    size: int,
    related: Related,
    found: dict[str, Problem],
    cities: dict[str, City],
) -> list[Suggestion[Problem]]:
    asking = cities.get(source.city)
    suggestions: list[Suggestion[Problem]] = []
    for _, id, relevance, terms in related:
        other = found.get(id)
        if other is None or other.city == source.city:
            continue
        relevant, matched = _relevance(relevance, terms)
        fitting, fit_reasons = fit(asking, cities.get(other.city))
        factors = Factors(relevant, fitting, 1.0, 1.0)
        score = round(relevant * fitting, 6)
        suggestions.append(Suggestion(other, score, factors, (matched, *fit_reasons)))
    return _ranked(suggestions, size)


async def similar_problems(
    *, db: Database, actor: Principal, wanted: Sequence[Wanted]
) -> list[list[Suggestion[Problem]]]:
    """Problems of other cities like each problem, by relevance x fit of their city,
    aligned to `wanted`."""
    actor.require(Scope.READ)
    sources = [_document(w.source) for w in wanted]
    related = await _related(db, sources, wanted, "Problem")
    ids = _candidate_ids(related)
    if not ids:
        return [[] for _ in wanted]
    shown = await problem_store.problems_by_ids(db, ids, viewer=Viewer.of(actor))
    found = {p.id: p for p in shown if p is not None}
    cities = await _cities(db, [*(d.city for d in sources), *(p.city for p in found.values())])
    return [
        _problems_for(source, w.size, hits, found, cities)
        for source, w, hits in zip(sources, wanted, related, strict=True)
    ]
