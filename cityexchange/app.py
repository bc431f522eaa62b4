"""The composition root: settings, database, realms, schema and routes become one ASGI app.

Run it with `cityexchange serve`, or `uvicorn --factory cityexchange.app:app_from_env`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import httpx
from prometheus_client import Gauge
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from auth.admin import RealmAdmin
from auth.denylist import Denylist
from auth.errors import Unauthenticated
from auth.federation import Federation
from auth.oauth_store import INDEXES as OAUTH_INDEXES
from auth.oauth_store import OAuthStore
from auth.realms import RealmRegistry
from auth.tokens import KNOWN_SCOPES, TokenVerifier
from auth.web import OAuthRealms
from auth.web import routes as oauth_routes
from cityexchange import logs
from cityexchange.drain import Drain
from cityexchange.http import (
    BodyLimitMiddleware,
    DeadlineMiddleware,
    RequestIdMiddleware,
    request_id_of,
)
from cityexchange.metrics import Metrics
from cityexchange.settings import Settings, SettingsError
from cityexchange.tracing import Tracing, start_if_enabled
from schema.context import Context
from schema.errors import coded_errors
from schema.root import build_schema
from schema.sharing import MessageEncoder
from services.delivery import Deliverer, SendFailed
from services.errors import Unavailable
from services.live import Hub
from services.principal import Principal
from services.store.database import Database
from services.store.event_stream import EventStream
from services.store.indexes import ensure_indexes
from services.store.monitoring import ORIGIN, CommandCounter

log = logging.getLogger("cityexchange")
READINESS_TIMEOUT_SECONDS = 2.0
MAX_SUBSCRIPTIONS_PER_SOCKET = 20  # BRIEF §7
CONNECTION_INIT_SECONDS = 5  # BRIEF §7
KEEP_ALIVE_SECONDS = 15
WEBHOOK_TIMEOUT_SECONDS = 10.0
INDEX_RETRY_SECONDS = 5.0
GOING_AWAY = "server shutting down: reconnect, and resume with after"
CLOSE_SECONDS = 2.0


@dataclass(slots=True)
class Resources:
    """What the lifespan opens, handed to requests; None outside the lifespan."""

    db: Database | None = None
    verifier: TokenVerifier | None = None
    hub: Hub | None = None
    deliverer: Deliverer | None = None
    oauth: OAuthStore | None = None
    realms: OAuthRealms | None = None

    def oauth_realms(self) -> OAuthRealms:
        if self.realms is None:
            raise RuntimeError("the app's lifespan is not running")
        return self.realms


class _WebSocketAdapter(ASGIWebSocketAdapter):
    """A message for a socket that is already closed (by the client, or by the server while
    it drains) is dropped: the connection's handler is ending its operations anyway, and this
    is no error to log."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await super().send_json(message)
        except (WebSocketDisconnected, RuntimeError):
            if self.ws.application_state is not WebSocketState.DISCONNECTED:
                raise


class GraphQLView(GraphQL[Context, None]):
    websocket_adapter_class = _WebSocketAdapter  # pyright: ignore[reportAssignmentType]

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
        self.encoder = MessageEncoder()
        self.sockets: set[WebSocket] = set()
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
        self.public_url = settings.public_url

    def encode_json(self, data: object) -> str:
        return self.encoder.encode(data)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
        if principal is not None:
            logs.note(city=principal.city, client_id=principal.client_id)

        def unavailable() -> None:
            if isinstance(response, Response):
                response.status_code = 503

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
        )

    def _observe(self, operation: str, kind: str, outcome: str, seconds: float) -> None:
        self.metrics.operation_done(operation, kind, outcome, seconds)
        logs.note(operation=operation, operation_type=kind, outcome=outcome)

    async def on_ws_connect(self, context: Context) -> dict[str, object] | None:
        """graphql-transport-ws: the token comes in connection_init as
        {"authorization": "Bearer <token>"}; without a valid one the socket closes (4403).
        When the token expires the socket closes with 4403, so clients re-authenticate and
        resume by cursor."""
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


