"""The GraphQL endpoint over HTTP and WebSocket (graphql-transport-ws): authentication per
request or per socket, the edge's limits (rate, response size, sockets per token, messages
per second) and its error bodies (cityexchange/graphql_edge.py). The sockets' own classes
(lifecycle, messages, handler) are in cityexchange/sockets.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import cast

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from cityexchange import graphiql, graphql_edge, logs, sockets
from cityexchange.auth.admin import RealmAdmin
from cityexchange.auth.errors import Unauthenticated
from cityexchange.http import assign_request_id, request_id_of
from cityexchange.metrics import Metrics
from cityexchange.resources import Resources
from cityexchange.schema.context import Context
from cityexchange.schema.errors import coded_errors
from cityexchange.schema.root import build_schema
from cityexchange.schema.sharing import MessageEncoder
from cityexchange.services import persisted_documents, rate_limits
from cityexchange.services.errors import Unavailable
from cityexchange.services.persisted_documents import DocumentCache, DocumentError
from cityexchange.services.principal import Principal
from cityexchange.services.rate_limits import Charge, Resource
from cityexchange.services.store.monitoring import ORIGIN
from cityexchange.settings import Settings
from cityexchange.tracing import Tracing

log = logging.getLogger("cityexchange.graphql")


class _Throttled(Exception):
    """A request without a valid token over its address's budget."""

    def __init__(self, charge: Charge) -> None:
        self.charge = charge


