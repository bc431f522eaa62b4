"""Identical live subscriptions, executed once per event.

`events` subscriptions with the same document, the same variables (the `after` cursor aside)
and the same visibility form a group. The group runs one live execution: each event is
resolved once, and the same result goes to every member. A member that subscribes with
`after` joins first (its group's results are kept for it from then on), replays from the log
on its own what it missed, then takes the group's results past the last event it replayed:
no gap and no duplicate at the seam, as for a subscription of its own. Each execution's
`events` resolver is told which of the two it is by its context's `live`
(schema/live_execution.py); schema/streaming.py routes a socket's operations here. A group
encodes each result once; each member's operation sends it to its socket itself, through the
`Delivery` its socket's handler set for it (cityexchange/sockets.py).

Visibility is the caller's city and scopes: what a resolver returns depends on nothing else
of the caller (no field is personal). If a personal field is ever added, it must join the key
in `_Shape`, or such subscriptions must not be shared.

Anything else (queries and mutations over the socket, several root fields, fragments at the
root) runs as strawberry runs it.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Protocol

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    VariableNode,
    Visitor,
    visit,
)
from strawberry.schema.schema import StreamResult
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from cityexchange.schema.context import Context
from cityexchange.schema.errors import coded_errors
from cityexchange.schema.live_execution import CatchUp, GroupExecution
from cityexchange.services.errors import InvalidInput
from cityexchange.services.events import parse_cursor
from cityexchange.services.live import SubscriberTooSlow, too_far_behind
from cityexchange.services.store.visibility import held_by_anything
from cityexchange.services.visibility import Viewer, person_key

log = logging.getLogger("cityexchange.live")

Result = ExecutionResult | PreExecutionError
Run = Callable[[Context], Awaitable[StreamResult]]  # the member's operation, in a context


@dataclass(frozen=True, slots=True)
class _Shape:
    """What makes two subscriptions identical."""

    query: str
    operation_name: str | None
    variables: str  # canonical JSON, without the `after` variable
    city: str
    scopes: frozenset[str]
    # What the members may see (services/visibility.py): only viewers holding the same keys
    # share one execution, so a group never shows a member what it may not read. Without a
    # person's own key unless something names it (SharedSubscriptions.stream).
    keys: frozenset[str]
    personal: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """A subscription that can be shared, and its member's own cursor."""

    shape: _Shape
    after: str | None
    person: str  # the member's own key (services/visibility.person_key)


@dataclass(frozen=True, slots=True)
class _CursorArgument:
    variable: str | None = None
    literal: str | None = None


