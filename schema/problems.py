"""Problem type, filter, and the mutations a city uses to publish and manage its problems."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from cityexchange.schema import suggestions
from cityexchange.schema.cities import City, Person, attach_cities, load_city
from cityexchange.schema.context import Info
from cityexchange.schema.errors import UserError, attempt
from cityexchange.schema.languages import Language
from cityexchange.schema.organisations import organisation_ids
from cityexchange.schema.related import Attached, Resolved, attach_pages, fields_of, gather_quietly
from cityexchange.schema.relay import Connection, Node, connection, expect_global_id, to_global_id
from cityexchange.schema.retries import RETRY_KEY, RETRY_KEY_ECHO, Retry, created
from cityexchange.schema.taxonomy import Hazard, ProblemStatus, Sector, Urgency
from cityexchange.schema.visibility import TeamMember, Visibility, VisibilityInput, chosen, team_of
from cityexchange.services import models, problems
from cityexchange.services.listing import ListingFilter

if TYPE_CHECKING:
    from strawberry.types.nodes import Selection

    from cityexchange.schema.comments import Comment
    from cityexchange.schema.organisations import Organisation
    from cityexchange.schema.solutions import Solution


@strawberry.input(description="Values within a field are alternatives; fields combine (AND).")
class ProblemFilter:
    cities: list[str] | None = None
    hazards: list[Hazard] | None = None
    sectors: list[Sector] | None = None
    tags: list[str] | None = None
    status: list[ProblemStatus] | None = None
    urgency: list[Urgency] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    search: str | None = strawberry.field(
        default=None, description="Words to find in title, summary and tags (prefix match)."
    )


def listing_of(filter: ProblemFilter | None) -> ListingFilter:
    if filter is None:
        return ListingFilter()
    return ListingFilter(
        cities=tuple(filter.cities or ()),
        hazards=tuple(filter.hazards or ()),
        sectors=tuple(filter.sectors or ()),
        tags=tuple(filter.tags or ()),
        statuses=tuple(s.value for s in filter.status or ()),
        urgencies=tuple(filter.urgency or ()),
        created_after=filter.created_after,
        created_before=filter.created_before,
        updated_after=filter.updated_after,
        updated_before=filter.updated_before,
        search=filter.search,
    )


@strawberry.type
class FacedBy:
    at: datetime
    city_slug: strawberry.Private[str]

    @strawberry.field
    async def city(self, info: Info) -> City:
        return await load_city(info, self.city_slug)


@strawberry.type(
    description="Another city's offer of help: a solution of its own, a person who knows, or both."
)
class HelpOffer:
    offered_at: datetime
    note: str | None
    city_slug: strawberry.Private[str]
    solution_id: strawberry.Private[str | None]
    person_id: strawberry.Private[str | None]

    @strawberry.field(description="The city that offered.")
    async def city(self, info: Info) -> City:
        return await load_city(info, self.city_slug)

    @strawberry.field(description="The solution offered; null if none was, or you may not see it.")
    async def solution(
        self, info: Info
    ) -> Annotated[Solution, strawberry.lazy("cityexchange.schema.solutions")] | None:
        from cityexchange.schema.solutions import Solution

        if self.solution_id is None:
            return None
        found = await info.context.loaders.solution_by_id.load(self.solution_id)
        return Solution.from_domain(found) if found else None

    @strawberry.field(description="The person offered, to talk to; null if none was.")
    async def person(self, info: Info) -> Person | None:
        if self.person_id is None:
            return None
        found = await info.context.loaders.person_by_id.load(self.person_id)
        return Person.from_domain(found) if found else None


@strawberry.type(description="A shock or stress a city faces.")
class Problem(Node):
    title: str
    summary: str
    body: str | None = strawberry.field(description="Markdown.")
    hazards: list[Hazard]
    sectors: list[Sector]
    tags: list[str]
    status: ProblemStatus
    urgency: Urgency
    stakeholders: list[str]
    affected_population: int | None
    faced_by: list[FacedBy] = strawberry.field(description='Cities that "face this too".')
    help_offers: list[HelpOffer] = strawberry.field(
        description="Other cities' offers of help (offerHelp), oldest first."
    )
    language: Language = strawberry.field(description="Given when published, or detected.")
    visibility: Visibility
    team: list[TeamMember] = strawberry.field(
        description="Who works on it, with their roles (its lead, contributors, observers)."
    )
    version: int
    created_at: datetime
    updated_at: datetime
    domain: strawberry.Private[models.Problem]
    attached: strawberry.Private[Attached] = field(default_factory=Attached)

    @classmethod
    def from_domain(cls, problem: models.Problem) -> Problem:
        return cls(
            id=to_global_id("Problem", problem.id),
            title=problem.title,
            summary=problem.summary,
            body=problem.body,
            hazards=list(problem.hazards),
            sectors=list(problem.sectors),
            tags=list(problem.tags),
            status=problem.status,
            urgency=problem.urgency,
            stakeholders=list(problem.stakeholders),
            affected_population=problem.affected_population,
            faced_by=[FacedBy(at=f.at, city_slug=f.city) for f in problem.faced_by],
            help_offers=[
                HelpOffer(
                    offered_at=o.at,
                    note=o.note,
                    city_slug=o.city,
                    solution_id=o.solution_id,
                    person_id=o.person_id,
                )
                for o in problem.help_offers
            ],
            visibility=Visibility.from_domain(problem.visibility),
            team=team_of(problem.team),
            language=problem.language,
            version=problem.version,
            created_at=problem.created_at,
            updated_at=problem.updated_at,
            domain=problem,
        )

    @strawberry.field(graphql_type=City)
    def city(self, info: Info) -> Resolved[City]:
        return self.attached.get("city") or load_city(info, self.domain.city)

    similar_problems: suggestions.ProblemSuggestionConnection = suggestions.SIMILAR_PROBLEMS
    suggested_solutions: suggestions.SolutionSuggestionConnection = suggestions.SUGGESTED_SOLUTIONS

    @classmethod
    async def attach_related(
        cls, info: Info, items: Sequence[Problem], selections: Sequence[Selection]
    ) -> None:
        """What `selections` ask of these problems, loaded for all of them at once."""
        from cityexchange.schema.comments import Comment
        from cityexchange.schema.solutions import Solution

        loaders = info.context.loaders
        wanted = fields_of(selections, _PROBLEM)
        await gather_quietly(
            [
                *attach_cities(info, items, lambda p: p.domain.city, wanted),
                *attach_pages(
                    info,
                    items,
                    wanted.get("solutions", []),
                    parent_of=lambda p: p.domain.id,
                    load=loaders.solutions_by_problem.load_many,
                    build=lambda page: connection(page, Solution.from_domain, attached=True),
                ),
                *attach_pages(
                    info,
                    items,
                    wanted.get("comments", []),
                    parent_of=lambda p: p.domain.id,
                    load=loaders.comments_by_subject.load_many,
                    build=lambda page: connection(page, Comment.from_domain, attached=True),
                ),
            ]
        )

    @strawberry.field(
        description="The organisations in the exchange it involves (`stakeholders`: the others)."
    )
    async def stakeholder_organisations(
        self, info: Info
    ) -> list[Annotated[Organisation, strawberry.lazy("cityexchange.schema.organisations")]]:
        from cityexchange.schema.organisations import organisations_of

        return await organisations_of(info, self.domain.stakeholder_ids)

    @strawberry.field(description="The solutions the city marked as having answered it.")
    async def answered_by(
        self, info: Info
    ) -> list[Annotated[Solution, strawberry.lazy("cityexchange.schema.solutions")]]:
        from cityexchange.schema.solutions import Solution

        found = await info.context.loaders.solution_by_id.load_many(self.domain.answered_by)
        return [Solution.from_domain(s) for s in found if s is not None]

    @strawberry.field(
        description="Solutions (of any city) that address this problem.",
        graphql_type=Connection[
            Annotated["Solution", strawberry.lazy("cityexchange.schema.solutions")]
        ],
    )
    def solutions(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Resolved[Connection[Solution]]:
        return self.attached.get(("solutions", first, after)) or self._solutions(info, first, after)

    async def _solutions(
        self, info: Info, first: int | None, after: str | None
    ) -> Connection[Solution]:
        from cityexchange.schema.solutions import Solution

        page = await info.context.loaders.solutions_by_problem.load(
            (self.domain.id, first, after, None)
        )
        return connection(page, Solution.from_domain)

    @strawberry.field(
        description="Top-level comments, oldest first.",
        graphql_type=Connection[
            Annotated["Comment", strawberry.lazy("cityexchange.schema.comments")]
        ],
    )
    def comments(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Resolved[Connection[Comment]]:
        return self.attached.get(("comments", first, after)) or self._comments(info, first, after)

    async def _comments(
        self, info: Info, first: int | None, after: str | None
    ) -> Connection[Comment]:
        from cityexchange.schema.comments import Comment

        page = await info.context.loaders.comments_by_subject.load(
            (self.domain.id, first, after, None)
        )
        return connection(page, Comment.from_domain)


_PROBLEM = frozenset({"Problem", "Node", "CommentSubject"})


@strawberry.input
class PublishProblemInput:
    title: str
    summary: str
    hazards: list[Hazard]
    body: str | None = None
    sectors: list[Sector] | None = None
    tags: list[str] | None = None
    urgency: Urgency | None = None
    stakeholders: list[str] | None = None
    stakeholder_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Organisations in the exchange it involves."
    )
    affected_population: int | None = None
    language: Language | None = strawberry.field(
        default=None, description="The text's language; detected when not given."
    )
    visibility: VisibilityInput | None = None
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type
class PublishProblemPayload:
    problem: Problem | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


@strawberry.input
class UpdateProblemInput:
    id: strawberry.ID
    version: int = strawberry.field(description="The version you last read.")
    title: str | None = None
    summary: str | None = None
    body: str | None = None
    hazards: list[Hazard] | None = None
    sectors: list[Sector] | None = None
    tags: list[str] | None = None
    status: ProblemStatus | None = None
    urgency: Urgency | None = None
    stakeholders: list[str] | None = None
    stakeholder_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Organisations in the exchange it involves (replaces them)."
    )
    affected_population: int | None = None
    language: Language | None = None
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type
class UpdateProblemPayload:
    problem: Problem | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


@strawberry.input
class MarkProblemAnsweredInput:
    problem_id: strawberry.ID
    version: int
    solution_ids: list[strawberry.ID]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.input
class FaceProblemTooInput:
    problem_id: strawberry.ID
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.input
class OfferHelpInput:
    problem_id: strawberry.ID
    solution_id: strawberry.ID | None = strawberry.field(
        default=None, description="A solution of your city's."
    )
    person_id: strawberry.ID | None = strawberry.field(
        default=None, description="A person of your city's, to talk to."
    )
    note: str | None = None
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY)


@strawberry.type
class ProblemPayload:
    problem: Problem | None
    user_errors: list[UserError]
    client_mutation_id: str | None = strawberry.field(default=None, description=RETRY_KEY_ECHO)


def _problem_id(global_id: str, field: str) -> str:
    return expect_global_id(global_id, ("Problem",), field=field)[1]


async def _reload(info: Info, id: str) -> models.Problem:
    """The problem as it is now: what a retry with the same clientMutationId returns."""
    return await problems.get(db=info.context.db, actor=info.context.actor(), id=id)


def _maybe(problem: models.Problem | None) -> Problem | None:
    return Problem.from_domain(problem) if problem else None


@strawberry.type
class ProblemMutations:
    @strawberry.mutation(description="Publish a problem of your city (scope: publish).")
    async def publish_problem(
        self, info: Info, input: PublishProblemInput
    ) -> PublishProblemPayload:
        ctx = info.context

        def draft() -> problems.ProblemDraft:  # in the attempt: a bad input is a userError
            return problems.ProblemDraft(
                title=input.title,
                summary=input.summary,
                hazards=input.hazards,
                body=input.body,
                sectors=input.sectors,
                tags=input.tags,
                urgency=input.urgency,
                stakeholders=input.stakeholders,
                stakeholder_ids=organisation_ids(input.stakeholder_ids, "stakeholderIds"),
                affected_population=input.affected_population,
                language=input.language,
                visibility=chosen(input.visibility),
            )

        problem, errors = await attempt(
            lambda: problems.publish(db=ctx.db, actor=ctx.actor(), draft=draft()),
            Retry(info, input, reload=created(lambda id: _reload(info, id))),
        )
        return PublishProblemPayload(
            problem=_maybe(problem), user_errors=errors, client_mutation_id=input.client_mutation_id
        )

    @strawberry.mutation(description="Edit or close one of your city's problems.")
    async def update_problem(self, info: Info, input: UpdateProblemInput) -> UpdateProblemPayload:
        ctx = info.context

        def changes() -> problems.ProblemChanges:  # in the attempt: a bad id is a userError
            return problems.ProblemChanges(
                title=input.title,
                summary=input.summary,
                body=input.body,
                hazards=input.hazards,
                sectors=input.sectors,
                tags=input.tags,
                status=input.status,
                urgency=input.urgency,
                stakeholders=input.stakeholders,
                stakeholder_ids=organisation_ids(input.stakeholder_ids, "stakeholderIds"),
                affected_population=input.affected_population,
                language=input.language,
            )

        problem, errors = await attempt(
            lambda: problems.update(
                db=ctx.db,
                actor=ctx.actor(),
                id=_problem_id(input.id, "id"),
                version=input.version,
                changes=changes(),
            ),
            Retry(info, input, reload=lambda _: _reload(info, _problem_id(input.id, "id"))),
        )
        return UpdateProblemPayload(
            problem=_maybe(problem), user_errors=errors, client_mutation_id=input.client_mutation_id
        )

    @strawberry.mutation(description="Mark which solution(s) answered your city's problem.")
    async def mark_problem_answered(
        self, info: Info, input: MarkProblemAnsweredInput
    ) -> ProblemPayload:
        ctx = info.context
        problem, errors = await attempt(
            lambda: problems.mark_answered(
                db=ctx.db,
                actor=ctx.actor(),
                id=_problem_id(input.problem_id, "problemId"),
                version=input.version,
                solution_ids=[
                    expect_global_id(s, ("Solution",), field="solutionIds")[1]
                    for s in input.solution_ids
                ],
            ),
            Retry(
                info,
                input,
                reload=lambda _: _reload(info, _problem_id(input.problem_id, "problemId")),
            ),
        )
        return ProblemPayload(
            problem=_maybe(problem), user_errors=errors, client_mutation_id=input.client_mutation_id
        )

    @strawberry.mutation(
        description="Offer another city's problem a solution of your city's, a person of "
        "your city's, or both (scope: publish); HELP_OFFERED tells whoever may see it."
    )
    async def offer_help(self, info: Info, input: OfferHelpInput) -> ProblemPayload:
        ctx = info.context

        async def offer() -> models.Problem:
            solution = person = None
            if input.solution_id is not None:
                solution = expect_global_id(input.solution_id, ("Solution",), field="solutionId")[1]
            if input.person_id is not None:
                person = expect_global_id(input.person_id, ("Person",), field="personId")[1]
            return await problems.offer_help(
                db=ctx.db,
                actor=ctx.actor(),
                id=_problem_id(input.problem_id, "problemId"),
                solution_id=solution,
                person_id=person,
                note=input.note,
            )

        problem, errors = await attempt(
            offer,
            Retry(
                info,
                input,
                reload=lambda _: _reload(info, _problem_id(input.problem_id, "problemId")),
            ),
        )
        return ProblemPayload(
            problem=_maybe(problem), user_errors=errors, client_mutation_id=input.client_mutation_id
        )

    @strawberry.mutation(description="Say that your city faces another city's problem too.")
    async def face_problem_too(self, info: Info, input: FaceProblemTooInput) -> ProblemPayload:
        ctx = info.context
        problem, errors = await attempt(
            lambda: problems.face_too(
                db=ctx.db, actor=ctx.actor(), id=_problem_id(input.problem_id, "problemId")
            ),
            Retry(
                info,
                input,
                reload=lambda _: _reload(info, _problem_id(input.problem_id, "problemId")),
            ),
        )
        return ProblemPayload(
            problem=_maybe(problem), user_errors=errors, client_mutation_id=input.client_mutation_id
        )
