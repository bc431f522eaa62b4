"""Use cases for comments: add, reply, edit, delete (tombstone) and hide (moderation)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from cityexchange.services import audiences, limits, ranking, search
from cityexchange.services.clock import now
from cityexchange.services.errors import Forbidden, InvalidInput, NotFound
from cityexchange.services.models import Comment, Event, EventType, Hidden
from cityexchange.services.pages import ChildPages, PageRequest
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store import comments as store
from cityexchange.services.store import events as event_store
from cityexchange.services.store import people as people_store
from cityexchange.services.store import problems as problem_store
from cityexchange.services.store import search_index
from cityexchange.services.store import solutions as solution_store
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Hazard, Sector
from cityexchange.services.text import Language
from cityexchange.services.visibility import Viewer

SUBJECT_KINDS = ("Problem", "Solution")


@dataclass(frozen=True, slots=True)
class Thread:
    """A problem or solution as events about it or its discussion need it for filtering."""

    kind: str
    id: str
    city: str
    hazards: tuple[Hazard, ...]
    sectors: tuple[Sector, ...]
    tags: tuple[str, ...]
    audience: tuple[str, ...]  # its subject's, which its comments copy

    def event(self, type: EventType, comment: Comment | None, actor: Principal) -> Event | None:
        """An event about `comment`, for the audience it carries as written."""
        if comment is None:
            return None
        return Event(
            type=type, occurred_at=now(), city=actor.city, actor=actor.subject,
            subject_kind="Comment", subject_id=comment.id, subject_city=self.city,
            thread_id=self.id, hazards=self.hazards, sectors=self.sectors, tags=self.tags,
            audience=comment.audience,
        )  # fmt: skip

    def own_event(self, type: EventType, actor: Principal) -> Event:
        """An event about the problem or solution itself."""
        return Event(
            type=type, occurred_at=now(), city=actor.city, actor=actor.subject,
            subject_kind=self.kind, subject_id=self.id, subject_city=self.city,
            thread_id=self.id, hazards=self.hazards, sectors=self.sectors, tags=self.tags,
            audience=self.audience,
        )  # fmt: skip


async def thread_of(db: Database, kind: str, id: str, *, viewer: Viewer) -> Thread:
    """The problem or solution `id`; NotFound if there is none or `viewer` may not see it."""
    if kind == "Problem":
        (problem,) = await problem_store.problems_by_ids(db, [id], viewer=viewer)
        if problem is not None:
            p = problem
            return Thread(kind, p.id, p.city, p.hazards, p.sectors, p.tags, p.audience)
    elif kind == "Solution":
        (solution,) = await solution_store.solutions_by_ids(db, [id], viewer=viewer)
        if solution is not None:
            s, d = solution, solution.details
            return Thread(kind, s.id, s.city, s.hazards, d.sectors, d.tags, s.audience)
    raise NotFound(kind if kind in SUBJECT_KINDS else "Subject", id)


async def add(
    *,
    db: Database,
    actor: Principal,
    subject_kind: str,
    subject_id: str,
    parent_id: str | None,
    body: str,
    language: Language | None = None,
) -> Comment:
    """Comment on a problem or solution, or reply to a top-level comment on it; its language
    is detected from the body when not given."""
    actor.require(Scope.COMMENT)
    text = limits.text("body", body, max_length=limits.COMMENT_MAX)
    viewer = Viewer.of(actor)
    thread = await thread_of(db, subject_kind, subject_id, viewer=viewer)
    if parent_id is not None:
        parent = await store.get_comment(db, parent_id, viewer=viewer)
        if parent.subject_id != subject_id:
            raise InvalidInput("parentId", "is a comment on another subject")
        if parent.parent_id is not None:
            raise InvalidInput(
                "parentId", "replies are one level deep: reply to the thread's first comment"
            )
    person = await people_store.person_in_city(db, city=actor.city, id=actor.subject)
    comment = Comment(
        id="",
        subject_kind=subject_kind,
        subject_id=subject_id,
        subject_city=thread.city,
        parent_id=parent_id,
        city=actor.city,
        author_subject=actor.subject,
        author_id=person.id if person else None,
        body=text,
        created_at=now(),
        edited_at=None,
        deleted_at=None,
        hidden=None,
        language=await search.language_of(language, text),
    )
    analysis = ranking.analyse(ranking.search_document_of_comment(comment))

    async def write(session: Any) -> Comment:
        audience = await audiences.copied(db, actor, subject_kind, subject_id, session=session)
        saved = await store.insert_comment(db, replace(comment, audience=audience), session=session)
        await search_index.index_new(db, analysis.for_id(saved.id), session=session)
        return saved

    return await event_store.record(
        db, write, lambda saved: thread.event(EventType.COMMENT_ADDED, saved, actor)
    )


async def _own(db: Database, actor: Principal, id: str) -> Comment:
    actor.require(Scope.COMMENT)
    comment = await store.get_comment(db, id, viewer=Viewer.of(actor))
    if comment.city != actor.city or comment.author_subject != actor.subject:
        raise Forbidden("only the author may change this comment")
    if comment.deleted_at is not None:
        raise InvalidInput("id", "this comment was deleted")
    return comment


def _present(comment: Comment | None) -> Comment:
    if comment is None:
        raise InvalidInput("id", "this comment was deleted")
    return comment


async def edit(*, db: Database, actor: Principal, id: str, body: str) -> Comment:
    """The author rewrites a comment; `editedAt` records when."""
    comment = await _own(db, actor, id)
    text = limits.text("body", body, max_length=limits.COMMENT_MAX)
    thread = await thread_of(db, comment.subject_kind, comment.subject_id, viewer=Viewer.of(actor))
    analysis = ranking.analyse(ranking.search_document_of_comment(replace(comment, body=text)))

    async def write(session: Any) -> Comment | None:
        saved = await store.edit_comment(db, id, text, at=now(), session=session)
        if saved is not None and saved.hidden is None:
            await search_index.index(db, analysis, session=session)
        return saved

    edited = await event_store.record(
        db, write, lambda saved: thread.event(EventType.COMMENT_EDITED, saved, actor)
    )
    return _present(edited)


async def delete(*, db: Database, actor: Principal, id: str) -> Comment:
    """The author deletes a comment; a tombstone keeps the thread's shape."""
    comment = await _own(db, actor, id)
    thread = await thread_of(db, comment.subject_kind, comment.subject_id, viewer=Viewer.of(actor))

    async def write(session: Any) -> Comment | None:
        saved = await store.delete_comment(db, id, at=now(), session=session)
        await search_index.unindex(db, "Comment", id, session=session)
        return saved

    deleted = await event_store.record(
        db, write, lambda saved: thread.event(EventType.COMMENT_DELETED, saved, actor)
    )
    return _present(deleted)


