"""Adoptions of solutions by other cities, with their stage history, in MongoDB."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from cityexchange.services.errors import NotFound
from cityexchange.services.models import Adoption, AdoptionStage, StageChange
from cityexchange.services.pages import ChildPages
from cityexchange.services.store.database import Database, Document, guarded, object_id, object_ids
from cityexchange.services.store.grouped import child_pages
from cityexchange.services.store.visibility import AUDIENCE, may_read, restricted, stored_audience
from cityexchange.services.visibility import Viewer

CHILD_ORDER = "A.CREATED_AT_DESC"


def _adoptions(db: Database) -> AsyncCollection[Document]:
    return db.db["adoptions"]


class Standing(NamedTuple):
    """Where one city stands with one solution: the roll-up's raw material."""

    solution_id: str
    city: str
    stage: AdoptionStage


def _change_doc(change: StageChange) -> Document:
    return {"stage": change.stage.value, "at": change.at, "by": change.by, "note": change.note}


def _adoption(doc: Document) -> Adoption:
    adapted = doc.get("adaptedSolutionId")
    return Adoption(
        id=str(doc["_id"]),
        solution_id=str(doc["solutionId"]),
        solution_city=doc["solutionCity"],
        city=doc["city"],
        stages=tuple(
            StageChange(AdoptionStage(s["stage"]), s["at"], s["by"], s.get("note"))
            for s in doc["stages"]
        ),
        adapted_solution_id=str(adapted) if adapted else None,
        created_at=doc["createdAt"],
        updated_at=doc["updatedAt"],
        audience=stored_audience(doc),
    )


@guarded
async def adoption_of(
    db: Database, solution_id: str, city: str, *, session: AsyncClientSession | None = None
) -> Adoption | None:
    """The city's adoption of the solution, if it has one."""
    doc = await _adoptions(db).find_one(
        {"solutionId": object_id(solution_id), "city": city}, session=session
    )
    return _adoption(doc) if doc else None


@guarded
async def insert_adoption(
    db: Database, adoption: Adoption, *, session: AsyncClientSession
) -> Adoption:
    adapted = adoption.adapted_solution_id
    doc = {
        "solutionId": object_id(adoption.solution_id),
        "solutionCity": adoption.solution_city,
        "city": adoption.city,
        "stage": adoption.stage.value,
        "stages": [_change_doc(s) for s in adoption.stages],
        "adaptedSolutionId": object_id(adapted) if adapted else None,
        "createdAt": adoption.created_at,
        "updatedAt": adoption.updated_at,
        AUDIENCE: list(adoption.audience),
    }
    result = await _adoptions(db).insert_one(doc, session=session)
    return replace(adoption, id=str(result.inserted_id))


@guarded
async def add_stage(
    db: Database,
    adoption: Adoption,
    change: StageChange,
    *,
    adapted_solution_id: str | None,
    session: AsyncClientSession,
) -> Adoption:
    """Append `change` to the history (it becomes the current stage); a new adapted
    solution replaces the linked one, None leaves it."""
    changes: Document = {"stage": change.stage.value, "updatedAt": change.at}
    if adapted_solution_id is not None:
        changes["adaptedSolutionId"] = object_id(adapted_solution_id)
    doc = await _adoptions(db).find_one_and_update(
        {"_id": object_id(adoption.id)},
        {"$set": changes, "$push": {"stages": _change_doc(change)}},
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    if doc is None:
        raise NotFound("Adoption", adoption.id)
    return _adoption(doc)


@guarded
async def adoptions_by_ids(
    db: Database, ids: Sequence[str], *, viewer: Viewer
) -> list[Adoption | None]:
    """Adoptions aligned to `ids` (None where missing or hidden from `viewer`), in one round
    trip."""
    wanted = object_ids(list(dict.fromkeys(ids)))
    by_id = {
        str(doc["_id"]): _adoption(doc)
        async for doc in _adoptions(db).find({"_id": {"$in": wanted}}).batch_size(len(wanted) + 1)
        if may_read(viewer, doc)
    }
    return [by_id.get(id_) for id_ in ids]


async def adoptions_of(
    db: Database, solution_ids: Sequence[str], *, first: int, after: str | None, viewer: Viewer
) -> ChildPages[Adoption]:
    """Newest adoptions of each solution, for many solutions in one round trip."""
    return await child_pages(
        _adoptions(db),
        parent_field="solutionId",
        parents=object_ids(solution_ids),
        match=restricted({}, viewer),
        descending=True,
        order=CHILD_ORDER,
        first=first,
        after=after,
        to_model=_adoption,
        parse_id=object_id,
    )


@guarded
async def standings(db: Database, solution_ids: Sequence[str], *, viewer: Viewer) -> list[Standing]:
    """Every city's current stage with each of these solutions that `viewer` may see, in one
    round trip (at most one per member city and solution)."""
    wanted = object_ids(list(dict.fromkeys(solution_ids)))
    cursor = (
        _adoptions(db)
        .find(
            {"solutionId": {"$in": wanted}},
            {"solutionId": 1, "city": 1, "stage": 1, AUDIENCE: 1},
        )
        .sort([("solutionId", 1), ("createdAt", 1), ("_id", 1)])
    )
    return [
        Standing(str(doc["solutionId"]), doc["city"], AdoptionStage(doc["stage"]))
        async for doc in cursor
        if may_read(viewer, doc)
    ]
