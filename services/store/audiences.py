"""A problem's or solution's new audience, carried to everything that copies it.

Its comments, adoptions, endorsements and outcome reports copy their subject's audience when
written (services/visibility.py, `claimed`); so do the events about it and them. When the
subject's visibility or team changes, they all take the new one, in the caller's
transaction; a WITHDRAWN event keeps the audience it told.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from cityexchange.services.store import search_index
from cityexchange.services.store.database import Database, Document, guarded, object_id
from cityexchange.services.store.visibility import AUDIENCE, stored_audience
from cityexchange.services.visibility import EVERYONE

# What copies a subject's audience, by the subject's kind: (collection, field naming it).
_COPIES: dict[str, tuple[tuple[str, str], ...]] = {
    "Problem": (("comments", "subjectId"),),
    "Solution": (
        ("comments", "subjectId"),
        ("adoptions", "solutionId"),
        ("endorsements", "solutionId"),
        ("outcome_reports", "solutionId"),
    ),
}
_SUBJECTS = {"Problem": "problems", "Solution": "solutions"}
WITHDRAWN = "WITHDRAWN"  # services/models.EventType.WITHDRAWN, as stored
EMBARGO_UNTIL = "visibility.embargo.until"


@guarded
async def reassign(
    db: Database,
    kind: str,
    id: str,
    audience: Sequence[str],
    *,
    session: AsyncClientSession,
) -> None:
    """Give the subject's copies, the events about it and its postings in the search index
    `audience` (the postings only whether it holds EVERYONE: services/store/search_index.py)."""
    keys = list(audience)
    await search_index.set_open(db, id, EVERYONE in keys, session=session)
    for collection, field in _COPIES[kind]:
        await db.db[collection].update_many(
            {field: object_id(id)}, {"$set": {AUDIENCE: keys}}, session=session
        )
    # Every event about it, those that told of an earlier change too (they keep whom they
    # were withheld from); a withdrawal stays with those it told.
    await db.events.update_many(
        {"thread": id, "type": {"$ne": WITHDRAWN}}, {"$set": {AUDIENCE: keys}}, session=session
    )


@guarded
async def claimed(
    db: Database, kind: str, id: str, *, session: AsyncClientSession
) -> tuple[str, ...] | None:
    """The subject's audience as the caller's transaction sees it, for a child written in it
    to copy (None: there is no such subject). It writes the subject too (a counter of
    children written), so a change of its audience committed meanwhile conflicts with the
    caller's transaction, which is retried and copies the new one."""
    doc = await db.db[_SUBJECTS[kind]].find_one_and_update(
        {"_id": object_id(id)},
        {"$inc": {"childWrites": 1}},
        projection={AUDIENCE: 1},
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    return stored_audience(doc) if doc else None


@guarded
async def embargoes_due(db: Database, *, at: datetime, limit: int) -> list[tuple[str, str]]:
    """(kind, id) of up to `limit` drafts whose embargo ended by `at`, earliest first."""
    due: list[tuple[datetime, str, str]] = []
    for kind, collection in _SUBJECTS.items():
        cursor = (
            db.db[collection]
            .find({EMBARGO_UNTIL: {"$lte": at}}, {EMBARGO_UNTIL: 1})
            .sort(EMBARGO_UNTIL, 1)
            .limit(limit)
        )
        due += [(_until(doc), kind, str(doc["_id"])) async for doc in cursor]
    return [(kind, id) for _, kind, id in sorted(due)[:limit]]


def _until(doc: Document) -> datetime:
    until: datetime = doc["visibility"]["embargo"]["until"]
    return until