async def hide(*, db: Database, actor: Principal, id: str, reason: str) -> Comment:
    """An admin of the city that owns the subject hides a comment, with a reason."""
    actor.require(Scope.ADMIN)
    comment = await store.get_comment(db, id, viewer=Viewer.of(actor))
    actor.require_own_city(comment.subject_city, "discussion")
    why = limits.text("reason", reason, max_length=limits.SUMMARY_MAX)
    hidden = Hidden(by=actor.subject, reason=why, at=now())
    thread = await thread_of(db, comment.subject_kind, comment.subject_id, viewer=Viewer.of(actor))

    async def write(session: Any) -> Comment | None:
        saved = await store.hide_comment(db, id, hidden, session=session)
        await search_index.unindex(db, "Comment", id, session=session)
        return saved

    saved = await event_store.record(
        db, write, lambda saved: thread.event(EventType.COMMENT_HIDDEN, saved, actor)
    )
    if saved is None:
        raise NotFound("Comment", id)
    return saved


async def by_ids(*, db: Database, actor: Principal, ids: Sequence[str]) -> list[Comment | None]:
    actor.require(Scope.READ)
    return await store.comments_by_ids(db, ids, viewer=Viewer.of(actor))


async def threads_of(
    *, db: Database, actor: Principal, subject_ids: Sequence[str], request: PageRequest
) -> ChildPages[Comment]:
    """Top-level comments of each of many problems or solutions, batched."""
    actor.require(Scope.READ)
    request.validate()
    return await store.threads_of(
        db, subject_ids, first=request.size, after=request.after, viewer=Viewer.of(actor)
    )


async def replies_of(
    *, db: Database, actor: Principal, comment_ids: Sequence[str], request: PageRequest
) -> ChildPages[Comment]:
    """Replies to each of many comments, batched."""
    actor.require(Scope.READ)
    request.validate()
    return await store.replies_of(
        db, comment_ids, first=request.size, after=request.after, viewer=Viewer.of(actor)
    )
