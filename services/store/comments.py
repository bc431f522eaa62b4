"""Comments, threaded one level deep, in MongoDB."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from cityexchange.services.errors import NotFound
from cityexchange.services.models import Comment, Hidden
from cityexchange.services.pages import ChildPages
from cityexchange.services.store.database import Database, Document, guarded, object_id, object_ids
from cityexchange.services.store.grouped import child_pages
from cityexchange.services.store.search_index import documents_after, set_languages, stored_language
from cityexchange.services.store.visibility import AUDIENCE, may_read, restricted, stored_audience
from cityexchange.services.text import Language
from cityexchange.services.visibility import Viewer

CHILD_ORDER = "C.CREATED_AT_ASC"


def _comment(doc: Document) -> Comment:
    hidden = doc.get("hidden")
    return Comment(
        id=str(doc["_id"]),
        subject_kind=doc["subjectKind"],
        subject_id=str(doc["subjectId"]),
        subject_city=doc["subjectCity"],
        parent_id=str(doc["parentId"]) if doc.get("parentId") else None,
        city=doc["city"],
        author_subject=doc["authorSubject"],
        author_id=str(doc["authorId"]) if doc.get("authorId") else None,
        body=doc["body"],
        created_at=doc["createdAt"],
        edited_at=doc.get("editedAt"),
        deleted_at=doc.get("deletedAt"),
        hidden=Hidden(hidden["by"], hidden["reason"], hidden["at"]) if hidden else None,
        language=stored_language(doc),
        audience=stored_audience(doc),
    )


@guarded
async def insert_comment(db: Database, comment: Comment, *, session: AsyncClientSession) -> Comment:
    doc = {
        "subjectKind": comment.subject_kind,
        "subjectId": object_id(comment.subject_id),
        "subjectCity": comment.subject_city,
        "parentId": object_id(comment.parent_id) if comment.parent_id else None,
        "city": comment.city,
        "authorSubject": comment.author_subject,
        "authorId": object_id(comment.author_id) if comment.author_id else None,
        "body": comment.body,
        "createdAt": comment.created_at,
        "editedAt": None,
        "deletedAt": None,
        "hidden": None,
        "language": comment.language.value,
        AUDIENCE: list(comment.audience),
    }
    result = await db.comments.insert_one(doc, session=session)
    return replace(comment, id=str(result.inserted_id))


@guarded
async def comments_by_ids(
    db: Database, ids: Sequence[str], *, viewer: Viewer
) -> list[Comment | None]:
    """Comments aligned to `ids` (None where missing or hidden from `viewer`), in one round
    trip."""
    wanted = object_ids(list(dict.fromkeys(ids)))
    by_id = {
        str(doc["_id"]): _comment(doc)
        async for doc in db.comments.find({"_id": {"$in": wanted}}).batch_size(len(wanted) + 1)
        if may_read(viewer, doc)
    }
    return [by_id.get(id_) for id_ in ids]


@guarded
async def get_comment(db: Database, id: str, *, viewer: Viewer) -> Comment:
    """The comment; NotFound when it is missing or hidden from `viewer` alike."""
    oid = object_id(id)
    doc = await db.comments.find_one({"_id": oid}) if oid else None
    if doc is None or not may_read(viewer, doc):
        raise NotFound("Comment", id)
    return _comment(doc)


async def threads_of(
    db: Database, subject_ids: Sequence[str], *, first: int, after: str | None, viewer: Viewer
) -> ChildPages[Comment]:
    """Top-level comments of each subject, oldest first, in one round trip."""
    return await child_pages(
        db.comments,
        parent_field="subjectId",
        parents=object_ids(subject_ids),
        match=restricted({"parentId": None}, viewer),
        descending=False,
        order=CHILD_ORDER,
        first=first,
        after=after,
        to_model=_comment,
        parse_id=object_id,
    )


async def replies_of(
    db: Database, comment_ids: Sequence[str], *, first: int, after: str | None, viewer: Viewer
) -> ChildPages[Comment]:
    """Replies to each comment, oldest first, in one round trip."""
    return await child_pages(
        db.comments,
        parent_field="parentId",
        parents=object_ids(comment_ids),
        match=restricted({}, viewer),
        descending=False,
        order=CHILD_ORDER,
        first=first,
        after=after,
        to_model=_comment,
        parse_id=object_id,
    )


async def _update(
    db: Database, id: str, guard: Document, changes: Document, *, session: AsyncClientSession
) -> Comment | None:
    doc = await db.comments.find_one_and_update(
        {"_id": object_id(id), **guard},
        {"$set": changes},
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    return _comment(doc) if doc else None


# Each verb sets only its own fields, guarded, so concurrent edits, deletions and
# moderation never overwrite each other with a stale copy.


@guarded
async def edit_comment(
    db: Database, id: str, body: str, *, at: datetime, session: AsyncClientSession
) -> Comment | None:
    """None when the comment was deleted meanwhile."""
    return await _update(
        db, id, {"deletedAt": None}, {"body": body, "editedAt": at}, session=session
    )


@guarded
async def delete_comment(
    db: Database, id: str, *, at: datetime, session: AsyncClientSession
) -> Comment | None:
    """Leave a tombstone; None when it was already deleted."""
    return await _update(
        db, id, {"deletedAt": None}, {"body": "", "deletedAt": at}, session=session
    )


@guarded
async def hide_comment(
    db: Database, id: str, hidden: Hidden, *, session: AsyncClientSession
) -> Comment | None:
    changes = {"hidden": {"by": hidden.by, "reason": hidden.reason, "at": hidden.at}}
    return await _update(db, id, {}, changes, session=session)


@guarded
async def comments_for_reindex(
    db: Database, *, after: str | None, limit: int
) -> list[tuple[Comment, bool]]:
    """The next `limit` comments by id, each with whether its language is stored."""
    return [
        (_comment(doc), "language" in doc)
        for doc in await documents_after(db.comments, after=after, limit=limit)
    ]


async def set_comment_languages(
    db: Database, languages: Mapping[str, Language], *, session: AsyncClientSession
) -> None:
    """Store the detected languages of comments written before they had one."""
    await set_languages(db.comments, languages, session=session)
