"""Ranked search and "more like this" over problems, solutions and comments (the model is in
services/ranking.py, the index in services/store/search_index.py); and the normalised words
of the older prefix filter (`filter.search` of the problem and solution lists)."""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from cityexchange.services import limits, ranking, text
from cityexchange.services.errors import InvalidInput
from cityexchange.services.highlights import Highlight, highlights
from cityexchange.services.pages import Page, PageRequest, decode_cursor, encode_cursor
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.ranking import (
    KINDS,
    SearchDocument,
    search_document_of_comment,
    search_document_of_problem,
    search_document_of_solution,
)
from cityexchange.services.store import search_index
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Hazard, ProblemStatus, Sector, SolutionStatus, Urgency
from cityexchange.services.text import Language
from cityexchange.services.visibility import Viewer

__all__ = [
    "KINDS",
    "Highlight",
    "SearchDocument",
    "highlights",
    "search_document_of_comment",
    "search_document_of_problem",
    "search_document_of_solution",
]

_WORD = re.compile(r"\w+")
MAX_TERMS = 8

QUERY_MAX = 500
MAX_RESULTS = 1_000  # ranked results a search can page through
CANDIDATES_PER_TERM = 300  # postings a query term reads, about (the impact threshold's aim)
FILTERED_CANDIDATES_PER_TERM = 1_200  # ... when kinds, cities or languages thin them out
RELATED_STATS_TERMS = 96  # a document's strongest terms whose statistics "related" reads
RELATED_TERMS = 24  # ... of which the best by tf-idf become its query
RELATED_TAXONOMY_TERMS = 8  # slots of those 24 kept for its hazards, sectors and tags
RELATED_MAX = 100
# "More like this" reads the head of each field: a document's strongest terms show early, and
# a solution may hold 250,000 characters, which analysed per call would stall every request.
RELATED_FIELD_CHARS = 4_000


