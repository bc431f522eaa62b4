"""The GraphQL endpoint over HTTP and WebSocket (graphql-transport-ws): authentication per
request or per socket, the edge's limits (rate, response size, sockets per token, messages
per second) and its error bodies (cityexchange/graphql_edge.py)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Mapping
from datetime import timedelta
from typing import cast

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    ErrorMessage,
    SubscribeMessage,
)
from strawberry.types import ExecutionResult

from auth.admin import RealmAdmin
from auth.errors import Unauthenticated
from auth.tokens import TokenVerifier
from cityexchange import graphql_edge, logs
from cityexchange.http import (
    request_id_of,
)
from cityexchange.metrics import Metrics
from cityexchange.resources import Resources
from cityexchange.settings import Settings
from cityexchange.tracing import Tracing
from schema.context import Context
from schema.errors import coded_errors
from schema.root import build_schema
from schema.sharing import MessageEncoder
from services.errors import Unavailable
from services.principal import Principal
from services.rate_limits import Charge, Resource

MAX_SUBSCRIPTIONS_PER_SOCKET = 20
CONNECTION_INIT_SECONDS = 5
MAX_SOCKETS_PER_TOKEN = 10  # open at once in one process, per access token
MESSAGES_PER_SECOND = 20  # what a socket may send, sustained ...
MESSAGE_BURST = 40  # ... and at once
TOO_MANY = 4429  # close code: a socket over one of these limits
KEEP_ALIVE_SECONDS = 15
GOING_AWAY = "server shutting down: reconnect, and resume with after"
CLOSE_SECONDS = 2.0


class _WebSocketAdapter(ASGIWebSocketAdapter):
    """A message for a socket that is already closed (by the client, or by the server while
    it drains) is dropped: the connection's handler is ending its operations anyway, and this
    is no error to log."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        """Send a message; a result over MAX_RESPONSE_BYTES goes as a `next` with the
        RESPONSE_TOO_LARGE error instead (the operation goes on)."""
        view = cast(GraphQLView, self.view)  # pyright: ignore[reportUnknownMemberType]
        encoded = view.encode_json(message)
        if len(encoded) > graphql_edge.MAX_RESPONSE_BYTES:
            encoded = view.encode_json(graphql_edge.too_large_message(message, len(encoded)))
        try:
            await self.ws.send_text(encoded)
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


class _Throttled(Exception):
    """A request without a valid token over its address's budget."""

    def __init__(self, charge: Charge) -> None:
        self.charge = charge


class _SocketRefused(Exception):
    """A socket refused at connection_init for a reason other than its token."""

    def __init__(self, code: int, reason: str) -> None:
        self.code, self.reason = code, reason