def create_app(
    settings: Settings,
    *,
    http_transport: httpx.AsyncBaseTransport | None = None,
    handle_sigterm: bool = False,
    tracing: Tracing | None = None,
) -> Starlette:
    """Build the ASGI app; nothing connects until the lifespan starts. `http_transport`
    carries outbound HTTP (identity providers' JWKS); tests pass a fake one. With
    `handle_sigterm`, SIGTERM drains the process first (cityexchange/drain.py): for the
    server's own process, never for an app embedded in tests. With `tracing` (on when OTEL_*
    variables say so: cityexchange/tracing.py) requests, database commands and GraphQL
    operations are traced."""
    if settings.mongodb_uri is None:
        raise SettingsError(
            "CITYEXCHANGE_MONGODB_URI is not set (`cityexchange serve` starts "
            "the embedded database and sets it for you)"
        )
    uri = settings.mongodb_uri.value
    logs.keep_libraries_above_debug()  # e.g. authlib logs issued tokens at DEBUG
    metrics = Metrics()
    resources = Resources()
    graphql = GraphQLView(resources=resources, metrics=metrics, settings=settings, tracing=tracing)
    shared = graphql.shared

    def subscriptions() -> int:
        """Clients' subscriptions: their own, and the members of groups of identical ones."""
        return (resources.hub.own_subscribers if resources.hub else 0) + shared.members

    live_metrics = metrics.live(subscriptions, groups=lambda: shared.groups)

    def group_context() -> contextvars.Context:
        """A group of identical subscriptions runs as no one request: its own database
        commands (origin "subscription"), no request's log fields or trace."""
        context = contextvars.Context()
        context.run(ORIGIN.set, "subscription")
        return context

    shared.new_context = group_context
    drain = Drain(settings.drain_seconds, graphql.close_sockets)
    graphql.draining = lambda: drain.draining

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncGenerator[None]:
        db = Database.connect(
            uri,
            settings.db_name,
            server_selection_timeout_ms=settings.server_selection_timeout_ms,
            timeout_ms=settings.operation_timeout_ms,
            listeners=[CommandCounter(metrics.command_started, metrics.command_failed)],
        )
        # authlib's server core is synchronous: it gets its own synchronous client and runs
        # in the thread pool, so the event loop never waits on it.
        oauth = OAuthStore.connect(
            uri, settings.db_name,
            server_selection_timeout_ms=settings.server_selection_timeout_ms,
            timeout_ms=settings.operation_timeout_ms,
        )  # fmt: skip
        http = httpx.AsyncClient(transport=http_transport, follow_redirects=False)
        registry = RealmRegistry(db, settings.public_url)
        federation = Federation(db, http, KNOWN_SCOPES)
        denylist = Denylist(db)
        resources.db, resources.oauth = db, oauth
        resources.verifier = TokenVerifier(
            registry, settings.audience, denylist=denylist,
            federation=federation,
        )  # fmt: skip
        resources.realms = OAuthRealms(
            store=oauth, registry=registry, audience=settings.audience,
            access_ttl_seconds=settings.access_token_ttl_seconds,
            secure_cookies=settings.public_url.startswith("https://"),
        )  # fmt: skip
        stopping = asyncio.Event()
        hub = Hub(on_fanout=live_metrics.fanned_out.inc)
        resources.hub = hub
        stream = EventStream(db, hub.publish, on_open=live_metrics.change_streams.inc)
        following = asyncio.create_task(stream.run(stopping))
        webhook_http = httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False)

        async def send(url: str, headers: dict[str, str], body: bytes) -> int:
            try:
                response = await webhook_http.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                raise SendFailed(type(exc).__name__) from exc
            return response.status_code

        deliverer = Deliverer(
            db, send, production=settings.production,
            retry_base_seconds=settings.webhook_retry_seconds,
            on_attempt=lambda outcome: live_metrics.webhook_attempts.labels(outcome).inc(),
            on_lag=live_metrics.delivery_lag.observe,
        )  # fmt: skip
        resources.deliverer = deliverer
        hub.on_publish = deliverer.wake.set
        delivering = asyncio.create_task(deliverer.run(stopping))
        identity_providers = asyncio.create_task(federation.keep_fresh(stopping))
        revocations = asyncio.create_task(denylist.keep_fresh(stopping))
        indexing = asyncio.create_task(
            _ensure_indexes_until_done(db, stopping, settings.event_retention_days)
        )
        release_sigterm = drain.install() if handle_sigterm else lambda: None
        try:
            yield
        finally:
            # Let an attempt in flight finish (its operations are bounded by timeoutMS):
            # cancelling a driver call halfway can leave a socket behind.
            release_sigterm()
            stopping.set()
            await indexing
            await identity_providers
            await revocations
            await following
            await delivering
            await webhook_http.aclose()
            resources.hub = resources.deliverer = None
            resources.db = resources.verifier = resources.oauth = resources.realms = None
            await http.aclose()
            await db.close()
            await asyncio.to_thread(oauth.close)
            if tracing is not None:
                await asyncio.to_thread(tracing.shutdown)  # flushes the last spans

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        db = resources.db
        if drain.draining:
            return JSONResponse({"status": "draining"}, status_code=503)
        if db is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        try:
            await db.ping(within_seconds=READINESS_TIMEOUT_SECONDS)
        except Unavailable:
            return JSONResponse({"status": "database unreachable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def prometheus(_: Request) -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    return Starlette(
        routes=[
            *oauth_routes(resources.oauth_realms),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", _Counted(graphql, live_metrics.websockets)),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", prometheus),
        ],
        middleware=[
            *([Middleware(tracing.wrap)] if tracing else []),
            Middleware(RequestIdMiddleware),
            Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
            Middleware(DeadlineMiddleware, seconds=settings.operation_timeout_ms / 1000),
        ],
        lifespan=lifespan,
        exception_handlers={Unavailable: _unavailable},
    )


class _Counted:
    """The WebSocket endpoint, with its open connections counted (a class, so Starlette
    routes to it as an ASGI app rather than as a websocket function)."""

    def __init__(self, app: ASGIApp, gauge: Gauge) -> None:
        self.app = app
        self.gauge = gauge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.gauge.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.gauge.dec()


async def _unavailable(_: Request, __: Exception) -> Response:
    """The database is unreachable outside GraphQL (the realms' OAuth endpoints): 503, in the
    error format OAuth clients understand (RFC 6749 §4.1.2.1 temporarily_unavailable)."""
    return JSONResponse(
        {
            "error": "temporarily_unavailable",
            "error_description": "the database is unreachable; try again",
        },
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def _ensure_indexes_until_done(
    db: Database, stopping: asyncio.Event, retention_days: int
) -> None:
    """Create indexes at start; if the database is down, keep trying instead of dying."""
    while not stopping.is_set():
        try:
            await ensure_indexes(db, OAUTH_INDEXES, event_retention_seconds=retention_days * 86_400)
            return
        except Unavailable:
            log.warning(
                "database unreachable; creating indexes again in %.0fs", INDEX_RETRY_SECONDS
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), INDEX_RETRY_SECONDS)


def app_from_env() -> Starlette:
    """Factory for `uvicorn --factory cityexchange.app:app_from_env` (the container's
    command): settings from the environment, logs on stdout, SIGTERM drains."""
    settings = Settings.from_env()
    logs.configure(production=settings.production, level=settings.log_level)
    return create_app(settings, handle_sigterm=True, tracing=start_if_enabled())