class GraphQLView(GraphQL[Context, None]):
    websocket_adapter_class = sockets.WebSocketAdapter  # pyright: ignore[reportAssignmentType]
    graphql_transport_ws_handler_class = sockets.TransportWSHandler

    def __init__(
        self,
        *,
        resources: Callable[[], Resources],
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
        self.expiries = sockets.Expiries()  # when the open sockets' tokens expire
        self._sockets_by_context: dict[int, sockets.Socket] = {}  # by id() of the socket's context
        self.draining: Callable[[], bool] = lambda: False
        super().__init__(
            schema,
            graphql_ide=None if settings.production else "graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            allowed_origins=settings.allowed_origins,
            max_subscriptions_per_connection=sockets.MAX_SUBSCRIPTIONS_PER_SOCKET,
            keep_alive=True,
            keep_alive_interval=sockets.KEEP_ALIVE_SECONDS,
            connection_init_wait_timeout=timedelta(seconds=sockets.CONNECTION_INIT_SECONDS),
        )
        self.resources = resources
        self.metrics = metrics
        self.production = settings.production
        self.access_ttl = settings.access_token_ttl_seconds
        self.operation_seconds = settings.operation_timeout_ms / 1000
        self.public_url = settings.public_url
        self.documents = DocumentCache()  # persisted documents, in front of the database
        self.trusted_clients = frozenset(settings.trusted_documents)
        self.persisted_per_hour = settings.persisted_per_hour

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL from this server's own assets (cityexchange/graphiql.py), not a CDN."""
        return graphiql.response()

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
        # The app routes a socket here around the HTTP middlewares (cityexchange/app.py), so
        # the socket's request id, log fields and count are set here, in this one frame.
        request_id = assign_request_id(scope)
        origin = ORIGIN.set("request")  # the socket's own database commands (its token check)
        fields = logs.REQUEST.set({"request_id": request_id, "method": "WS", "path": scope["path"]})
        opened = self.metrics.live_updates.websockets
        opened.inc()
        try:
            socket = WebSocket(scope, receive=receive, send=send)
            if self.draining():
                await socket.close(1001, sockets.GOING_AWAY)  # refused: connect to another replica
                return
            context = await self.get_context(socket, socket)
            lifecycle = sockets.Socket(socket)
            self.sockets.add(socket)
            self._sockets_by_context[id(context)] = lifecycle
            try:
                await self.run(socket, context=context)
            finally:
                self.sockets.discard(socket)
                del self._sockets_by_context[id(context)]
                lifecycle.closed()
        finally:
            opened.dec()
            logs.REQUEST.reset(fields)
            ORIGIN.reset(origin)

    def socket_of(self, context: Context) -> sockets.Socket:
        """The open socket whose operations `context` serves."""
        return self._sockets_by_context[id(context)]

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One HTTP request: refusals as JSON request errors with a code and the request id
        (strawberry's own are plain text), in the negotiated media type, and no response
        over MAX_RESPONSE_BYTES."""
        request = Request(scope, receive=receive)
        request_id = request_id_of(scope)
        media = graphql_edge.negotiate(request.headers.get("accept")) or graphql_edge.LEGACY_JSON
        try:
            response = await self.run(request)
        except HTTPException as error:
            response = graphql_edge.refused(error, request_id=request_id, media=media)
        except _Throttled as throttled:
            response = graphql_edge.throttled(throttled.charge, request_id=request_id, media=media)
        except graphql_edge.ResponseTooLarge as refused:
            response = graphql_edge.too_large(refused.size, request_id=request_id, media=media)
        except DocumentError as refused:
            response = graphql_edge.document_refused(refused, request_id=request_id, media=media)
        except Unavailable as error:  # a persisted document could not be looked up
            response = graphql_edge.request_error(
                503,
                "SERVICE_UNAVAILABLE",
                str(error),
                request_id=request_id,
                media=media,
                headers={"Retry-After": "5"},
            )
        except Exception:
            # A bug, not the client's doing: logged with its traceback, answered as JSON
            # with the request id to quote, nothing of the error's text shown.
            log.exception("the GraphQL endpoint failed", extra={"request_id": request_id})
            response = graphql_edge.request_error(
                500,
                "INTERNAL_SERVER_ERROR",
                "the server failed; quote the request id to its operator",
                request_id=request_id,
                media=media,
            )
        await response(scope, receive, send)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        """The response's headers and status as the request goes; its media type is the one
        `Accept` asks for (unacceptable ones are refused with the request: parse_http_body)."""
        sub_response = await super().get_sub_response(request)
        accept = request.headers.get("accept")
        sub_response.media_type = graphql_edge.negotiate(accept) or graphql_edge.LEGACY_JSON
        if request.scope.get("method") == "GET":
            # What a cache in front may keep: the answer differs by media type and by token,
            # and one a token asked for is that caller's alone.
            sub_response.headers["Vary"] = "Accept, Authorization"
            if request.headers.get("authorization"):
                sub_response.headers["Cache-Control"] = "private, no-cache"
        return sub_response

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        """GraphiQL for a browser's GET without a query, unless it names a persisted document."""
        params = request.query_params
        persisted = "extensions" in params or "documentId" in params
        return not persisted and super().should_render_graphql_ide(request)

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        """The response in the negotiated media type, with its status (graphql_edge.status_of)
        unless a limit or an outage set one; refused whole when over MAX_RESPONSE_BYTES:
        measured on the result before it is encoded, then on the encoded body."""
        graphql_edge.check_size(response_data)
        media = sub_response.media_type or graphql_edge.LEGACY_JSON
        has_data = isinstance(response_data, dict) and "data" in response_data
        status = sub_response.status_code or graphql_edge.status_of(media, has_data=has_data)
        response = Response(
            self.encode_json(response_data),
            status_code=status,
            media_type=graphql_edge.content_type(media),
        )
        response.headers.raw.extend(sub_response.headers.raw)
        response.background = sub_response.background
        if len(response.body) > graphql_edge.MAX_RESPONSE_BYTES:
            raise graphql_edge.ResponseTooLarge(len(response.body))
        return response

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """A GraphQL-over-HTTP request: GET's query parameters, or a POST's application/json
        body; one operation (no batches), which may name a persisted document."""
        if graphql_edge.negotiate(request.headers.get("accept")) is None:
            raise HTTPException(
                406, f"accept {graphql_edge.GRAPHQL_RESPONSE} or {graphql_edge.LEGACY_JSON}"
            )
        if request.method == "GET":
            data: object = self.parse_query_params(request.query_params)
        else:
            media_type = (request.content_type or "").partition(";")[0].strip().lower()
            if media_type not in graphql_edge.ACCEPTED_MEDIA_TYPES:
                raise HTTPException(415, "send the GraphQL request as application/json")
            data = self.parse_json(await request.get_body())
        return graphql_edge.request_data(data)

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """One operation: queries over GET, queries and mutations over POST (subscriptions go
        over the socket). A persisted document is looked up first (a trusted client's must be
        registered), and a new one is learned once it has passed validation."""
        document_id = (
            request_data.document_id if isinstance(request_data, graphql_edge.RequestData) else None
        )
        principal = context.principal
        trusted = principal is not None and principal.client_id in self.trusted_clients
        resolved = None
        if document_id is not None or (trusted and request_data.query is not None):
            resolved = await persisted_documents.resolve(
                db=self.resources().db,
                cache=self.documents,
                id=document_id,
                text=request_data.query,
                trusted=trusted,
            )
            request_data.query = resolved.text
        allowed = {OperationType.QUERY}
        if request_adapter.method == "POST":
            allowed.add(OperationType.MUTATION)
        try:
            result = await self.schema.execute(
                request_data.query,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except InvalidOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason(request_adapter.method)) from error
        except CannotGetOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason()) from error
        except MissingQueryError as error:
            raise HTTPException(400, "no GraphQL query (nor persisted document) found") from error
        if resolved is not None and resolved.learn and not _request_error(result):
            await self._learn(resolved.text, principal, request)
        return result

    async def _learn(self, text: str, principal: Principal | None, request: Request) -> None:
        """Store a document a client sent with its hash, counted against its client (or its
        address, without a token)."""
        if self.persisted_per_hour <= 0:
            return
        host = request.client.host if request.client else "-"
        learner = (
            f"client:{principal.city}/{principal.client_id}"
            if principal is not None
            else f"address:{rate_limits.address_key(host)}"
        )
        try:
            await persisted_documents.learn(
                db=self.resources().db,
                cache=self.documents,
                text=text,
                learner=learner,
                per_hour=self.persisted_per_hour,
            )
        except Unavailable:  # it ran; the client sends its text again next time
            log.warning("could not store a persisted document", exc_info=True)

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
                await socket.close(1001, sockets.GOING_AWAY)

        closing = [asyncio.create_task(close(socket)) for socket in list(self.sockets)]
        if closing:
            _, stalled = await asyncio.wait(closing, timeout=sockets.CLOSE_SECONDS)
            for task in stalled:
                task.cancel()

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        resources = self.resources()
        db, verifier, limiter = resources.db, resources.verifier, resources.limiter
        principal, auth_error = await verifier.authenticate(request.headers.get("authorization"))
        if principal is not None:
            logs.note(city=principal.city, client_id=principal.client_id)
        elif isinstance(request, Request):
            address = rate_limits.address_key(request.client.host if request.client else "-")
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

        return Context(
            db=db,
            request_id=request_id_of(request.scope),
            principal=principal,
            auth_error=auth_error,
            # A socket has no response to mark: its context keeps no closures over it.
            on_unavailable=unavailable if isinstance(response, Response) else _no_response,
            observe=self._observe,
            realm_admin=RealmAdmin(resources.oauth, self.access_ttl),
            public_url=self.public_url,
            hub=resources.hub,
            production=self.production,
            on_redeliver=resources.deliverer.wake.set,
            limiter=limiter,
            on_rate=rated if isinstance(response, Response) else _no_rate_headers,
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
        verifier = self.resources().verifier
        socket = self.socket_of(context)
        params, socket.params = socket.params, {}  # read once: the socket keeps no token
        header = params.get("authorization") or params.get("Authorization")
        if not isinstance(header, str):
            raise ConnectionRejectionError({"reason": "send a bearer token in connection_init"})
        principal, error = await verifier.authenticate(header)
        if principal is None:
            reason = error.reason if isinstance(error, Unauthenticated) else "unavailable"
            raise ConnectionRejectionError({"reason": reason})
        context.principal, context.auth_error = principal, None
        logs.note(city=principal.city, client_id=principal.client_id)
        socket.admit(principal, verifier.denylist, self.sockets_per_token, self.expiries)
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
        processed = await super().process_result(request, result)
        if _request_error(result):
            # "If the request fails before execution begins, the `data` entry should not be
            # present" (GraphQL spec, Response Format; GraphQL over HTTP, request errors).
            processed.pop("data", None)
        return processed


def _no_response() -> None:
    """A socket's operations have no HTTP status to set."""


def _no_rate_headers(_: Charge) -> None:
    """... nor rate-limit headers."""


def _request_error(result: ExecutionResult) -> bool:
    """Whether the operation failed before execution began: no data, and only errors
    without a path (field errors always have one)."""
    errors = result.errors or []
    return result.data is None and bool(errors) and all(error.path is None for error in errors)