class _TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, with a coded error for a subscription over the socket's limit
    (strawberry's own carries no code), and close codes of our own at connection_init."""

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except _SocketRefused as refused:
            await self.websocket.close(code=refused.code, reason=refused.reason)

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
        if not isinstance(shape.get("query"), str) or not isinstance(
            shape.get("variables") or {}, dict
        ):
            refusal = GraphQLError(
                "a subscribe payload needs a query string and variables as an object",
                extensions={"code": "BAD_REQUEST"},
            )
            await self.send_message(
                ErrorMessage(id=str(message.get("id")), type="error", payload=[refusal.formatted])
            )
            return
        await super().handle_subscribe(message)


class GraphQLView(GraphQL[Context, None]):
    websocket_adapter_class = _WebSocketAdapter  # pyright: ignore[reportAssignmentType]
    graphql_transport_ws_handler_class = _TransportWSHandler

    def __init__(
        self,
        *,
        resources: Resources,
        metrics: Metrics,
        settings: Settings,
        tracing: Tracing | None = None,
    ) -> None:
        schema = build_schema(
            production=settings.production,
            more_extensions=[tracing.schema_extension] if tracing else [],
        )
        self.shared = schema.shared
        self.gate = schema.gate
        self.encoder = MessageEncoder()
        self.sockets: set[WebSocket] = set()
        self.sockets_per_token: Counter[str] = Counter()
        self.draining: Callable[[], bool] = lambda: False
        super().__init__(
            schema,
            graphql_ide=None if settings.production else "graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            allowed_origins=settings.allowed_origins,
            max_subscriptions_per_connection=MAX_SUBSCRIPTIONS_PER_SOCKET,
            keep_alive=True,
            keep_alive_interval=KEEP_ALIVE_SECONDS,
            connection_init_wait_timeout=timedelta(seconds=CONNECTION_INIT_SECONDS),
        )
        self.resources = resources
        self.metrics = metrics
        self.production = settings.production
        self.access_ttl = settings.access_token_ttl_seconds
        self.operation_seconds = settings.operation_timeout_ms / 1000
        self.public_url = settings.public_url

    def encode_json(self, data: object) -> str:
        return self.encoder.encode(data)

    def decode_json(self, data: str | bytes) -> object:
        """A socket's message; JSON nested deeper than the parser's stack is not JSON to us
        (the handler then closes the socket with 4400)."""
        try:
            return json.loads(data)
        except RecursionError:
            text = data.decode(errors="replace") if isinstance(data, bytes) else data
            raise json.JSONDecodeError("nested too deeply", text, 0) from None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._answer(scope, receive, send)
            return
        if scope["type"] != "websocket":
            await super().__call__(scope, receive, send)
            return
        socket = WebSocket(scope, receive=receive, send=send)
        if self.draining():
            await socket.close(1001, GOING_AWAY)  # refused: connect to another replica
            return
        context = await self.get_context(socket, socket)
        self.sockets.add(socket)
        try:
            await self.run(socket, context=context)
        finally:
            self.sockets.discard(socket)
            for callback in context.on_close:
                callback()

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One HTTP request: refusals as JSON request errors with a code and the request id
        (strawberry's own are plain text), and no response over MAX_RESPONSE_BYTES."""
        request_id = request_id_of(scope)
        try:
            response = await self.run(Request(scope, receive=receive))
        except HTTPException as error:
            response = graphql_edge.refused(error, request_id=request_id)
        except _Throttled as throttled:
            response = graphql_edge.throttled(throttled.charge, request_id=request_id)
        except graphql_edge.ResponseTooLarge as refused:
            response = graphql_edge.too_large(refused.size, request_id=request_id)
        await response(scope, receive, send)

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        """strawberry's response, refused whole when over MAX_RESPONSE_BYTES: measured on the
        result before it is encoded, then on the encoded body."""
        graphql_edge.check_size(response_data)
        response = super().create_response(response_data, sub_response)
        if len(response.body) > graphql_edge.MAX_RESPONSE_BYTES:
            raise graphql_edge.ResponseTooLarge(len(response.body))
        return response

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        media_type = (request.content_type or "").partition(";")[0].strip().lower()
        if request.method == "POST" and media_type not in graphql_edge.ACCEPTED_MEDIA_TYPES:
            raise HTTPException(415, "send the GraphQL request as application/json")
        return await super().parse_http_body(request)

    def parse_json(self, data: str | bytes) -> object:
        """A request body (or GET's variables): UTF-8 JSON, an object (a list is a batch,
        which strawberry refuses); nesting deeper than the parser's stack is refused too."""
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            parsed = cast(object, json.loads(text))
        except (ValueError, RecursionError) as error:  # ValueError: UnicodeDecodeError too
            raise HTTPException(400, "the request body is not UTF-8 encoded JSON") from error
        if isinstance(parsed, dict | list):
            return cast(dict[str, object] | list[object], parsed)
        raise HTTPException(400, "the request body must be a JSON object")

    async def close_sockets(self) -> None:
        """Close every open socket with 1001: clients reconnect elsewhere and resume. All at
        once, and never for longer than CLOSE_SECONDS: a stalled client holds up no one."""

        async def close(socket: WebSocket) -> None:
            with contextlib.suppress(Exception):  # gone meanwhile
                await socket.close(1001, GOING_AWAY)

        closing = [asyncio.create_task(close(socket)) for socket in list(self.sockets)]
        if closing:
            _, stalled = await asyncio.wait(closing, timeout=CLOSE_SECONDS)
            for task in stalled:
                task.cancel()

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        db, verifier = self.resources.db, self.resources.verifier
        if db is None or verifier is None:
            raise RuntimeError("the app's lifespan is not running")
        principal, auth_error = await _authenticate(verifier, request.headers.get("authorization"))
        limiter = self.resources.limiter
        if principal is not None:
            logs.note(city=principal.city, client_id=principal.client_id)
        elif limiter is not None and isinstance(request, Request):
            address = _address_key(request.client.host if request.client else "-")
            anonymous = limiter.charge(Resource.ANONYMOUS, address, 1)
            if not anonymous.allowed:
                raise _Throttled(anonymous)

        def unavailable() -> None:
            if isinstance(response, Response):
                response.status_code = 503

        def rated(charge: Charge) -> None:
            if isinstance(response, Response):
                response.headers.update(graphql_edge.rate_headers(charge))
                if not charge.allowed:
                    response.status_code = 429
                    response.headers["Retry-After"] = str(charge.retry_after(time.time()))

        close_socket = request.close if isinstance(request, WebSocket) else None

        return Context(
            db=db,
            request_id=request_id_of(request.scope),
            principal=principal,
            auth_error=auth_error,
            on_unavailable=unavailable,
            observe=self._observe,
            realm_admin=RealmAdmin(self.resources.oauth, self.access_ttl)
            if self.resources.oauth
            else None,
            public_url=self.public_url,
            hub=self.resources.hub,
            close_socket=close_socket,
            production=self.production,
            on_redeliver=self.resources.deliverer.wake.set if self.resources.deliverer else None,
            limiter=limiter,
            on_rate=rated,
            # An HTTP operation's time budget, the same as its database budget; a socket's
            # subscriptions live long and are not bounded.
            deadline=time.monotonic() + self.operation_seconds
            if isinstance(request, Request)
            else None,
        )

    def _observe(self, operation: str, kind: str, outcome: str, seconds: float) -> None:
        self.metrics.operation_done(operation, kind, outcome, seconds)
        logs.note(operation=operation, operation_type=kind, outcome=outcome)

    async def on_ws_connect(self, context: Context) -> dict[str, object] | None:
        """graphql-transport-ws: the token comes in connection_init as
        {"authorization": "Bearer <token>"}; without a valid one the socket closes (4403).
        When the token expires, or it (its client, its person) is revoked, the socket closes
        with 4403, so clients re-authenticate and resume by cursor."""
        verifier = self.resources.verifier
        params = context.connection_params or {}
        header = params.get("authorization") or params.get("Authorization")
        if verifier is None or not isinstance(header, str):
            raise ConnectionRejectionError({"reason": "send a bearer token in connection_init"})
        principal, error = await _authenticate(verifier, header)
        if principal is None:
            reason = error.reason if isinstance(error, Unauthenticated) else "unavailable"
            raise ConnectionRejectionError({"reason": reason})
        context.principal, context.auth_error = principal, None
        logs.note(city=principal.city, client_id=principal.client_id)
        token = principal.token_id or f"{principal.city}:{principal.client_id}:{principal.subject}"
        if self.sockets_per_token[token] >= MAX_SOCKETS_PER_TOKEN:
            raise _SocketRefused(TOO_MANY, f"at most {MAX_SOCKETS_PER_TOKEN} sockets per token")
        self.sockets_per_token[token] += 1

        def release() -> None:
            self.sockets_per_token[token] -= 1
            if self.sockets_per_token[token] <= 0:
                del self.sockets_per_token[token]

        context.on_close.append(release)
        if context.close_socket is not None and principal.expires_at:
            close = context.close_socket

            async def expire() -> None:
                with contextlib.suppress(RuntimeError):  # already closed by the client
                    await close(4403, "token expired")

            delay = max(principal.expires_at - time.time(), 0)
            timer = asyncio.get_running_loop().call_later(
                delay, lambda: context.tasks.add(asyncio.ensure_future(expire()))
            )
            context.on_close.append(timer.cancel)
        if context.close_socket is not None and verifier.denylist is not None:
            close_revoked = context.close_socket

            async def revoke() -> None:
                with contextlib.suppress(RuntimeError):  # already closed by the client
                    await close_revoked(4403, "token revoked")

            # HTTP requests are checked one by one; an open socket is re-checked each time
            # the denylist is refreshed (its token, client or person revoked meanwhile).
            context.on_close.append(
                verifier.denylist.watch(
                    principal, lambda: context.tasks.add(asyncio.ensure_future(revoke()))
                )
            )
        return None

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        # Errors raised before an operation starts (a document that does not parse, or has
        # too many tokens) never reach the schema's ErrorCodes extension: code them here.
        if result.errors:
            result.errors = coded_errors(
                result.errors,
                request_id=request_id_of(request.scope),
                hide_suggestions=self.production,
                on_unavailable=lambda: None,
            )
        return await super().process_result(request, result)


def _address_key(host: str) -> str:
    """What requests without a token are counted under: the address, or for IPv6 its /64,
    which one subscriber usually holds whole."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


async def _authenticate(
    verifier: TokenVerifier, header: str | None
) -> tuple[Principal | None, Unauthenticated | Unavailable | None]:
    """Authenticate once per request; the outcome is kept, errors surface per field."""
    if not header:
        return None, None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, Unauthenticated("the Authorization header must be 'Bearer <token>'")
    try:
        return await verifier.verify(token.strip()), None
    except (Unauthenticated, Unavailable) as exc:
        # Unavailable: the token could not be checked; SERVICE_UNAVAILABLE, not a bad token.
        return None, exc
