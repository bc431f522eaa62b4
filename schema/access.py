"""Mutations of who may see a problem or a solution: its visibility and its team
(services/access.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import strawberry

from cityexchange.schema.context import Info
from cityexchange.schema.errors import UserError, attempt
from cityexchange.schema.problems import Problem
from cityexchange.schema.relay import expect_global_id
from cityexchange.schema.retries import RETRY_KEY, RETRY_KEY_ECHO, Retry
from cityexchange.schema.solutions import Solution
from cityexchange.schema.visibility import VisibilityInput
from cityexchange.services import access, models, problems, solutions
from cityexchange.services.visibility import TeamRole

_SUBJECTS = ("Problem", "Solution")
_MEMBERS = ("Person", "Organisation")

VERSION = "The version you last read: a later one is a CONFLICT."


@strawberry.input
class SetVisibilityInput:
    subject_id: strawberry.ID = strawberry.field(description="A problem or a solution.")
    version: int = strawberry.field(description=VERSION)
    visibility: VisibilityInput
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.input
class AddTeamMemberInput:
    subject_id: strawberry.ID = strawberry.field(description="A problem or a solution.")
    version: int = strawberry.field(description=VERSION)
    member_id: strawberry.ID = strawberry.field(description="A person or an organisation.")
    role: TeamRole
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.input
class RemoveTeamMemberInput:
    subject_id: strawberry.ID = strawberry.field(description="A problem or a solution.")
    version: int = strawberry.field(description=VERSION)
    member_id: strawberry.ID = strawberry.field(description="A person or an organisation.")
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type(description="The problem or the solution as it is now (the other is null).")
class AccessPayload:
    problem: Problem | None
    solution: Solution | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


def _payload(
    subject: models.Problem | models.Solution | None,
    errors: list[UserError],
    key: str | None,
) -> AccessPayload:
    return AccessPayload(
        problem=Problem.from_domain(subject) if isinstance(subject, models.Problem) else None,
        solution=Solution.from_domain(subject) if isinstance(subject, models.Solution) else None,
        user_errors=errors,
        client_mutation_id=key,
    )


def _subject(global_id: str) -> tuple[access.Kind, str]:
    kind, id = expect_global_id(global_id, _SUBJECTS, field="subjectId")
    return ("Problem" if kind == "Problem" else "Solution"), id


def _member(global_id: str) -> access.MemberRef:
    kind, id = expect_global_id(global_id, _MEMBERS, field="memberId")
    return access.MemberRef("Person" if kind == "Person" else "Organisation", id)


async def _reload(info: Info, subject_id: str) -> models.Problem | models.Solution:
    """The subject as it is now: what a retry with the same clientMutationId returns."""
    kind, id = _subject(subject_id)
    ctx = info.context
    if kind == "Problem":
        return await problems.get(db=ctx.db, actor=ctx.actor(), id=id)
    return await solutions.get(db=ctx.db, actor=ctx.actor(), id=id)


async def _changed(
    info: Info,
    input: SetVisibilityInput | AddTeamMemberInput | RemoveTeamMemberInput,
    change: Callable[[access.Kind, str], Awaitable[models.Problem | models.Solution]],
) -> AccessPayload:
    """Run one change of the subject `input` names; a retry answers with it as it is now."""
    subject, errors = await attempt(
        lambda: change(*_subject(input.subject_id)),
        Retry(info, input, reload=lambda _: _reload(info, input.subject_id)),
    )
    return _payload(subject, errors, input.client_mutation_id)


@strawberry.type
class AccessMutations:
    @strawberry.mutation(
        description="Change who may see a problem or a solution: its team's lead or its "
        "city's admin. Those who gain it get its PUBLISHED event, those who lose it WITHDRAWN."
    )
    async def set_visibility(self, info: Info, input: SetVisibilityInput) -> AccessPayload:
        ctx = info.context
        return await _changed(
            info,
            input,
            lambda kind, id: access.set_visibility(
                db=ctx.db,
                actor=ctx.actor(),
                kind=kind,
                id=id,
                version=input.version,
                visibility=input.visibility.to_domain(),
            ),
        )

    @strawberry.mutation(
        description="Invite a person or an organisation to a problem's or solution's team, or "
        "change their role: its lead or its city's admin (scope: publish)."
    )
    async def add_team_member(self, info: Info, input: AddTeamMemberInput) -> AccessPayload:
        ctx = info.context
        return await _changed(
            info,
            input,
            lambda kind, id: access.add_team_member(
                db=ctx.db,
                actor=ctx.actor(),
                kind=kind,
                id=id,
                version=input.version,
                member=_member(input.member_id),
                role=input.role,
            ),
        )

    @strawberry.mutation(
        description="Take a person or an organisation off a team; its last lead stays."
    )
    async def remove_team_member(self, info: Info, input: RemoveTeamMemberInput) -> AccessPayload:
        ctx = info.context
        return await _changed(
            info,
            input,
            lambda kind, id: access.remove_team_member(
                db=ctx.db,
                actor=ctx.actor(),
                kind=kind,
                id=id,
                version=input.version,
                member=_member(input.member_id),
            ),
        )
