"""The search index in MongoDB: one posting per (term, document), statistics per term.

The only module that knows how the index is stored; a second backend (Atlas Search's
`$search`) would replace this module and keep services/ranking.py's scores as its fallback.

`search_postings`: {t: term, k: kind, d: id, c: city, l: language, q: impact, f: field mask,
o: true when every viewer may read the document (absent otherwise)}. A search reads the
documents of its other candidates to apply the visibility rule; `o` is written with the
postings and kept in step by `set_open`, in the transaction that changes the audience.
`search_terms`: {_id: term, df: documents, h: {impact: documents}} (the histogram of the
term's impacts), and one {_id: "#docs", n: {language: documents, all: documents}}.

Every query filters on exactly the fields of one index and checks anything else on what it
read: SecantusDB, the embedded database, plans an index for such a filter and scans the whole
collection for any other (a `hint` makes it use the index, but reads each document found
about thirty times slower). MongoDB picks the same indexes; both then sort what the index
bounded, in memory or in index order.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from cityexchange.services.ranking import Analysis, impact_part, stored
from cityexchange.services.store.database import (
    Database,
    Document,
    guarded,
    object_id,
    object_ids,
)
from cityexchange.services.store.visibility import AUDIENCE, may_read
from cityexchange.services.text import Language
from cityexchange.services.visibility import Viewer

POSTINGS = "search_postings"
TERMS = "search_terms"
DOCUMENTS = "#docs"  # not a term: terms always hold a ":"
# The indexes (declared in services/store/indexes.py): "term_impact" (t, q desc, d) and
# "document" (d).


@dataclass(frozen=True, slots=True)
class TermStats:
    df: int
    histogram: dict[int, int]  # documents per impact (1..IMPACT_MAX)


@dataclass(frozen=True, slots=True)
class Statistics:
    terms: dict[str, TermStats]
    documents: dict[str, int]  # per language code, and "all"


@dataclass(frozen=True, slots=True)
class Posting:
    kind: str
    id: str
    term: str
    impact: int
    fields: int
    open: bool = False  # every viewer may read the document (ranking.Analysis.open)


def _postings(db: Database) -> AsyncCollection[Document]:
    return db.db[POSTINGS]


def _terms(db: Database) -> AsyncCollection[Document]:
    return db.db[TERMS]


async def index(db: Database, analysis: Analysis, *, session: AsyncClientSession) -> None:
    """Replace the document's postings (inside the caller's transaction)."""
    await replace(db, [analysis], (), session=session)


async def index_new(db: Database, analysis: Analysis, *, session: AsyncClientSession) -> None:
    """Index a document just inserted in the caller's transaction: it has no postings to
    replace, so this skips reading and deleting them (two round trips of every publish)."""
    await replace(db, [analysis], (), session=session, fresh=True)


async def unindex(db: Database, kind: str, id: str, *, session: AsyncClientSession) -> None:
    """Remove the document from the index (inside the caller's transaction)."""
    await replace(db, [], [(kind, id)], session=session)


@guarded
async def replace(
    db: Database,
    analyses: Sequence[Analysis],
    removed: Iterable[tuple[str, str]],
    *,
    session: AsyncClientSession,
    fresh: bool = False,
) -> None:
    """Index `analyses` in place of what the index held for them, and drop `removed`,
    keeping every term's statistics exact; four round trips for any number of documents
    (two when `fresh`: documents inserted in this transaction, with nothing to replace)."""
    ids = [*(a.id for a in analyses), *(id for _, id in removed)]
    if not ids:
        return
    df: Counter[str] = Counter()
    histogram: defaultdict[str, Counter[int]] = defaultdict(Counter)
    documents: Counter[str] = Counter()
    old_languages: dict[str, str] = {}
    if not fresh:
        old = _postings(db).find(
            {"d": {"$in": ids}}, {"_id": 0, "t": 1, "q": 1, "d": 1, "l": 1}, session=session
        )
        async for posting in old:
            old_languages[posting["d"]] = posting["l"]
            df[posting["t"]] -= 1
            histogram[posting["t"]][impact_part(posting["q"])] -= 1
    for language in old_languages.values():
        documents[language] -= 1
        documents["all"] -= 1
    new: list[Document] = []
    for a in analyses:
        if a.postings:
            documents[a.language.value] += 1
            documents["all"] += 1
        for term, (q, mask) in a.postings.items():
            df[term] += 1
            histogram[term][q] += 1
            new.append(
                {
                    "t": term,
                    "k": a.kind,
                    "d": a.id,
                    "c": a.city,
                    "l": a.language.value,
                    "q": stored(q, a.id),
                    "f": mask,
                    **({"o": True} if a.open else {}),
                }
            )
    if not fresh:
        await _postings(db).delete_many({"d": {"$in": ids}}, session=session)
    if new:
        await _postings(db).insert_many(new, session=session)
    updates = [
        UpdateOne({"_id": term}, {"$inc": changes}, upsert=True)
        for term in sorted({*df, *histogram})
        if (changes := _changes(df[term], histogram[term]))
    ]
    if changed := {f"n.{language}": n for language, n in documents.items() if n}:
        updates.append(UpdateOne({"_id": DOCUMENTS}, {"$inc": changed}, upsert=True))
    if updates:
        await _terms(db).bulk_write(updates, ordered=False, session=session)


@guarded
async def set_open(db: Database, id: str, open: bool, *, session: AsyncClientSession) -> None:
    """Mark the document's postings open (every viewer may read it) or not, in the
    transaction that changes its audience (services/store/audiences.py). By `d` alone, the
    `document` index: ids are unique across kinds."""
    change = {"$set": {"o": True}} if open else {"$unset": {"o": ""}}
    await _postings(db).update_many({"d": id}, change, session=session)


def _changes(df: int, histogram: Counter[int]) -> dict[str, int]:
    changes = {f"h.{b}": n for b, n in histogram.items() if n}
    if df:
        changes["df"] = df
    return changes


@guarded
async def clear(db: Database) -> None:
    """Empty the index (the start of a rebuild)."""
    await _postings(db).delete_many({})
    await _terms(db).delete_many({})


@guarded
async def statistics(db: Database, terms: Collection[str]) -> Statistics:
    """Document frequencies and impact histograms of `terms`, and the document counts; one
    round trip."""
    found: dict[str, TermStats] = {}
    documents: dict[str, int] = {}
    async for doc in _terms(db).find({"_id": {"$in": [*terms, DOCUMENTS]}}):
        if doc["_id"] == DOCUMENTS:
            documents = {str(k): int(v) for k, v in doc.get("n", {}).items()}
            continue
        counts = {int(q): int(n) for q, n in doc.get("h", {}).items() if q.isdigit() and n > 0}
        found[doc["_id"]] = TermStats(int(doc.get("df", 0)), counts)
    return Statistics(found, documents)


@guarded
async def postings(
    db: Database,
    term: str,
    *,
    at_least: int,
    limit: int,
    kinds: Collection[str] = (),
    cities: Collection[str] = (),
    languages: Collection[str] = (),
    exclude_city: str | None = None,
    exclude_id: str | None = None,
) -> list[Posting]:
    """The strongest postings of `term` at or above the stored value `at_least`, strongest
    first, read through `term_impact` within that range; the other conditions are applied
    to what was read (a filter of other fields would cost the index on SecantusDB)."""
    cursor = (
        _postings(db)
        .find(
            {"t": term, "q": {"$gte": at_least}},
            {"_id": 0, "k": 1, "d": 1, "c": 1, "l": 1, "q": 1, "f": 1, "o": 1},
        )
        .sort([("q", DESCENDING), ("d", ASCENDING)])
        .limit(limit)
        .batch_size(limit)
    )
    return [
        Posting(doc["k"], doc["d"], term, impact_part(doc["q"]), doc["f"], doc.get("o") is True)
        async for doc in cursor
        if (not kinds or doc["k"] in kinds)
        and (not cities or doc["c"] in cities)
        and (not languages or doc["l"] in languages)
        and doc["c"] != exclude_city
        and doc["d"] != exclude_id
    ]


def _aware(moment: datetime | None) -> datetime | None:
    """A bound comparable with stored datetimes (read as UTC): naive ones are UTC."""
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


@guarded
async def matching(
    db: Database,
    kind: str,
    ids: Sequence[str],
    *,
    viewer: Viewer,
    hazards: Collection[str] = (),
    sectors: Collection[str] = (),
    statuses: Collection[str] = (),
    urgencies: Collection[str] = (),
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> set[str]:
    """Which of `ids` (of `kind`) `viewer` may see and pass the filters the postings do not
    carry: one read by `_id $in` of the fields they need, checked here. Comments must be
    shown (neither hidden nor deleted); a comment passes the hazard and sector filters
    through its thread (one more read)."""
    after, before = _aware(created_after), _aware(created_before)

    def dated(doc: Document) -> bool:
        created = doc.get("createdAt")
        return (after is None or (created is not None and created >= after)) and (
            before is None or (created is not None and created < before)
        )

    wanted = object_ids(ids)
    if kind == "Comment":
        fields = {
            "subjectKind": 1,
            "subjectId": 1,
            "hidden": 1,
            "deletedAt": 1,
            "createdAt": 1,
            AUDIENCE: 1,
        }
        docs = [
            doc
            for doc in await _by_ids(db.comments, wanted, fields)
            if doc.get("hidden") is None
            and doc.get("deletedAt") is None
            and dated(doc)
            and may_read(viewer, doc)
        ]
        if not hazards and not sectors:
            return {str(doc["_id"]) for doc in docs}
        threads: dict[str, list[str]] = defaultdict(list)
        for doc in docs:
            threads[doc["subjectKind"]].append(str(doc["subjectId"]))
        passing: set[str] = set()
        for thread_kind, thread_ids in threads.items():
            passing |= await matching(
                db, thread_kind, thread_ids, viewer=viewer, hazards=hazards, sectors=sectors
            )
        return {str(doc["_id"]) for doc in docs if str(doc["subjectId"]) in passing}
    collection = db.problems if kind == "Problem" else db.solutions
    checks: list[tuple[str, Collection[str]]] = [
        ("hazards", hazards),
        ("sectors", sectors),
        ("status", statuses),
        ("urgency", urgencies if kind == "Problem" else ()),
    ]
    fields = {"hazards": 1, "sectors": 1, "status": 1, "urgency": 1, "createdAt": 1, AUDIENCE: 1}
    found: set[str] = set()
    for doc in await _by_ids(collection, wanted, fields):
        values = {name: _values(doc.get(name)) for name, _ in checks}
        if not may_read(viewer, doc):
            continue
        if dated(doc) and all(not want or values[name] & set(want) for name, want in checks):
            found.add(str(doc["_id"]))
    return found


IDS_PER_READ = 200


async def _by_ids(
    collection: AsyncCollection[Document], ids: Sequence[ObjectId], fields: Document
) -> list[Document]:
    """The documents of `ids`, read by `_id $in` in slices of IDS_PER_READ side by side. The
    embedded database checks each document against the whole `$in` list (quadratic: 1,600
    ids took it 2.4 s in one read, 0.36 s as eight); on MongoDB each slice is index lookups,
    and a search's at most 2,000 candidates make ten reads."""
    slices = [ids[i : i + IDS_PER_READ] for i in range(0, len(ids), IDS_PER_READ)]

    async def read(part: Sequence[ObjectId]) -> list[Document]:
        return [doc async for doc in collection.find({"_id": {"$in": list(part)}}, fields)]

    return [doc for found in await asyncio.gather(*map(read, slices)) for doc in found]


def _values(value: Any) -> set[str]:
    """A stored field as a set of strings: a list's items, or the one value."""
    if isinstance(value, list):
        return {str(v) for v in cast(list[Any], value)}
    return set() if value is None else {str(value)}


@guarded
async def explain_postings(db: Database, term: str, *, at_least: int) -> Document:
    """The query plan of one term's postings query (for the benchmark and the docs)."""
    command: Document = {
        "find": POSTINGS,
        "filter": {"t": term, "q": {"$gte": at_least}},
        "sort": {"q": -1, "d": 1},
    }
    result: Document = await db.db.command("explain", command, verbosity="executionStats")
    return result


def stored_language(doc: Document) -> Language:
    """A document's language; EN for one written before documents had a language. Not
    detected on read: every read would pay for it, and the answer could change with the
    detector. `cityexchange reindex` detects and stores the languages once."""
    try:
        return Language(doc.get("language") or Language.EN)
    except ValueError:
        return Language.EN


async def documents_after(
    collection: AsyncCollection[Document], *, after: str | None, limit: int
) -> list[Document]:
    """The next `limit` documents of `collection` by id (a reindex's batch)."""
    query: Document = {"_id": {"$gt": object_id(after)}} if after is not None else {}
    cursor = collection.find(query).sort("_id", ASCENDING).limit(limit).batch_size(limit)
    return await cursor.to_list(limit)


async def set_languages(
    collection: AsyncCollection[Document],
    languages: Mapping[str, Language],
    *,
    session: AsyncClientSession,
) -> None:
    """Store detected languages where a document has none yet (a reindex's migration)."""
    if languages:
        await collection.bulk_write(
            [
                UpdateOne(
                    {"_id": object_id(id), "language": {"$exists": False}},
                    {"$set": {"language": language.value}},
                )
                for id, language in languages.items()
            ],
            ordered=False,
            session=session,
        )
