"""The GraphQL endpoint's WebSockets (graphql-transport-ws): a socket's lifecycle, its
messages both ways (size and rate limits), and the handler's coded refusals. The view
(cityexchange/graphql_view.py) authenticates sockets and owns the set of open ones."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import json
import sys
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, cast

from graphql import GraphQLError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import (
    NonJsonMessageReceived,
    NonTextMessageReceived,
    WebSocketDisconnected,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    ErrorMessage,
    Message,
    SubscribeMessage,
)

from cityexchange import graphql_edge
from cityexchange.auth.denylist import Denylist
from cityexchange.schema.context import Context
from cityexchange.schema.sharing import DELIVERY
from cityexchange.services import persisted_documents
from cityexchange.services.errors import Unavailable
from cityexchange.services.persisted_documents import DocumentError
from cityexchange.services.principal import Principal

if TYPE_CHECKING:
    from cityexchange.graphql_view import GraphQLView

MAX_SUBSCRIPTIONS_PER_SOCKET = 20
CONNECTION_INIT_SECONDS = 5
MAX_SOCKETS_PER_TOKEN = 10  # open at once in one process, per access token
MESSAGES_PER_SECOND = 20  # what a socket may send, sustained ...
MESSAGE_BURST = 40  # ... and at once
TOO_MANY = 4429  # close code: a socket over one of these limits
KEEP_ALIVE_SECONDS = 15
GOING_AWAY = "server shutting down: reconnect, and resume with after"
CLOSE_SECONDS = 2.0


class SocketRefused(Exception):
    """A socket refused at connection_init for a reason other than its token."""

    def __init__(self, code: int, reason: str) -> None:
        self.code, self.reason = code, reason


class Expiries:
    """When open sockets' tokens expire: one timer for all of them (the earliest), where a
    timer each would hold a handle, its callback and a context copy per socket."""

    __slots__ = ("_added", "_cancelled", "_heap", "_timer")

    def __init__(self) -> None:
        self._heap: list[list[object]] = []  # [loop time, order, Socket | None] entries
        self._timer: asyncio.TimerHandle | None = None
        self._added = 0
        self._cancelled = 0  # entries in the heap whose socket closed first

    def add(self, socket: Socket, delay: float) -> list[object]:
        """Close `socket` with 4403 "token expired" in `delay` seconds; returns its entry."""
        loop = asyncio.get_running_loop()
        self._added += 1
        entry: list[object] = [loop.time() + delay, self._added, socket]
        heapq.heappush(self._heap, entry)
        if self._heap[0] is entry:
            self._schedule(loop)
        return entry

    def cancel(self, entry: list[object]) -> None:
        """The socket closed first: its entry holds it no longer, and waits in the heap until
        its time, unless cancelled entries come to outnumber the others."""
        entry[2] = None
        self._cancelled += 1
        if self._cancelled > 64 and 2 * self._cancelled > len(self._heap):
            self._heap = [e for e in self._heap if e[2] is not None]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
        at = cast(float, self._heap[0][0]) if self._heap else None
        self._timer = None if at is None else loop.call_at(at, self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        while self._heap and cast(float, self._heap[0][0]) <= now:
            socket = heapq.heappop(self._heap)[2]
            if isinstance(socket, Socket):
                socket.close_soon(4403, "token expired")
            else:
                self._cancelled -= 1
        self._schedule(loop)


@dataclass(eq=False, slots=True)
class Socket:
    """One open socket's lifecycle, which no operation's context holds: what its
    connection_init carried (until it is read), and what to undo when it closes."""

    websocket: WebSocket
    params: dict[str, object] = dataclasses.field(default_factory=dict[str, object])
    # What admit() set up, undone by closed(): plain fields rather than a closure each.
    _token: str | None = None
    _per_token: Counter[str] | None = None
    _expiries: Expiries | None = None
    _expiry: list[object] | None = None
    _unwatch: Callable[[], None] | None = None
    # Closes under way, of every socket: a task nothing holds may be collected before it runs.
    _closing: ClassVar[set[asyncio.Task[None]]] = set()

    def close_soon(self, code: int, reason: str) -> None:
        """Close the socket from a plain callback (a timer, the denylist's refresh)."""
        task = asyncio.ensure_future(self._close(code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def revoked(self) -> None:
        self.close_soon(4403, "token revoked")

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(RuntimeError):  # already closed by the client
            await self.websocket.close(code, reason)

    def closed(self) -> None:
        if self._per_token is not None and self._token is not None:
            self._per_token[self._token] -= 1
            if self._per_token[self._token] <= 0:
                del self._per_token[self._token]
        if self._expiry is not None and self._expiries is not None:
            self._expiries.cancel(self._expiry)
        if self._unwatch is not None:
            self._unwatch()

    def admit(
        self,
        principal: Principal,
        denylist: Denylist | None,
        per_token: Counter[str],
        expiries: Expiries,
    ) -> None:
        """Count the socket against its token (SocketRefused past MAX_SOCKETS_PER_TOKEN), and
        close it with 4403 when the token expires or is revoked: HTTP requests are checked
        one by one, an open socket each time the denylist is refreshed."""
        token = principal.token_id or f"{principal.city}:{principal.client_id}:{principal.subject}"
        if per_token[token] >= MAX_SOCKETS_PER_TOKEN:
            raise SocketRefused(TOO_MANY, f"at most {MAX_SOCKETS_PER_TOKEN} sockets per token")
        per_token[token] += 1
        self._token, self._per_token = token, per_token
        if principal.expires_at:
            delay = max(principal.expires_at - time.time(), 0)
            self._expiries, self._expiry = expiries, expiries.add(self, delay)
        if denylist is not None:
            self._unwatch = denylist.watch(principal, self.revoked)


class WebSocketAdapter(ASGIWebSocketAdapter):
    """A message for a socket that is already closed (by the client, or by the server while
    it drains) is dropped: the connection's handler is ending its operations anyway, and this
    is no error to log."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        """Send a message; a result over MAX_RESPONSE_BYTES goes as a `next` with the
        RESPONSE_TOO_LARGE error instead (the operation goes on)."""
        view = cast("GraphQLView", self.view)  # pyright: ignore[reportUnknownMemberType]
        encoded = view.encode_json(message)
        if len(encoded) > graphql_edge.MAX_RESPONSE_BYTES:
            encoded = view.encode_json(graphql_edge.too_large_message(message, len(encoded)))
        await self.send_text(encoded)

    async def send_text(self, text: str) -> None:
        """Send an encoded message as it is."""
        try:
            await self.ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError) as exc:
            # A socket closed meanwhile (by the client, or by us while draining): its handler
            # is ending its operations anyway. strawberry's own adapter says so with
            # WebSocketDisconnected.
            if self.ws.application_state is not WebSocketState.DISCONNECTED:
                raise WebSocketDisconnected from exc

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object]:
        """The client's messages, at most MESSAGES_PER_SECOND (MESSAGE_BURST at once): past
        that the socket closes with 4429, before the message is handled. (strawberry's own
        loop, but holding neither the last text nor the last message while it waits: an
        idle socket would keep its subscribe message for good.)"""
        allowance, last = float(MESSAGE_BURST), time.monotonic()
        view = cast("GraphQLView", self.view)  # pyright: ignore[reportUnknownMemberType]
        while self.ws.application_state != WebSocketState.DISCONNECTED:
            try:
                message = view.decode_json(await self.ws.receive_text())
            except KeyError as exc:  # a binary message
                raise NonTextMessageReceived from exc
            except json.JSONDecodeError as exc:
                if ignore_parsing_errors:
                    continue
                raise NonJsonMessageReceived from exc
            except WebSocketDisconnect:
                return
            if not isinstance(message, dict):  # graphql-transport-ws messages are objects
                with contextlib.suppress(RuntimeError):
                    await self.ws.close(4400, "Invalid message received")
                return
            now = time.monotonic()
            allowance = min(MESSAGE_BURST, allowance + (now - last) * MESSAGES_PER_SECOND)
            last = now
            if allowance < 1:
                with contextlib.suppress(RuntimeError):
                    await self.ws.close(
                        TOO_MANY, f"at most {MESSAGES_PER_SECOND} messages a second"
                    )
                return
            allowance -= 1
            yield message
            message = None


class _OperationDelivery:
    """One operation's `next` messages, sent by the operation itself (schema/sharing.py's
    Delivery): the message is its encoded payload behind the operation's id."""

    __slots__ = ("_adapter", "_head", "_id", "_operations")

    def __init__(
        self, adapter: WebSocketAdapter, operation_id: str, operations: Mapping[str, object]
    ) -> None:
        self._adapter, self._id, self._operations = adapter, operation_id, operations
        self._head = f'{{"id":{json.dumps(operation_id)},"type":"next","payload":'

    async def next(self, payload: str) -> bool:
        if self._id not in self._operations:
            return True  # completed by the client meanwhile: nothing more goes out for it
        text = f"{self._head}{payload}}}"
        if len(text) > graphql_edge.MAX_RESPONSE_BYTES:
            return False  # WebSocketAdapter.send_json sends RESPONSE_TOO_LARGE instead
        await self._adapter.send_text(text)
        return True

    def started(self) -> None:
        """strawberry's operation keeps its subscribe's variables, read only when it starts
        (tests/test_shared_subscriptions.py pins the attribute across strawberry releases)."""
        operation = self._operations.get(self._id)
        if isinstance(operation, Operation):
            with contextlib.suppress(AttributeError):  # a release without it: nothing to free
                operation.variables = None


_BAD_PAYLOAD = (
    "a subscribe payload needs a query string, variables as an object and a string operationName"
)


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, with a coded error for a subscription over the socket's limit
    (strawberry's own carries no code), and close codes of our own at connection_init."""

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        payload = cast(object, message.get("payload"))
        if isinstance(payload, dict) and not self.connection_init_received:
            # What on_ws_connect reads (strawberry would put it in the context).
            view = cast("GraphQLView", self.view)
            view.socket_of(self.context).params = cast(dict[str, object], payload)
        try:
            await super().handle_connection_init(message)
        except SocketRefused as refused:
            await self.websocket.close(code=refused.code, reason=refused.reason)
        # The init timer is cancelled (or done) by now: let it go rather than keep its task,
        # its CancelledError and that error's frames for as long as the socket is open.
        self.connection_init_timeout_task = None

    async def handle_message(self, message: Message) -> None:
        try:
            await super().handle_message(message)
        finally:
            # strawberry's loop keeps its last message until the next one comes: emptied,
            # an idle socket holds no subscribe payload (its operation keeps what it needs).
            cast(dict[str, object], message).clear()

    async def _refuse(self, message: SubscribeMessage, code: str, text: str) -> None:
        refusal = GraphQLError(text, extensions={"code": code})
        await self.send_message(
            ErrorMessage(id=str(message.get("id")), type="error", payload=[refusal.formatted])
        )

    async def _document(self, shape: dict[str, object]) -> str:
        """The text a subscribe runs: its `query`, or the persisted document its `documentId`
        or Apollo hash names (checked against the text when both come). A client the view
        trusts (CITYEXCHANGE_TRUSTED_DOCUMENTS) runs registered documents only, as over
        HTTP. Documents are learned over HTTP only."""
        query = shape.get("query")
        extensions = shape.get("extensions")
        if (query is not None and not isinstance(query, str)) or not isinstance(
            extensions, dict | None
        ):
            raise _Refused("BAD_REQUEST", _BAD_PAYLOAD)
        view = cast("GraphQLView", self.view)
        principal = self.context.principal
        trusted = principal is not None and principal.client_id in view.trusted_clients
        try:
            document_id = graphql_edge.persisted_id(
                cast(dict[str, object] | None, extensions), shape.get("documentId")
            )
            if document_id is None and not trusted:
                if query is None or not query.strip():
                    raise _Refused("BAD_REQUEST", _BAD_PAYLOAD)
                return query
            if document_id is None and query is None:
                raise _Refused("BAD_REQUEST", _BAD_PAYLOAD)
            resolved = await persisted_documents.resolve(
                db=view.resources().db,
                cache=view.documents,
                id=document_id,
                text=query,
                trusted=trusted,
            )
        except graphql_edge.PersistedRequestError as error:
            raise _Refused(error.code, error.reason) from None
        except DocumentError as error:
            raise _Refused(*graphql_edge.document_error(error)) from None
        except Unavailable as error:
            raise _Refused("SERVICE_UNAVAILABLE", str(error)) from None
        return resolved.text

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        limit = self.max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and limit is not None
            and message["id"] not in self.operations
            and len(self.operations) >= limit
        ):
            refusal = GraphQLError(
                f"at most {limit} subscriptions per socket: complete one first",
                extensions={"code": "TOO_MANY_SUBSCRIPTIONS", "limit": limit},
            )
            await self.send_message(
                ErrorMessage(id=message["id"], type="error", payload=[refusal.formatted])
            )
            return
        payload = cast(object, message.get("payload"))
        shape = cast(dict[str, object], payload) if isinstance(payload, dict) else {}
        operation_name = shape.get("operationName")
        if not isinstance(shape.get("variables") or {}, dict) or not isinstance(
            operation_name, str | None
        ):
            await self._refuse(message, "BAD_REQUEST", _BAD_PAYLOAD)
            return
        try:
            query = await self._document(shape)
        except _Refused as refused:
            await self._refuse(message, refused.code, refused.message)
            return
        # Subscribers of one group send the same text: the operation keeps one copy of it
        # (interned strings are freed with their last reference).
        shape["query"] = sys.intern(query)
        adapter = cast(WebSocketAdapter, self.websocket)
        # The operation's task, started by strawberry below, copies this context.
        token = DELIVERY.set(_OperationDelivery(adapter, str(message["id"]), self.operations))
        try:
            await super().handle_subscribe(message)
        finally:
            DELIVERY.reset(token)
