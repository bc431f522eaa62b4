"""Rate limits at the edge: a document that passed the gate is charged its cost to the
caller's budget (and its comments and publications to the city's) before it runs; the
`rateLimit` field shows where the caller stands. Requests without a valid token are
throttled per address by the view, before their document is even parsed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import strawberry
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionNode,
)
from graphql.language import DocumentNode

from cityexchange.schema.context import Context, Info
from cityexchange.services.rate_limits import Charge, Resource

# Root mutation fields that spend a city's write budgets.
WRITES = {
    "addComment": Resource.COMMENTS,
    "publishProblem": Resource.PUBLICATIONS,
    "publishSolution": Resource.PUBLICATIONS,
    # The discovery records are publications too: each is an event every city may receive.
    "adoptSolution": Resource.PUBLICATIONS,
    "reportOutcome": Resource.PUBLICATIONS,
    "endorseSolution": Resource.PUBLICATIONS,
}


NODES_PER_POINT = 100


def points_of(cost: int) -> int:
    """Rate-limit points of a document of `cost` potential nodes: one per 100, rounded up,
    at least one (GitHub's GraphQL rate limit counts the same way)."""
    return max(1, -(-cost // NODES_PER_POINT))


class RateLimited(Exception):
    """A budget is spent: retry after `retry_after` seconds."""

    def __init__(self, charge: Charge, retry_after: int) -> None:
        self.charge, self.retry_after = charge, retry_after
        what = {
            Resource.GRAPHQL: f"the hourly budget of {charge.limit} points",
            Resource.COMMENTS: f"the city's {charge.limit} comments an hour",
            Resource.PUBLICATIONS: f"the city's {charge.limit} publications an hour",
            Resource.ANONYMOUS: f"{charge.limit} requests a minute without a token",
        }[charge.resource]
        super().__init__(f"rate limited: {what} is spent; retry in {retry_after} s")


def charge_points(context: Context, cost: int) -> GraphQLError | None:
    """Charge the points of a document about to be validated and run; the error to answer
    with when the caller's budget is spent."""
    limiter = context.limiter
    if limiter is None or context.live is not None:
        return None  # a shared execution or a member's catch-up: members pay as they join
    principal = context.principal
    if principal is None:
        return None  # throttled per address by the view; the fields answer UNAUTHENTICATED
    points = limiter.charge(Resource.GRAPHQL, _caller(context), points_of(cost))
    context.rate = points  # this operation's charge (a socket's context serves many)
    if not points.allowed:
        return _refusal(context, points, limiter.clock())
    context.on_rate(points)
    return None


def settle_refused(context: Context) -> None:
    """A document that will not run (refused, or invalid) costs one point, not its cost."""
    limiter, charged = context.limiter, context.rate
    if limiter is None or context.principal is None or context.live is not None:
        return
    if charged is not None and charged.allowed:  # charged for this operation: give it back
        limiter.refund(charged, _caller(context))
    context.rate = limiter.charge(Resource.GRAPHQL, _caller(context), 1)
    context.on_rate(context.rate)


def charge_writes(
    context: Context, document: DocumentNode, operation: OperationDefinitionNode
) -> GraphQLError | None:
    """Charge the city's write budgets for the mutations of a valid document."""
    limiter, principal = context.limiter, context.principal
    if limiter is None or principal is None or context.live is not None:
        return None
    allowed: list[Charge] = []
    for resource, count in _writes(document, operation).items():
        spent = limiter.charge(resource, principal.city, count)
        if not spent.allowed:
            # Nothing runs: give back what this document was charged (one point stays).
            for charge in allowed:
                limiter.refund(charge, principal.city)
            settle_refused(context)
            return _refusal(context, spent, limiter.clock())
        allowed.append(spent)
    return None


def _caller(context: Context) -> str:
    principal = context.actor()
    return f"{principal.city}:{principal.client_id}"


def _refusal(context: Context, charge: Charge, now: float) -> GraphQLError:
    retry_after = charge.retry_after(now)
    context.on_rate(charge)
    refused = RateLimited(charge, retry_after)
    return GraphQLError(
        str(refused),
        original_error=refused,
        extensions={"retryAfter": retry_after, "resource": charge.resource.value},
    )


def _writes(document: DocumentNode, operation: OperationDefinitionNode) -> Counter[Resource]:
    """The write budgets a mutation spends: its root fields, through root-level fragments.
    The gate has already bounded the fields a document selects once expanded."""
    if operation.operation.value != "mutation":
        return Counter()
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    spent: Counter[Resource] = Counter()
    stack: list[SelectionNode] = list(operation.selection_set.selections)
    while stack:
        selection = stack.pop()
        if isinstance(selection, FieldNode):
            resource = WRITES.get(selection.name.value)
            if resource is not None:
                spent[resource] += 1
        elif isinstance(selection, InlineFragmentNode):
            stack.extend(selection.selection_set.selections)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                stack.extend(fragment.selection_set.selections)
    return spent


@strawberry.type(description="Where the caller's hourly budget of points stands.")
class RateLimit:
    cost: int = strawberry.field(description="The points this request cost.")
    limit: int
    remaining: int
    used: int
    reset_at: datetime = strawberry.field(description="When the budget is full again.")


@strawberry.type
class RateLimitQueries:
    @strawberry.field(description="The caller's rate limit, after this request's cost.")
    def rate_limit(self, info: Info) -> RateLimit | None:
        info.context.actor()
        charge = info.context.rate
        if charge is None:
            return None
        return RateLimit(
            cost=charge.cost,
            limit=charge.limit,
            remaining=charge.remaining,
            used=charge.used,
            reset_at=datetime.fromtimestamp(charge.reset_at, tz=UTC),
        )
