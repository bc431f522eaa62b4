"""The ranking model: what a document is indexed under, and how a query scores it (BM25F).

A document's fields are weighted and length-normalised into one pseudo term frequency per
term, saturated as BM25 does (k1), and stored as an *impact* in 1..IMPACT_MAX: the score of a
document is the sum over query words of idf(term) x impact, idf computed when the query runs
from the term's document frequency. The length normalisation pivots on a fixed typical length
per field rather than the corpus average, so an impact never changes after it is written (no
re-scoring as the corpus grows); see docs/discovery.md for that and the other approximations.

Terms: "<language>:<stem>" for words (each language's words are its own vocabulary, so stop
words and stems never mix across languages), "hazard:FLOOD" / "sector:WATER" / "tag:<tag>"
for the taxonomy, shared by every language: that is where languages meet.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from cityexchange.services import text
from cityexchange.services.models import Comment, Problem, Solution
from cityexchange.services.text import Language
from cityexchange.services.visibility import EVERYONE

KINDS = ("Problem", "Solution", "Comment")
K1 = 1.2
IMPACT_MAX = 1023
TIE_BITS = 16  # below the impact, a stored posting holds a hash of its document's id
TIE_VALUES = 1 << TIE_BITS
MAX_POSTINGS = 1_500  # a document is indexed under at most its 1,500 strongest terms
TAXONOMY_IMPACT = 0.8  # a declared hazard, sector or tag counts as a good text match
TAXONOMY_WEIGHT = 0.6  # ... and a query reaching it only through the lexicon a bit less
MAX_QUERY_WORDS = 16


@dataclass(frozen=True, slots=True)
class Field:
    bit: int  # in a posting's mask of the fields a term occurs in
    weight: float
    pivot: int  # a typical length in words: shorter fields count more per occurrence
    b: float  # how strongly length normalises


# In highlight order.
FIELDS: dict[str, Field] = {
    "title": Field(1, 3.0, 8, 0.3),
    "summary": Field(2, 1.5, 40, 0.5),
    "tags": Field(4, 2.0, 5, 0.3),
    "lessons": Field(8, 1.2, 120, 0.6),
    "outcomes": Field(16, 1.2, 30, 0.5),
    "body": Field(32, 1.0, 400, 0.75),
}


@dataclass(frozen=True, slots=True)
class SearchDocument:
    """What the index knows of a problem, solution or comment."""

    kind: str
    id: str
    city: str
    language: Language
    fields: dict[str, str]
    taxonomy: tuple[str, ...] = ()
    # Whether every viewer may read it (its audience holds EVERYONE): a search then need not
    # read the document to know. Comments are never open (hidden ones are checked too).
    open: bool = False


def _joined(parts: Iterable[str | None]) -> str:
    # Items of a list field, kept apart in a highlight's snippet (the dot is no word).
    return " · ".join(part for part in parts if part)


def _taxonomy(
    hazards: Iterable[str], sectors: Iterable[str], tags: Iterable[str]
) -> tuple[str, ...]:
    return (
        *(f"hazard:{h}" for h in hazards),
        *(f"sector:{s}" for s in sectors),
        *(tag_term(t) for t in tags),
    )


def tag_term(tag: str) -> str:
    return "tag:" + text.fold(" ".join(tag.split()))


def search_document_of_problem(problem: Problem) -> SearchDocument:
    p = problem
    return SearchDocument(
        kind="Problem",
        id=p.id,
        city=p.city,
        language=p.language,
        fields={
            "title": p.title,
            "summary": p.summary,
            "body": p.body or "",
            "tags": _joined(p.tags),
        },
        taxonomy=_taxonomy(p.hazards, p.sectors, p.tags),
        open=EVERYONE in p.audience,
    )


def search_document_of_solution(solution: Solution) -> SearchDocument:
    s, d = solution, solution.details
    t = d.transferability
    lessons = _joined(
        [
            *d.success_factors,
            *d.limiting_factors,
            *(t.prerequisites if t else ()),
            t.context if t else None,
            t.do_differently if t else None,
        ]
    )
    outcomes = _joined(f"{o.metric} {o.unit or ''} {o.note or ''}" for o in d.outcomes)
    return SearchDocument(
        kind="Solution",
        id=s.id,
        city=s.city,
        language=s.language,
        fields={
            "title": s.title,
            "summary": s.summary,
            "body": d.body or "",
            "lessons": lessons,
            "outcomes": outcomes,
            "tags": _joined(d.tags),
        },
        taxonomy=_taxonomy(s.hazards, d.sectors, d.tags),
        open=EVERYONE in s.audience,
    )


def search_document_of_comment(comment: Comment) -> SearchDocument:
    """Comments are found by their words; their thread's taxonomy is the thread's."""
    c = comment
    return SearchDocument(
        kind="Comment", id=c.id, city=c.city, language=c.language, fields={"body": c.body}
    )


def quantise(impact: float) -> int:
    return max(1, min(IMPACT_MAX, round(impact / (K1 + 1) * IMPACT_MAX)))


def impact_of(q: int) -> float:
    return q / IMPACT_MAX * (K1 + 1)


def stored(q: int, id: str) -> int:
    """The value a posting is stored and sorted by: its impact, then a fixed pseudo-random
    tie-break, so that a range of stored values can take a share of equal impacts."""
    tie = int.from_bytes(hashlib.blake2b(id.encode(), digest_size=2).digest(), "big")
    return q << TIE_BITS | tie


def impact_part(value: int) -> int:
    return value >> TIE_BITS


@dataclass(frozen=True, slots=True)
class Analysis:
    """A document as the index stores it: term -> (impact, field mask)."""

    kind: str
    id: str
    city: str
    language: Language
    postings: dict[str, tuple[int, int]] = field(default_factory=dict[str, tuple[int, int]])
    open: bool = False  # SearchDocument.open

    def for_id(self, id: str) -> Analysis:
        return replace(self, id=id)


def analyse(document: SearchDocument) -> Analysis:
    """The document's terms with their impacts; linear in its text."""
    pseudo: dict[str, float] = {}
    masks: dict[str, int] = {}
    for name, content in document.fields.items():
        spec = FIELDS[name]
        found = text.stems(content, document.language)
        if not found:
            continue
        # Longer than typical dilutes; shorter does not boost (BM25's would: a one-line
        # body would outweigh a title).
        norm = max(1.0, 1 - spec.b + spec.b * len(found) / spec.pivot)
        for stem, count in Counter(found).items():
            term = f"{document.language.value}:{stem}"
            pseudo[term] = pseudo.get(term, 0.0) + spec.weight * count / norm
            masks[term] = masks.get(term, 0) | spec.bit
    postings = {
        term: (quantise(tf * (K1 + 1) / (tf + K1)), masks[term])
        for term, tf in sorted(pseudo.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_POSTINGS]
    }
    for term in document.taxonomy:
        postings[term] = (quantise(TAXONOMY_IMPACT), FIELDS["tags"].bit)
    return Analysis(
        document.kind, document.id, document.city, document.language, postings, document.open
    )


