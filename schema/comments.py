"""Comment type and the mutations to discuss problems and solutions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from cityexchange.schema.cities import City, Person, attach_cities, load_city
from cityexchange.schema.context import Info
from cityexchange.schema.errors import UserError, attempt
from cityexchange.schema.languages import Language
from cityexchange.schema.problems import Problem
from cityexchange.schema.related import Attached, Resolved, attach_pages, fields_of, gather_quietly
from cityexchange.schema.relay import Connection, Node, connection, expect_global_id, to_global_id
from cityexchange.schema.retries import RETRY_KEY, RETRY_KEY_ECHO, Retry, created
from cityexchange.schema.solutions import Solution
from cityexchange.services import comments, models
from cityexchange.services.errors import NotFound
from cityexchange.services.pages import ChildPages

if TYPE_CHECKING:
    from strawberry.types.nodes import Selection

CommentSubject = Annotated[Problem | Solution, strawberry.union("CommentSubject")]


@strawberry.type(description="A comment on a problem or solution; replies are one level deep.")
class Comment(Node):
    created_at: datetime
    edited_at: datetime | None
    deleted_at: datetime | None = strawberry.field(
        description="Set when the author deleted it; the comment stays as a tombstone."
    )
    hidden: bool = strawberry.field(description="Hidden by the subject's city's admins.")
    hidden_reason: str | None
    body: str | None = strawberry.field(description="Markdown; null once deleted or hidden.")
    language: Language = strawberry.field(description="Given when added, or detected.")
    domain: strawberry.Private[models.Comment]
    attached: strawberry.Private[Attached] = field(default_factory=Attached)

    @classmethod
    def from_domain(cls, comment: models.Comment) -> Comment:
        shown = comment.deleted_at is None and comment.hidden is None
        return cls(
            id=to_global_id("Comment", comment.id),
            created_at=comment.created_at,
            edited_at=comment.edited_at,
            deleted_at=comment.deleted_at,
            hidden=comment.hidden is not None,
            hidden_reason=comment.hidden.reason if comment.hidden else None,
            body=comment.body if shown else None,
            language=comment.language,
            domain=comment,
        )

    @classmethod
    async def attach_related(
        cls, info: Info, items: Sequence[Comment], selections: Sequence[Selection]
    ) -> None:
        """What `selections` ask of these comments, loaded for all of them at once."""
        loaders = info.context.loaders
        wanted = fields_of(selections, _COMMENT)
        await gather_quietly(
            [
                *attach_cities(info, items, lambda c: c.domain.city, wanted),
                *([_attach_authors(info, items)] if "author" in wanted else []),
                *attach_pages(
                    info,
                    [c for c in items if c.domain.parent_id is None],
                    wanted.get("replies", []),
                    parent_of=lambda c: c.domain.id,
                    load=loaders.replies_by_comment.load_many,
                    build=lambda page: connection(page, Comment.from_domain, attached=True),
                ),
            ]
        )

    @strawberry.field(
        description="Null when the author is not one of the city's people, "
        "or the comment was deleted.",
        graphql_type=Person | None,
    )
    def author(self, info: Info) -> Resolved[Person | None]:
        if self.domain.author_id is None or self.domain.deleted_at is not None:
            return None
        if "author" in self.attached:
            return self.attached["author"]
        return self._author(info, self.domain.author_id)

    async def _author(self, info: Info, author_id: str) -> Person | None:
        person = await info.context.loaders.person_by_id.load(author_id)
        return Person.from_domain(person) if person else None

    @strawberry.field(description="The author's city.", graphql_type=City)
    def city(self, info: Info) -> Resolved[City]:
        return self.attached.get("city") or load_city(info, self.domain.city)

    @strawberry.field
    async def subject(self, info: Info) -> CommentSubject | None:
        loaders = info.context.loaders
        if self.domain.subject_kind == "Problem":
            problem = await loaders.problem_by_id.load(self.domain.subject_id)
            return Problem.from_domain(problem) if problem else None
        solution = await loaders.solution_by_id.load(self.domain.subject_id)
        return Solution.from_domain(solution) if solution else None

    @strawberry.field(description="The comment this one replies to.")
    async def parent(self, info: Info) -> Comment | None:
        if self.domain.parent_id is None:
            return None
        parent = await info.context.loaders.comment_by_id.load(self.domain.parent_id)
        return Comment.from_domain(parent) if parent else None

    @strawberry.field(
        description="Replies, oldest first (replies have none).",
        graphql_type=Connection["Comment"],
    )
    def replies(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Resolved[Connection[Comment]]:
        if self.domain.parent_id is not None:
            return connection(
                ChildPages[models.Comment]({}).page(self.domain.id, after=after),
                Comment.from_domain,
            )
        return self.attached.get(("replies", first, after)) or self._replies(info, first, after)

    async def _replies(
        self, info: Info, first: int | None, after: str | None
    ) -> Connection[Comment]:
        page = await info.context.loaders.replies_by_comment.load(
            (self.domain.id, first, after, None)
        )
        return connection(page, Comment.from_domain)


_COMMENT = frozenset({"Comment", "Node"})


async def _attach_authors(info: Info, items: Sequence[Comment]) -> None:
    """The authors of the comments that show one: one batch for the list."""
    shown = [c for c in items if c.domain.author_id is not None and c.domain.deleted_at is None]
    ids = list(dict.fromkeys(c.domain.author_id for c in shown if c.domain.author_id))
    found = await info.context.loaders.person_by_id.load_many(ids)
    people = {id: Person.from_domain(p) if p else None for id, p in zip(ids, found, strict=True)}
    for comment in shown:
        comment.attached["author"] = people[comment.domain.author_id or ""]


@strawberry.input
class AddCommentInput:
    subject_id: strawberry.ID = strawberry.field(description="A Problem or Solution id.")
    body: str
    parent_id: strawberry.ID | None = None
    language: Language | None = strawberry.field(
        default=None, description="The body's language; detected when not given."
    )
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.input
class EditCommentInput:
    id: strawberry.ID
    body: str
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.input
class DeleteCommentInput:
    id: strawberry.ID
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.input
class HideCommentInput:
    id: strawberry.ID
    reason: str
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type
class AddCommentPayload:
    comment: Comment | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


@strawberry.type
class CommentPayload:
    comment: Comment | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


def _comment_id(global_id: str, field: str = "id") -> str:
    return expect_global_id(global_id, ("Comment",), field=field)[1]


async def _reload(info: Info, id: str) -> models.Comment:
    """The comment as it is now: what a retry with the same clientMutationId returns."""
    [comment] = await comments.by_ids(db=info.context.db, actor=info.context.actor(), ids=[id])
    if comment is None:
        raise NotFound("Comment", id)
    return comment


def _maybe(comment: models.Comment | None) -> Comment | None:
    return Comment.from_domain(comment) if comment else None


@strawberry.type
class CommentMutations:
    @strawberry.mutation(description="Comment on a problem or solution (scope: comment).")
    async def add_comment(self, info: Info, input: AddCommentInput) -> AddCommentPayload:
        ctx = info.context

        async def add() -> models.Comment:
            kind, subject_id = expect_global_id(
                input.subject_id, ("Problem", "Solution"), field="subjectId"
            )
            parent = _comment_id(input.parent_id, "parentId") if input.parent_id else None
            return await comments.add(
                db=ctx.db,
                actor=ctx.actor(),
                subject_kind=kind,
                subject_id=subject_id,
                parent_id=parent,
                body=input.body,
                language=input.language,
            )

        comment, errors = await attempt(
            add, Retry(info, input, reload=created(lambda id: _reload(info, id)))
        )
        return AddCommentPayload(
            comment=_maybe(comment), user_errors=errors, client_mutation_id=input.client_mutation_id
        )

    @strawberry.mutation(description="Rewrite your own comment.")
    async def edit_comment(self, info: Info, input: EditCommentInput) -> CommentPayload:
        ctx = info.context
        comment, errors = await attempt(
            lambda: comments.edit(
                db=ctx.db, actor=ctx.actor(), id=_comment_id(input.id), body=input.body
            ),
            Retry(info, input, reload=lambda _: _reload(info, _comment_id(input.id))),
        )
        return CommentPayload(
            comment=_maybe(comment), user_errors=errors, client_mutation_id=input.client_mutation_id
        )

    @strawberry.mutation(description="Delete your own comment; a tombstone keeps the thread.")
    async def delete_comment(self, info: Info, input: DeleteCommentInput) -> CommentPayload:
        ctx = info.context
        comment, errors = await attempt(
            lambda: comments.delete(db=ctx.db, actor=ctx.actor(), id=_comment_id(input.id)),
            Retry(info, input, reload=lambda _: _reload(info, _comment_id(input.id))),
        )
        return CommentPayload(
            comment=_maybe(comment), user_errors=errors, client_mutation_id=input.client_mutation_id
        )

    @strawberry.mutation(description="Hide a comment on your city's content (scope: admin).")
    async def hide_comment(self, info: Info, input: HideCommentInput) -> CommentPayload:
        ctx = info.context
        comment, errors = await attempt(
            lambda: comments.hide(
                db=ctx.db, actor=ctx.actor(), id=_comment_id(input.id), reason=input.reason
            ),
            Retry(info, input, reload=lambda _: _reload(info, _comment_id(input.id))),
        )
        return CommentPayload(
            comment=_maybe(comment), user_errors=errors, client_mutation_id=input.client_mutation_id
        )
