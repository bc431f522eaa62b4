"""A problem's or solution's new audience, carried to everything that copies it.

Its comments, adoptions, endorsements and outcome reports copy their subject's audience when
written (services/visibility.py); so do the events about it and them. When the subject's
visibility or team changes, they all take the new one, in the caller's transaction. Events
that told some viewers of a change (they hold `audNot`) keep the audience they were told to.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pymongo.asynchronous.client_session import AsyncClientSession

from cityexchange.services.store.database import Database, Document, guarded, object_id
from cityexchange.services.store.visibility import AUDIENCE, WITHHELD

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
    """Give the subject's copies, and the events about it, `audience`."""
    keys = list(audience)
    for collection, field in _COPIES[kind]:
        await db.db[collection].update_many(
            {field: object_id(id)}, {"$set": {AUDIENCE: keys}}, session=session
        )
    await db.events.update_many(
        {"thread": id, WITHHELD: {"$exists": False}}, {"$set": {AUDIENCE: keys}}, session=session
    )


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
