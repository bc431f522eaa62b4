"""The Query and Mutation roots and the schema with its protective extensions."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence

import strawberry
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.schema.config import StrawberryConfig

from cityexchange.schema.access import AccessMutations
from cityexchange.schema.adoption_mutations import AdoptionMutations
from cityexchange.schema.adoptions import Adoption
from cityexchange.schema.cities import City, Person
from cityexchange.schema.comments import Comment, CommentMutations
from cityexchange.schema.context import Info
from cityexchange.schema.digests import DigestMutations
from cityexchange.schema.errors import ErrorCodes, ProdErrorCodes
from cityexchange.schema.events import Event, EventQueries, Subscription
from cityexchange.schema.experts import ExpertMutations, ExpertQueries
from cityexchange.schema.follows import FollowMutations, SavedFilterMutations
from cityexchange.schema.limits import DocumentGate
from cityexchange.schema.nodes import load_node
from cityexchange.schema.observer import OperationObserver
from cityexchange.schema.organisations import Organisation, OrganisationMutations
from cityexchange.schema.problems import Problem, ProblemFilter, ProblemMutations
from cityexchange.schema.rate_limits import RateLimitQueries
from cityexchange.schema.realm_admin import RealmAdminMutations, RealmAdminQueries
from cityexchange.schema.relay import Connection, Node, connection, from_global_id
from cityexchange.schema.search import SearchConnection, SearchFilter, run_search
from cityexchange.schema.solution_mutations import SolutionMutations
from cityexchange.schema.solutions import Solution, SolutionFilter
from cityexchange.schema.streaming import CityExchangeSchema
from cityexchange.schema.viewer import Viewer
from cityexchange.schema.webhooks import WebhookMutations, WebhookQueries
from cityexchange.services import cities, events, problems, solutions
from cityexchange.services.errors import InvalidInput, NotFound
from cityexchange.services.pages import MAX_PAGE_SIZE, Order, PageRequest, SolutionOrder

NodesOfKind = Callable[[Info, list[str]], Awaitable[list[Node | None]]]


def _through_loaders(kind: str) -> NodesOfKind:
    async def nodes_of_kind(info: Info, ids: list[str]) -> list[Node | None]:
        # Gathered, so the kind's loader sees every id before it queries: one batch.
        return list(await asyncio.gather(*(load_node(info, kind, id) for id in ids)))

    return nodes_of_kind


async def _events(info: Info, ids: list[str]) -> list[Node | None]:
    ctx = info.context
    found = await events.by_ids(db=ctx.db, actor=ctx.actor(), ids=ids)
    return [Event.from_domain(event) if event else None for event in found]


# Every implementer of Node by its kind, the first part of its global id
# (tests/test_relay.py fails when one is missing).
_NODES_OF_KIND: dict[str, NodesOfKind] = {
    "City": _through_loaders("City"),
    "Person": _through_loaders("Person"),
    "Problem": _through_loaders("Problem"),
    "Solution": _through_loaders("Solution"),
    "Comment": _through_loaders("Comment"),
    "Adoption": _through_loaders("Adoption"),
    "Organisation": _through_loaders("Organisation"),
    "Event": _events,
}


async def _node(info: Info, global_ids: Sequence[str]) -> list[Node | None]:
    """The nodes of `global_ids`, aligned, None for ids that are not ours or find nothing;
    one batch per kind."""
    parsed = [from_global_id(global_id) for global_id in global_ids]
    wanted: dict[str, dict[str, None]] = defaultdict(dict)  # ordered sets of ids per kind
    for kind, id in filter(None, parsed):
        if kind in _NODES_OF_KIND:
            wanted[kind][id] = None
    kinds = list(wanted)
    results = await asyncio.gather(*(_NODES_OF_KIND[k](info, list(wanted[k])) for k in kinds))
    found = {
        (kind, id): node
        for kind, nodes in zip(kinds, results, strict=True)
        for id, node in zip(wanted[kind], nodes, strict=True)
    }
    return [found.get(key) if key else None for key in parsed]


@strawberry.type
class Query(RealmAdminQueries, EventQueries, WebhookQueries, RateLimitQueries, ExpertQueries):
    @strawberry.field(description="Who you are: your city, scopes and subject.")
    def viewer(self, info: Info) -> Viewer:
        actor = info.context.actor()
        return Viewer(
            subject=actor.subject,
            scopes=sorted(actor.scopes),
            client_id=actor.client_id,
            city_slug=actor.city,
            organisation_id=actor.organisation,
        )

    @strawberry.field(description="Any object by its global id; null if there is none.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        info.context.actor()
        return (await _node(info, [id]))[0]

    @strawberry.field(description=f"Objects by global ids, aligned (at most {MAX_PAGE_SIZE}).")
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        info.context.actor()
        if len(ids) > MAX_PAGE_SIZE:
            raise InvalidInput("ids", f"must have at most {MAX_PAGE_SIZE} items")
        return await _node(info, ids)

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
        from cityexchange.schema.problems import listing_of

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
        order_by: SolutionOrder = SolutionOrder.CREATED_AT_DESC,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Solution]:
        from cityexchange.schema.solutions import criteria_of, listing_of

        ctx = info.context
        page = await solutions.list_solutions(
            db=ctx.db,
            actor=ctx.actor(),
            listing=listing_of(filter),
            criteria=criteria_of(filter),
            order=order_by,
            request=PageRequest(first=first, after=after, last=last, before=before),
        )
        return connection(page, Solution.from_domain)

    @strawberry.field(
        description="Problems, solutions and comments ranked by how well they match the "
        "query (plain words, in any of the member languages; at most 500 characters)."
    )
    async def search(
        self,
        info: Info,
        query: str,
        filter: SearchFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> SearchConnection:
        return await run_search(info, query, filter, first, after)


@strawberry.type
class Mutation(
    ProblemMutations,
    SolutionMutations,
    AccessMutations,
    CommentMutations,
    RealmAdminMutations,
    FollowMutations,
    SavedFilterMutations,
    DigestMutations,
    WebhookMutations,
    AdoptionMutations,
    OrganisationMutations,
    ExpertMutations,
):
    pass


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
        types=[City, Person, Problem, Solution, Comment, Adoption, Organisation],
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=production),
    )
    schema.gate = gate
    return schema