@dataclass(frozen=True, slots=True)
class QueryGroup:
    """Alternative terms for one thing the query asks for: a document scores the best one."""

    word: str
    terms: tuple[str, ...]
    weight: float = 1.0


def query_groups(query: str, languages: Sequence[Language]) -> list[QueryGroup]:
    """The query's words, each analysed in every language searched, and the taxonomy terms
    its words name in any of them. The query is plain text: no operators."""
    groups: list[QueryGroup] = []
    words = list(dict.fromkeys(text.surface_words(query)))[:MAX_QUERY_WORDS]
    for word in words:
        alternatives = {tag_term(word)}
        stems_of = {language: text.stem_word(word, language) for language in languages}
        # A function word of one searched language ("de") is, in another's vocabulary, a rare
        # fragment of foreign names with a high idf: in a query of several words, only a tag
        # (measured on tests/relevance: nDCG@10 0.642 -> 0.658, docs/discovery.md).
        if len(words) > 1 and None in stems_of.values():
            stems_of = {}
        for language, stem in stems_of.items():
            if stem:
                alternatives.add(f"{language.value}:{stem}")
        if len(alternatives) > 1:  # a stop word in every language is only a tag
            groups.append(QueryGroup(word, tuple(sorted(alternatives))))
    phrase = " ".join(words)
    if len(words) > 1 and len(phrase) <= 50:
        groups.append(QueryGroup(phrase, (tag_term(phrase),)))
    bounded = " ".join(words)
    named = sorted({term for language in languages for term in text.taxonomy_of(bounded, language)})
    groups.extend(QueryGroup(term, (term,), TAXONOMY_WEIGHT) for term in named)
    return groups


def idf(df: int, documents: int) -> float:
    """BM25's idf, never negative."""
    return math.log(1 + (max(documents, df) - df + 0.5) / (df + 0.5))


def language_of_term(term: str) -> str:
    """The document count a term's idf is relative to: its language's, or all ("all")."""
    head = term.split(":", 1)[0]
    return head if len(head) == 2 else "all"