def words(text: str) -> list[str]:
    """Lower-case, accent-free words of `text` ("Medellín's" -> ["medellin", "s"])."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _WORD.findall(plain)


def keywords(*texts: str | None, extra: Iterable[str] = ()) -> list[str]:
    """The distinct words a document can be found by."""
    found: dict[str, None] = {}
    for text_ in (*texts, *extra):
        for word in words(text_ or ""):
            found.setdefault(word, None)
    return list(found)


def terms(query: str) -> list[str]:
    """Search terms of a user's query; each must prefix-match one keyword of a result."""
    return list(dict.fromkeys(words(query)))[:MAX_TERMS]


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """Values within a field are alternatives (OR); fields combine with AND. Statuses and
    urgency restrict only the kinds that have them; comments match hazards and sectors
    through their thread."""

    kinds: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    hazards: tuple[Hazard, ...] = ()
    sectors: tuple[Sector, ...] = ()
    languages: tuple[Language, ...] = ()
    problem_statuses: tuple[ProblemStatus, ...] = ()
    solution_statuses: tuple[SolutionStatus, ...] = ()
    urgencies: tuple[Urgency, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None

    def checked(self) -> SearchFilter:
        for name in ("kinds", "cities", "hazards", "sectors", "languages", "urgencies"):
            limits.items(("filter", name), getattr(self, name))
        limits.items(("filter", "problemStatus"), self.problem_statuses)
        limits.items(("filter", "solutionStatus"), self.solution_statuses)
        unknown = [kind for kind in self.kinds if kind not in KINDS]
        if unknown:
            raise InvalidInput(("filter", "kinds"), f"unknown kind {unknown[0]!r}")
        limits.moment(("filter", "createdAfter"), self.created_after)
        limits.moment(("filter", "createdBefore"), self.created_before)
        return self

    def on_documents(self, kind: str) -> bool:
        """Whether candidates of `kind` must be checked against their documents."""
        statuses = self.problem_statuses if kind == "Problem" else self.solution_statuses
        urgencies = self.urgencies if kind == "Problem" else ()
        dated = self.created_after is not None or self.created_before is not None
        hazardous = bool(self.hazards or self.sectors)
        return kind == "Comment" or bool(hazardous or statuses or urgencies or dated)


@dataclass(frozen=True, slots=True)
class SearchHit:
    kind: str
    id: str
    score: float
    terms: frozenset[str]  # the query terms it matched
    fields: int  # mask of the fields they occur in (ranking.FIELDS)


@dataclass(slots=True)
class _Candidate:
    kind: str
    id: str
    best: dict[int, float] = field(default_factory=dict[int, float])  # per query group
    terms: set[str] = field(default_factory=set[str])
    fields: int = 0
    open: bool = True  # every posting read says every viewer may read it (Posting.open)

    @property
    def score(self) -> float:
        return round(sum(self.best.values()), 6)


async def language_of(given: Language | None, *texts: str | None) -> Language:
    """`given`, else the language the texts are detected in (in a thread: the first call
    loads the model)."""
    if given is not None:
        return given
    sample = "\n".join(t for t in texts if t)[: text.DETECT_CHARS]
    return await asyncio.to_thread(text.detect, sample)


def _threshold(stats: search_index.TermStats, want: int) -> int:
    """The lowest stored value at or above which about `want` of the term's postings lie:
    all of every impact above, and of the impact where `want` is reached the share still
    needed, by the tie-break (spread evenly over its range)."""
    total = 0
    for impact in sorted(stats.histogram, reverse=True):
        count = stats.histogram[impact]
        if total + count >= want:
            share = math.ceil(ranking.TIE_VALUES * (want - total) / count)
            return (
                (impact << ranking.TIE_BITS) + ranking.TIE_VALUES - min(share, ranking.TIE_VALUES)
            )
        total += count
    return 0


def _query(query: str) -> str:
    if len(query) > QUERY_MAX:  # before stripping: never scan a huge input twice
        raise InvalidInput("query", f"must be at most {QUERY_MAX} characters")
    return limits.text("query", query, max_length=QUERY_MAX)


def _fingerprint(query: str, filter: SearchFilter) -> str:
    return hashlib.sha256(repr((" ".join(query.split()), filter)).encode()).hexdigest()[:16]


def _cursor(fingerprint: str, hit: SearchHit) -> str:
    return encode_cursor(json.dumps(["search", fingerprint, hit.score, hit.kind, hit.id]))


def _position(cursor: str, fingerprint: str) -> tuple[float, str, str]:
    """The sort key a cursor holds: (-score, kind, id)."""
    try:
        parts: object = json.loads(decode_cursor(cursor, field="after"))
    except (ValueError, RecursionError):
        parts = None
    if not isinstance(parts, list) or len(parts) != 5 or parts[0] != "search":  # pyright: ignore[reportUnknownArgumentType]
        raise InvalidInput("after", "is not a cursor returned by this API")
    _, made_for, score, kind, id_ = parts  # pyright: ignore[reportUnknownVariableType]
    if made_for != fingerprint:
        raise InvalidInput("after", "belongs to another search: the query or filter differs")
    if (
        not isinstance(score, int | float)
        or isinstance(score, bool)
        or not math.isfinite(score)
        or kind not in KINDS
        or not isinstance(id_, str)
    ):
        raise InvalidInput("after", "is not a cursor returned by this API")
    return (-float(score), str(kind), id_)


async def search(
    *, db: Database, actor: Principal, query: str, filter: SearchFilter, request: PageRequest
) -> Page[SearchHit]:
    """A page of the problems, solutions and comments that best match `query`, best first;
    the ranking is the same on every page while the index is unchanged."""
    actor.require(Scope.READ)
    request.validate()
    if request.backward:
        raise InvalidInput("last", "search pages forward only: use first and after")
    size = request.size
    plain = _query(query)
    checked = filter.checked()
    fingerprint = _fingerprint(plain, checked)
    start_key = _position(request.after, fingerprint) if request.after is not None else None
    ranked = await _ranked(db, plain, checked, Viewer.of(actor))
    keys = [(-hit.score, hit.kind, hit.id) for hit in ranked]
    start = 0 if start_key is None else bisect.bisect_right(keys, start_key)
    items = ranked[start : start + size]

    async def count() -> int:
        return len(ranked)

    return Page(
        items=items,
        cursors=[_cursor(fingerprint, hit) for hit in items],
        has_next_page=start + size < len(ranked),
        has_previous_page=start_key is not None,
        count=count,
    )


async def _ranked(
    db: Database, query: str, filter: SearchFilter, viewer: Viewer
) -> list[SearchHit]:
    groups = ranking.query_groups(query, filter.languages or tuple(Language))
    if not groups:
        return []
    by_term: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        for term in group.terms:
            by_term.setdefault(term, []).append(index)
    stats = await search_index.statistics(db, by_term)
    live = sorted(t for t in by_term if t in stats.terms and stats.terms[t].df > 0)
    thinned = bool(filter.kinds or filter.cities or filter.languages)
    want = FILTERED_CANDIDATES_PER_TERM if thinned else CANDIDATES_PER_TERM
    found = await asyncio.gather(
        *(
            search_index.postings(
                db,
                term,
                at_least=_threshold(stats.terms[term], want),
                limit=2 * want,
                kinds=filter.kinds,
                cities=filter.cities,
                languages=[language.value for language in filter.languages],
            )
            for term in live
        )
    )
    candidates: dict[tuple[str, str], _Candidate] = {}
    for term, postings in zip(live, found, strict=True):
        weight = ranking.idf(
            stats.terms[term].df, stats.documents.get(ranking.language_of_term(term), 0)
        )
        for p in postings:
            c = candidates.get((p.kind, p.id)) or candidates.setdefault(
                (p.kind, p.id), _Candidate(p.kind, p.id)
            )
            contribution = weight * ranking.impact_of(p.impact)
            for index in by_term[term]:
                value = contribution * groups[index].weight
                if value > c.best.get(index, 0.0):
                    c.best[index] = value
            c.terms.add(term)
            c.fields |= p.fields
            c.open = c.open and p.open
    ordered = sorted(candidates.values(), key=lambda c: (-c.score, c.kind, c.id))
    head = ordered[: 2 * MAX_RESULTS]
    doubtful = [c for c in head if _doubtful(c, filter, viewer)]
    passing = await _passing(db, doubtful, filter, viewer)
    failing = {id(c) for c in doubtful if c.id not in passing.get(c.kind, ())}
    return [
        SearchHit(c.kind, c.id, c.score, frozenset(c.terms), c.fields)
        for c in head
        if id(c) not in failing
    ][:MAX_RESULTS]


def _doubtful(candidate: _Candidate, filter: SearchFilter, viewer: Viewer) -> bool:
    """Whether the candidate's document must be read to know if it is shown: for a filter
    the postings do not carry, or for the viewer's sake unless its postings say everyone
    may read it (or the viewer is the service itself)."""
    if filter.on_documents(candidate.kind):
        return True
    return not (viewer.is_system or candidate.open)


async def _passing(
    db: Database, candidates: Sequence[_Candidate], filter: SearchFilter, viewer: Viewer
) -> dict[str, set[str]]:
    """Per kind, which of `candidates` pass the filter and the visibility rule, read from
    their documents."""
    kinds = [k for k in KINDS if any(c.kind == k for c in candidates)]
    found = await asyncio.gather(
        *(
            search_index.matching(
                db,
                kind,
                [c.id for c in candidates if c.kind == kind],
                viewer=viewer,
                hazards=[h.value for h in filter.hazards],
                sectors=[s.value for s in filter.sectors],
                statuses=[
                    s.value
                    for s in (
                        filter.problem_statuses if kind == "Problem" else filter.solution_statuses
                    )
                ],
                urgencies=[u.value for u in filter.urgencies],
                created_after=filter.created_after,
                created_before=filter.created_before,
            )
            for kind in kinds
        )
    )
    return dict(zip(kinds, found, strict=True))


async def related(
    *,
    db: Database,
    document: SearchDocument,
    kinds: Collection[str],
    exclude_city: str | None,
    limit: int,
) -> list[tuple[str, str, float, list[str]]]:
    """Documents like `document` ("more like this"): its strongest terms by tf-idf, its
    hazards, sectors and tags as the query. Each result is (kind, id, relevance in (0, 1]
    relative to the document itself, the matched terms: words as written, or taxonomy
    terms such as "hazard:FLOOD"), best first; never `document` itself."""
    if not 1 <= limit <= RELATED_MAX:
        raise InvalidInput("first", f"must be between 1 and {RELATED_MAX}")
    if unknown := [kind for kind in kinds if kind not in KINDS]:
        raise InvalidInput("kinds", f"unknown kind {unknown[0]!r}")
    document = replace(
        document, fields={name: t[:RELATED_FIELD_CHARS] for name, t in document.fields.items()}
    )
    source = ranking.analyse(document)
    strongest = sorted(source.postings, key=lambda t: (-source.postings[t][0], t))
    # The document's hazards, sectors and tags are always part of the query: common, they
    # would lose every slot to rare incidental words, and they are what the text is about.
    taxonomy = [t for t in document.taxonomy if t in source.postings]
    wanted = list(dict.fromkeys([*strongest[:RELATED_STATS_TERMS], *taxonomy]))
    stats = await search_index.statistics(db, wanted)
    weights = {
        term: ranking.idf(
            stats.terms[term].df, stats.documents.get(ranking.language_of_term(term), 0)
        )
        * ranking.impact_of(source.postings[term][0])
        for term in wanted
        if term in stats.terms and stats.terms[term].df > 0
    }
    # Numbers ("520 miles", "2019") are chance matches, not a subject.
    words = [t for t in weights if t not in taxonomy and not t.split(":", 1)[1].isdigit()]
    named = sorted((t for t in taxonomy if t in weights), key=lambda t: (-weights[t], t))
    named = named[:RELATED_TAXONOMY_TERMS]
    chosen = sorted(words, key=lambda t: (-weights[t], t))[: RELATED_TERMS - len(named)]
    chosen += named
    found = await asyncio.gather(
        *(
            search_index.postings(
                db,
                term,
                at_least=_threshold(stats.terms[term], CANDIDATES_PER_TERM),
                limit=2 * CANDIDATES_PER_TERM,
                kinds=kinds,
                exclude_city=exclude_city,
                exclude_id=document.id or None,
            )
            for term in chosen
        )
    )
    best = sum(weights[t] * ranking.impact_of(source.postings[t][0]) for t in chosen) or 1.0
    scores: dict[tuple[str, str], float] = {}
    matched: dict[tuple[str, str], list[str]] = {}
    for term, postings in zip(chosen, found, strict=True):
        for p in postings:
            key = (p.kind, p.id)
            scores[key] = scores.get(key, 0.0) + weights[term] * ranking.impact_of(p.impact)
            matched.setdefault(key, []).append(term)
    top = sorted(scores, key=lambda k: (-scores[k], k))[:limit]
    surface = _surface_words(document, {t for key in top for t in matched[key]})
    return [
        (
            kind,
            id,
            round(min(1.0, scores[(kind, id)] / best), 6),
            [surface.get(t, t) for t in matched[(kind, id)]],
        )
        for kind, id in top
    ]


def _surface_words(document: SearchDocument, terms: Collection[str]) -> dict[str, str]:
    """Each word term as it is first written in the document (case-folded)."""
    prefix = f"{document.language.value}:"
    wanted = {t[len(prefix) :] for t in terms if t.startswith(prefix)}
    found: dict[str, str] = {}
    for content in document.fields.values():
        for token in text.tokens(content, document.language):
            if token.stem in wanted and prefix + token.stem not in found:
                found[prefix + token.stem] = content[token.start : token.end].casefold()
    return found
