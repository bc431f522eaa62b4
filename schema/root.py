"""The Query and Mutation roots and the schema with its protective extensions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import aclosing
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StreamResult
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from schema import sharing
from schema.cities import City, Person
from schema.comments import Comment, CommentMutations
from schema.context import Context, Info
from schema.errors import ErrorCodes, ProdErrorCodes, coded_errors
from schema.events import EventQueries, Subscription
from schema.follows import FollowMutations
from schema.limits import DocumentGate
from schema.nodes import load_node
from schema.observer import OperationObserver
from schema.problems import Problem, ProblemFilter, ProblemMutations
from schema.rate_limits import RateLimitQueries
from schema.realm_admin import RealmAdminMutations, RealmAdminQueries
from schema.relay import Connection, Node, connection, from_global_id
from schema.sharing import SharedSubscriptions
from schema.solution_mutations import SolutionMutations
from schema.solutions import Solution, SolutionFilter
from schema.viewer import Viewer
from schema.webhooks import WebhookMutations, WebhookQueries
from services import cities, problems, solutions
from services.errors import InvalidInput, NotFound
from services.pages import MAX_PAGE_SIZE, Order, PageRequest


async def _node(info: Info, global_id: str) -> Node | None:
    parsed = from_global_id(global_id)
    if parsed is None:
        return None
    return await load_node(info, *parsed)


@strawberry.type
class Query(RealmAdminQueries, EventQueries, WebhookQueries, RateLimitQueries):
    @strawberry.field(description="Who you are: your city, scopes and subject.")
    def viewer(self, info: Info) -> Viewer:
        actor = info.context.actor()
        return Viewer(
            subject=actor.subject,
            scopes=sorted(actor.scopes),
            client_id=actor.client_id,
            city_slug=actor.city,
        )

    @strawberry.field(description="Any object by its global id; null if there is none.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        info.context.actor()
        return await _node(info, id)

    @strawberry.field(description=f"Objects by global ids, aligned (at most {MAX_PAGE_SIZE}).")
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        info.context.actor()
        if len(ids) > MAX_PAGE_SIZE:
            raise InvalidInput("ids", f"must have at most {MAX_PAGE_SIZE} items")
        # Gathered, so the loaders see every id before they query: one batch per kind.
        return list(await asyncio.gather(*(_node(info, id) for id in ids)))

    @strawberry.field
    async def city(self, info: Info, slug: str) -> City | None:
        ctx = info.context
        try:
            return City.from_domain(await cities.get(db=ctx.db, actor=ctx.actor(), slug=slug))
        except NotFound:
            return None

    @strawberry.field(description="Member cities by slug.")
    async def cities(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[City]:
        ctx = info.context
        page = await cities.list_cities(
            db=ctx.db,
            actor=ctx.actor(),
            request=PageRequest(first=first, after=after, last=last, before=before),
        )
        return connection(page, City.from_domain)

    @strawberry.field(description="Problems of every member city.")
    async def problems(
        self,
        info: Info,
        filter: ProblemFilter | None = None,
        order_by: Order = Order.CREATED_AT_DESC,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Problem]:
        from schema.problems import listing_of

        ctx = info.context
        page = await problems.list_problems(
            db=ctx.db,
            actor=ctx.actor(),
            listing=listing_of(filter),
            order=order_by,
            request=PageRequest(first=first, after=after, last=last, before=before),
        )
        return connection(page, Problem.from_domain)

    @strawberry.field(description="Solutions of every member city.")
    async def solutions(
        self,
        info: Info,
        filter: SolutionFilter | None = None,
        order_by: Order = Order.CREATED_AT_DESC,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Solution]:
        from schema.solutions import listing_of

        ctx = info.context
        page = await solutions.list_solutions(
            db=ctx.db,
            actor=ctx.actor(),
            listing=listing_of(filter),
            order=order_by,
            request=PageRequest(first=first, after=after, last=last, before=before),
        )
        return connection(page, Solution.from_domain)


@strawberry.type
class Mutation(
    ProblemMutations,
    SolutionMutations,
    CommentMutations,
    RealmAdminMutations,
    FollowMutations,
    WebhookMutations,
):
    pass


class CityExchangeSchema(strawberry.Schema):
    """The schema; errors are coded and logged by ErrorCodes, not by strawberry's logger,
    which would log every client mistake (and its query) as an error. Identical `events`
    subscriptions are executed once per event (schema/sharing.py)."""

    _shared: SharedSubscriptions | None = None
    gate: DocumentGate  # set by build_schema: the document limits and their caches

    @property
    def shared(self) -> SharedSubscriptions:
        """This schema's (this app's) groups of identical subscriptions."""
        if self._shared is None:
            self._shared = SharedSubscriptions()
        return self._shared

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> StreamResult:
        run_alone = super().stream
        shared = sharing.plan(
            query, operation_name, variable_values, context_value, parse=self.gate.parse
        )
        if (
            shared is None
            or not isinstance(context_value, Context)
            or query is None
            # A member joins its group's execution only if its own document passes the gate
            # and its charge: otherwise it runs alone, and is told why.
            or not self.gate.admit_member(
                self._schema, query, operation_name, variable_values or {}, context_value
            )
        ):
            alone = await run_alone(
                query, variable_values, context_value, root_value, operation_name,
                operation_extensions, allowed_operation_types,
            )  # fmt: skip
            if not isinstance(context_value, Context):
                return alone
            return _coded(alone, context_value)

        def run(context: Context) -> Awaitable[StreamResult]:
            return run_alone(
                query, variable_values, context, root_value, operation_name,
                operation_extensions, allowed_operation_types,
            )  # fmt: skip

        return self.shared.stream(shared, context_value, run)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        pass


async def _coded(source: StreamResult, context: Context) -> StreamResult:
    """A subscription's results with coded errors: strawberry's stream hands its
    pre-execution errors (a refused or invalid document) past the schema's extensions."""
    async with aclosing(source):
        async for result in source:
            errors: list[GraphQLError] | None = getattr(result, "errors", None)
            if errors and isinstance(result, ExecutionResult | PreExecutionError):
                result.errors = coded_errors(
                    errors,
                    request_id=context.request_id,
                    hide_suggestions=context.production,
                    on_unavailable=context.on_unavailable,
                )
            yield result


def build_schema(
    *, production: bool, more_extensions: Sequence[Callable[[], SchemaExtension]] = ()
) -> CityExchangeSchema:
    """The schema with its document limits (docs/security.md); production also hides
    introspection and hints. `more_extensions` are added last (tracing's)."""
    # Classes or factories, never instances: an instance would be shared by concurrent
    # requests. What must be shared is built here, once: the gate's caches of parsed
    # documents, their figures and validation results (schema/limits.py).
    gate = DocumentGate()
    extensions: list[Callable[[], SchemaExtension]] = [
        OperationObserver,
        gate.extension(),
        ProdErrorCodes if production else ErrorCodes,
    ]
    if production:
        extensions.append(DisableIntrospection)
    extensions.extend(more_extensions)
    schema = CityExchangeSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[City, Person, Problem, Solution, Comment],
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=production),
    )
    schema.gate = gate
    return schema
