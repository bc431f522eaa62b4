"""The GraphQL endpoint's WebSockets (graphql-transport-ws): a socket's lifecycle, its
messages both ways (size and rate limits), and the handler's coded refusals. The view
(cityexchange/graphql_view.py) authenticates sockets and owns the set of open ones."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
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
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    ErrorMessage,
    SubscribeMessage,
)

from auth.denylist import Denylist
from cityexchange import graphql_edge
from schema.context import Context
from schema.sharing import DELIVERY
from services.principal import Principal

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


@dataclass(eq=False, slots=True)
class Socket:
    """One open socket's lifecycle, which no operation's context holds: what its
    connection_init carried (until it is read), and what to undo when it closes."""

    websocket: WebSocket
    params: dict[str, object] = dataclasses.field(default_factory=dict[str, object])
    _on_close: list[Callable[[], object]] = dataclasses.field(
        default_factory=list[Callable[[], object]]
    )
    # Closes under way, of every socket: a task nothing holds may be collected before it runs.
    _closing: ClassVar[set[asyncio.Task[None]]] = set()

    def on_close(self, callback: Callable[[], object]) -> None:
        self._on_close.append(callback)

    def close_soon(self, code: int, reason: str) -> None:
        """Close the socket from a plain callback (a timer, the denylist's refresh)."""
        task = asyncio.ensure_future(self._close(code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(RuntimeError):  # already closed by the client
            await self.websocket.close(code, reason)

    def closed(self) -> None:
        for callback in self._on_close:
            callback()

    def admit(
        self, principal: Principal, denylist: Denylist | None, per_token: Counter[str]
    ) -> None:
        """Count the socket against its token (SocketRefused past MAX_SOCKETS_PER_TOKEN), and
        close it with 4403 when the token expires or is revoked: HTTP requests are checked
        one by one, an open socket each time the denylist is refreshed."""
        token = principal.token_id or f"{principal.city}:{principal.client_id}:{principal.subject}"
        if per_token[token] >= MAX_SOCKETS_PER_TOKEN:
            raise SocketRefused(TOO_MANY, f"at most {MAX_SOCKETS_PER_TOKEN} sockets per token")
        per_token[token] += 1

        def release() -> None:
            per_token[token] -= 1
            if per_token[token] <= 0:
                del per_token[token]

        self.on_close(release)
        if principal.expires_at:
            delay = max(principal.expires_at - time.time(), 0)
            timer = asyncio.get_running_loop().call_later(
                delay, self.close_soon, 4403, "token expired"
            )
            self.on_close(timer.cancel)
        if denylist is not None:
            self.on_close(denylist.watch(principal, lambda: self.close_soon(4403, "token revoked")))


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
        that the socket closes with 4429, before the message is handled."""
        allowance, last = float(MESSAGE_BURST), time.monotonic()
        async for message in super().iter_json(ignore_parsing_errors=ignore_parsing_errors):
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


class _OperationDelivery:
    """One operation's `next` messages, sent by the operation itself (schema/sharing.py's
    Delivery): the message is its encoded payload behind the operation's id."""

    __slots__ = ("_head", "_ws")

    def __init__(self, ws: WebSocket, operation_id: str) -> None:
        self._ws = ws
        self._head = f'{{"id":{json.dumps(operation_id)},"type":"next","payload":'

    async def next(self, payload: str) -> bool:
        text = f"{self._head}{payload}}}"
        if len(text) > graphql_edge.MAX_RESPONSE_BYTES:
            return False  # WebSocketAdapter.send_json sends RESPONSE_TOO_LARGE instead
        try:
            await self._ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError) as exc:  # as WebSocketAdapter.send_text
            if self._ws.application_state is not WebSocketState.DISCONNECTED:
                raise WebSocketDisconnected from exc
        return True


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
        query = shape.get("query")
        if not isinstance(query, str) or not isinstance(shape.get("variables") or {}, dict):
            refusal = GraphQLError(
                "a subscribe payload needs a query string and variables as an object",
                extensions={"code": "BAD_REQUEST"},
            )
            await self.send_message(
                ErrorMessage(id=str(message.get("id")), type="error", payload=[refusal.formatted])
            )
            return
        # Subscribers of one group send the same text: the operation keeps one copy of it
        # (interned strings are freed with their last reference).
        shape["query"] = sys.intern(query)
        adapter = cast(WebSocketAdapter, self.websocket)
        # The operation's task, started by strawberry below, copies this context.
        token = DELIVERY.set(_OperationDelivery(adapter.ws, str(message["id"])))
        try:
            await super().handle_subscribe(message)
        finally:
            DELIVERY.reset(token)