def _cursor_argument(document: DocumentNode, operation_name: str | None) -> _CursorArgument | None:
    """How a shareable document gives `after`; None when the document is not shareable."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation is not OperationType.SUBSCRIPTION:
        return None
    selections = operations[0].selection_set.selections
    if len(selections) != 1:
        return None
    root = selections[0]
    if not isinstance(root, FieldNode) or root.name.value != "events" or root.directives:
        return None
    after = next((a.value for a in root.arguments or () if a.name.value == "after"), None)
    if isinstance(after, VariableNode):
        name = after.name.value
        uses = _VariableUses()
        visit(document, uses)
        definition = next(
            (d for d in operations[0].variable_definitions or () if d.variable.name.value == name),
            None,
        )
        if definition is None:
            return None  # undefined: strawberry's validation says so
        # Only here (a variable used elsewhere too would make the group answer with one
        # member's value), and without a default (which the member's catch-up would miss).
        if uses.counts[name] != 2 or definition.default_value is not None:  # 2: defined, used
            return None
        return _CursorArgument(variable=name)
    if isinstance(after, StringValueNode):
        return _CursorArgument(literal=after.value)
    return _CursorArgument()


class _VariableUses(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def enter_variable(self, node: VariableNode, *_: object) -> None:
        self.counts[node.name.value] += 1


def plan(
    query: str | None,
    operation_name: str | None,
    variables: Mapping[str, object] | None,
    context: object,
    *,
    parse: Callable[[str], DocumentNode | None],
) -> Plan | None:
    """The plan for sharing this operation, or None to run it on its own. `parse` is the
    gate's: bounded in tokens and cached, so planning costs no second parse."""
    if query is None or not isinstance(context, Context) or context.live is not None:
        return None
    if context.principal is None or context.hub is None:
        return None
    if variables is not None and not isinstance(variables, dict):
        return None  # strawberry reports it
    document = parse(query)
    if document is None:
        return None  # strawberry reports why
    cursor = _cursor_argument(document, operation_name)
    if cursor is None:
        return None
    variables = variables or {}
    after = cursor.literal if cursor.variable is None else variables.get(cursor.variable)
    if after is not None and not isinstance(after, str):
        return None  # strawberry reports the type error
    rest = {k: v for k, v in variables.items() if k != cursor.variable}
    try:
        key = json.dumps(rest, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    principal = context.principal
    person = person_key(principal.city, principal.subject)
    keys = Viewer.of(principal).keys - {person}
    shape = _Shape(query, operation_name, key, principal.city, principal.scopes, keys)
    return Plan(shape, after, person)


class Delivery(Protocol):
    """How a socket's operation sends its `next` messages itself, past strawberry's handler."""

    async def next(self, payload: str) -> bool:
        """Send a `next` message with this encoded payload; False when it cannot (over the
        socket's size limit): the result then goes the handler's way."""
        ...

    def started(self) -> None:
        """The operation has what it needs of its subscribe message: the socket's handler
        may let go of the rest (its variables), which an idle member would hold for good."""
        ...


# The operation task's own: set by the socket's handler before it starts the task (which
# copies it), read by `SharedSubscriptions.stream`; the groups' own tasks never see one.
DELIVERY: contextvars.ContextVar[Delivery | None] = contextvars.ContextVar("delivery", default=None)


@dataclass(eq=False, slots=True)
class _Pending:
    """A group's result for its members: encoded once, for every member that delivers it."""

    seq: int | None
    result: Result
    queued_at: float  # when the group offered it to its members
    payload: str | None = None  # the `next` payload, encoded on first use

    def encoded(self) -> str:
        if self.payload is None:
            self.payload = _JSON.encode(_next_payload(self.result))
        return self.payload


@dataclass(eq=False, slots=True)
class _Member:
    """One subscriber's results waiting to be sent; bounded like a hub subscriber's (a list:
    56 bytes while idle, where a deque is 600)."""

    pending: list[_Pending] = field(default_factory=list[_Pending])
    waiter: asyncio.Future[None] | None = None
    ended: bool = False
    too_slow: bool = False

    def offer(self, item: _Pending) -> None:
        if self.too_slow:
            return
        pending = self.pending
        oldest = pending[0].queued_at if pending else None
        if too_far_behind(len(pending) + 1, oldest, item.queued_at):
            self.too_slow = True  # memory stays bounded; the member resumes by cursor
            pending.clear()
        else:
            pending.append(item)
        self._wake()

    def end(self) -> None:
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def ready(self) -> _Pending | None:
        """The next result if one waits; SubscriberTooSlow if the member was let go."""
        if self.too_slow:
            raise SubscriberTooSlow
        return self.pending.pop(0) if self.pending else None

    async def wait(self) -> None:
        """Until a result waits, the member is let go, or the group ends."""
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    async def take(self) -> _Pending | None:
        """The next result (None once the group has ended); SubscriberTooSlow if dropped."""
        while (item := self.ready()) is None and not self.ended:
            await self.wait()
        return item


@dataclass(eq=False, slots=True)
class _Group:
    shape: _Shape
    members: set[_Member] = field(default_factory=set[_Member])
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # live, or ended before
    live: bool = False
    task: asyncio.Task[None] | None = None

    def went_live(self) -> None:
        self.live = True
        self.settled.set()

    def broadcast(self, seq: int | None, result: Result) -> None:
        item = _Pending(seq, result, time.monotonic())
        for member in self.members:
            member.offer(item)


class SharedSubscriptions:
    """The groups of one schema (one app): identical subscriptions, one execution each."""

    def __init__(self) -> None:
        self._groups: dict[_Shape, _Group] = {}
        # The context a group's execution runs in: its own, no request's (its logs, spans and
        # database commands are not the first member's). The app labels it.
        self.new_context: Callable[[], contextvars.Context] = contextvars.Context

    @property
    def groups(self) -> int:
        return len(self._groups)

    @property
    def members(self) -> int:
        return sum(len(group.members) for group in self._groups.values())

    async def stream(self, plan: Plan, context: Context, run: Run) -> StreamResult:
        """One member's results: its own catch-up, then the group's live results.

        A member whose own person key some problem or solution's audience names (a team's
        member) shares only with the same person's other subscriptions; everyone else shares
        by city, scopes and organisation, in an execution that holds no person's key. A person
        added to a team while subscribed sees its events from their next subscription.
        """
        shape = plan.shape
        if await held_by_anything(context.db, plan.person):
            shape = replace(shape, keys=shape.keys | {plan.person}, personal=True)
        group = self._groups.get(shape) or self._start(shape, context, run)
        member = _Member()
        group.members.add(member)
        after = plan.after
        # The group holds an equal shape: this member's own copy (its keys, its variables'
        # key) would stay with the idle member for as long as it is subscribed.
        del plan, shape
        try:
            await group.settled.wait()
            floor = 0  # the group's results at or below this position are not this member's
            if group.live and after is None:
                assert context.hub is not None
                floor = context.hub.last_seq  # live from now on, as a subscription of its own
            elif group.live and after is not None:
                # Everything after the cursor that is in the log now, then the group's results
                # past it: events committed meanwhile are in one or the other, by position.
                catch_up = CatchUp()
                source = await run(context.for_operation(live=catch_up))
                async with aclosing(source):
                    async for result in source:
                        yield result
                if not catch_up.ran_out:
                    return  # the catch-up failed and said why
                floor = max(_position(after), catch_up.last_seq)
            # From here on the member only takes the group's results: it runs nothing of its
            # own again, so neither it nor its socket's handler need keep its request.
            del run
            delivery = DELIVERY.get()
            if delivery is not None:
                delivery.started()
            while True:
                try:
                    item = member.ready()
                except SubscriberTooSlow as exc:
                    yield _error(context, exc)
                    return
                if item is None:
                    if member.ended:
                        return
                    await member.wait()
                    continue
                if item.seq is not None and item.seq <= floor:
                    continue
                # An event's result, encoded once for the group, goes straight to the socket:
                # a member costs a wake-up and a send, not a trip through the handler per
                # message. The execution's failure (no event's) goes the handler's way.
                if item.seq is None or delivery is None or not await delivery.next(item.encoded()):
                    yield item.result
        finally:
            group.members.discard(member)
            if not group.members:
                self._retire(group)
                if group.task is not None:
                    group.task.cancel()

    def _start(self, shape: _Shape, context: Context, run: Run) -> _Group:
        group = _Group(shape)
        self._groups[shape] = group
        execution = GroupExecution(on_live=group.went_live)
        # The group outlives the member that started it (the context holds nothing of its
        # socket), in an operation context of its own.
        own = context.for_operation(live=execution)
        if own.principal is not None:
            own = replace(own, principal=replace(own.principal, personal=shape.personal))
        group.task = asyncio.create_task(
            self._execute(group, execution, run(own)), context=self.new_context()
        )
        return group

    async def _execute(
        self, group: _Group, execution: GroupExecution, started: Awaitable[StreamResult]
    ) -> None:
        try:
            source = await started
            async with aclosing(source):
                async for result in source:
                    if not isinstance(result, ExecutionResult):
                        continue  # incremental delivery: not in subscriptions
                    seq = execution.claim()
                    if seq is not None:
                        group.broadcast(seq, result)
                    else:  # not an event's result: the execution failed, for every member
                        self._retire(group)
                        group.broadcast(None, result)
        except Exception:
            log.exception("a shared subscription failed")
        finally:
            self._retire(group)
            group.settled.set()
            for member in group.members:
                member.end()

    def _retire(self, group: _Group) -> None:
        """No new member joins `group`; the next identical subscription starts a new one."""
        if self._groups.get(group.shape) is group:
            del self._groups[group.shape]


def _position(after: str) -> int:
    try:
        return parse_cursor(after) or 0
    except InvalidInput:
        return 0  # the catch-up reports it


def _error(context: Context, exc: Exception) -> ExecutionResult:
    error = GraphQLError(str(exc), path=["events"], original_error=exc)
    errors = coded_errors(
        [error],
        request_id=context.request_id,
        hide_suggestions=context.production,
        on_unavailable=lambda: None,
    )
    return ExecutionResult(data=None, errors=errors)


class MessageEncoder:
    """JSON for the socket's messages and HTTP responses. A group's members are not sent their
    results through it: each member's Delivery sends the group's once-encoded payload."""

    def encode(self, message: object) -> str:
        return _JSON.encode(message)


def _next_payload(result: Result) -> dict[str, object]:
    """A `next` message's payload, as strawberry's graphql-transport-ws handler builds it."""
    payload: dict[str, object] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return payload


# Made once (json.dumps makes one per call). ASCII with \u escapes: an error message may echo
# a client's lone surrogate, which has no UTF-8 form.
_JSON = json.JSONEncoder(separators=(",", ":"))
