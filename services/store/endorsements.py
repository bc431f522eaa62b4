"""Endorsements of solutions by other cities, one per (solution, city), in MongoDB."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from cityexchange.services.errors import NotFound
from cityexchange.services.models import Endorsement, EndorsementKind
from cityexchange.services.pages import ChildPages
from cityexchange.services.store.database import Database, Document, guarded, object_id, object_ids
from cityexchange.services.store.grouped import child_pages
from cityexchange.services.store.visibility import AUDIENCE, may_read, restricted, stored_audience
from cityexchange.services.visibility import Viewer

CHILD_ORDER = "E.CREATED_AT_DESC"


def _endorsements(db: Database) -> AsyncCollection[Document]:
    return db.db["endorsements"]


def _endorsement(doc: Document) -> Endorsement:
    return Endorsement(
        id=str(doc["_id"]),
        solution_id=str(doc["solutionId"]),
        city=doc["city"],
        by=doc["by"],
        kind=EndorsementKind(doc["kind"]),
        note=doc.get("note"),
        created_at=doc["createdAt"],
        updated_at=doc["updatedAt"],
        audience=stored_audience(doc),
    )


@guarded
async def endorsement_of(
    db: Database, solution_id: str, city: str, *, session: AsyncClientSession | None = None
) -> Endorsement | None:
    doc = await _endorsements(db).find_one(
        {"solutionId": object_id(solution_id), "city": city}, session=session
    )
    return _endorsement(doc) if doc else None


@guarded
async def insert_endorsement(
    db: Database, endorsement: Endorsement, *, session: AsyncClientSession
) -> Endorsement:
    e = endorsement
    doc = {
        "solutionId": object_id(e.solution_id),
        "city": e.city,
        "by": e.by,
        "kind": e.kind.value,
        "note": e.note,
        "createdAt": e.created_at,
        "updatedAt": e.updated_at,
        AUDIENCE: list(e.audience),
    }
    result = await _endorsements(db).insert_one(doc, session=session)
    return replace(endorsement, id=str(result.inserted_id))


@guarded
async def revise_endorsement(
    db: Database, endorsement: Endorsement, *, session: AsyncClientSession
) -> Endorsement:
    """Write the endorsement's kind, note, author and time over the stored one."""
    e = endorsement
    doc = await _endorsements(db).find_one_and_update(
        {"_id": object_id(e.id)},
        {"$set": {"kind": e.kind.value, "note": e.note, "by": e.by, "updatedAt": e.updated_at}},
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    if doc is None:
        raise NotFound("Endorsement", e.id)
    return _endorsement(doc)


@guarded
async def endorsements_by_ids(
    db: Database, ids: Sequence[str], *, viewer: Viewer
) -> list[Endorsement | None]:
    """Endorsements aligned to `ids` (None where missing or hidden from `viewer`), in one round
    trip."""
    wanted = object_ids(list(dict.fromkeys(ids)))
    found = _endorsements(db).find({"_id": {"$in": wanted}}).batch_size(len(wanted) + 1)
    by_id = {str(doc["_id"]): _endorsement(doc) async for doc in found if may_read(viewer, doc)}
    return [by_id.get(id_) for id_ in ids]


async def endorsements_of(
    db: Database, solution_ids: Sequence[str], *, first: int, after: str | None, viewer: Viewer
) -> ChildPages[Endorsement]:
    """Newest endorsements of each solution, for many solutions in one round trip."""
    return await child_pages(
        _endorsements(db),
        parent_field="solutionId",
        parents=object_ids(solution_ids),
        match=restricted({}, viewer),
        descending=True,
        order=CHILD_ORDER,
        first=first,
        after=after,
        to_model=_endorsement,
        parse_id=object_id,
    )
