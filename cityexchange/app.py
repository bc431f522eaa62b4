"""The composition root: settings, database, realms, schema and routes become one ASGI app.

Run it with `cityexchange serve`, or `uvicorn --factory cityexchange.app:app_from_env`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

import httpx
from prometheus_client import Gauge
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from auth.denylist import Denylist
from auth.federation import Federation
from auth.oauth_store import INDEXES as OAUTH_INDEXES
from auth.oauth_store import OAuthStore
from auth.realms import RealmRegistry
from auth.tokens import KNOWN_SCOPES, TokenVerifier
from auth.web import OAuthRealms
from auth.web import routes as oauth_routes
from cityexchange import logs
from cityexchange.drain import Drain
from cityexchange.graphql_view import GraphQLView
from cityexchange.http import (
    BodyLimitMiddleware,
    DeadlineMiddleware,
    RequestIdMiddleware,
)
from cityexchange.metrics import Metrics
from cityexchange.resources import Resources
from cityexchange.settings import Settings, SettingsError
from cityexchange.tracing import Tracing, start_if_enabled
from services.delivery import Deliverer, SendFailed
from services.errors import Unavailable
from services.live import Hub
from services.rate_limits import Budget, RateLimiter, Resource, keep_synced
from services.store.database import Database
from services.store.event_stream import EventStream
from services.store.indexes import ensure_indexes
from services.store.monitoring import ORIGIN, CommandCounter

log = logging.getLogger("cityexchange")
READINESS_TIMEOUT_SECONDS = 2.0
WEBHOOK_TIMEOUT_SECONDS = 10.0
INDEX_RETRY_SECONDS = 5.0


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
    metrics.documents(lambda: graphql.gate.analyses, lambda: graphql.gate.validations)

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
            hsts=settings.production,
        )  # fmt: skip
        stopping = asyncio.Event()
        hub = Hub(on_fanout=live_metrics.fanned_out.inc)
        resources.hub = hub
        stream = EventStream(db, hub.publish, on_open=live_metrics.change_streams.inc)
        following = asyncio.create_task(stream.run(stopping))
        webhook_http = httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False)

        async def send(url: str, headers: dict[str, str], body: bytes) -> int:
            # The status is all a delivery needs: the response body is never read, so a
            # receiver cannot make us buffer it. InvalidURL is no HTTPError: caught by name.
            try:
                async with webhook_http.stream(
                    "POST", url, content=body, headers=headers
                ) as response:
                    return response.status_code
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise SendFailed(type(exc).__name__) from exc

        deliverer = Deliverer(
            db, send, production=settings.production,
            retry_base_seconds=settings.webhook_retry_seconds,
            send_timeout_seconds=WEBHOOK_TIMEOUT_SECONDS,
            on_attempt=lambda outcome: live_metrics.webhook_attempts.labels(outcome).inc(),
            on_lag=live_metrics.delivery_lag.observe,
        )  # fmt: skip
        resources.deliverer = deliverer
        hub.on_publish = deliverer.wake.set
        delivering = asyncio.create_task(deliverer.run(stopping))
        identity_providers = asyncio.create_task(federation.keep_fresh(stopping))
        revocations = asyncio.create_task(denylist.keep_fresh(stopping))
        limiter = RateLimiter(budgets(settings))
        resources.limiter = limiter
        rating = asyncio.create_task(keep_synced(limiter, db, stopping))
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
            await rating
            await identity_providers
            await revocations
            await following
            await delivering
            await webhook_http.aclose()
            resources.hub = resources.deliverer = resources.limiter = None
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


def budgets(settings: Settings) -> dict[Resource, Budget]:
    """The rate-limit budgets the settings give (docs/security.md)."""
    return {
        Resource.GRAPHQL: Budget(settings.rate_limit_points, 3600),
        Resource.COMMENTS: Budget(settings.comments_per_hour, 3600),
        Resource.PUBLICATIONS: Budget(settings.publications_per_hour, 3600),
        Resource.ANONYMOUS: Budget(settings.anonymous_per_minute, 60),
    }


def app_from_env() -> Starlette:
    """Factory for `uvicorn --factory cityexchange.app:app_from_env` (the container's
    command): settings from the environment, logs on stdout, SIGTERM drains."""
    settings = Settings.from_env()
    logs.configure(production=settings.production, level=settings.log_level)
    return create_app(settings, handle_sigterm=True, tracing=start_if_enabled())
