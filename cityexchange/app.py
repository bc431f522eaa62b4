"""The composition root: settings, resources, background loops, schema and routes become one
ASGI app. What is opened is in cityexchange/resources.py, the loops in cityexchange/loops.py.

Run it with `cityexchange serve`, or `uvicorn --factory cityexchange.app:app_from_env`.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import os
from collections.abc import AsyncGenerator, Sequence
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from cityexchange import graphiql, logs, probes, runtime, unsubscribe, web_app
from cityexchange.auth.web import routes as oauth_routes
from cityexchange.drain import Drain
from cityexchange.graphql_view import GraphQLView
from cityexchange.http import BodyLimitMiddleware, DeadlineMiddleware, RequestIdMiddleware
from cityexchange.loops import background_loops
from cityexchange.metrics import Metrics, RequestMetricsMiddleware, mark_worker_gone
from cityexchange.resources import Current, budgets, database_uri, open_resources
from cityexchange.services import money, text
from cityexchange.services.errors import Unavailable
from cityexchange.services.store.monitoring import ORIGIN
from cityexchange.settings import Settings
from cityexchange.supervisor import Loop, Supervisor
from cityexchange.tracing import Tracing, start_if_enabled

__all__ = ["Service", "app_from_env", "budgets", "create_app"]
log = logging.getLogger("cityexchange")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def create_app(
    settings: Settings,
    *,
    http_transport: httpx.AsyncBaseTransport | None = None,
    handle_sigterm: bool = False,
    tracing: Tracing | None = None,
    metrics: Metrics | None = None,
    more_loops: Sequence[Loop] = (),
) -> Service:
    """Build the ASGI app; nothing connects until the lifespan starts. `http_transport`
    carries outbound HTTP (identity providers' JWKS); tests pass a fake one. With
    `handle_sigterm`, SIGTERM drains the process first (cityexchange/drain.py): for the
    server's own process, never for an app embedded in tests. With `tracing` (on when OTEL_*
    variables say so: cityexchange/tracing.py) requests, database commands and GraphQL
    operations are traced. `more_loops` run beside the service's own, supervised alike."""
    database_uri(settings)  # a missing URI stops the start here, not in the lifespan
    settings = with_loopback_origins(settings)
    logs.keep_libraries_above_debug()  # e.g. authlib logs issued tokens at DEBUG
    metrics = metrics or Metrics()
    current = Current()
    supervisor: Supervisor | None = None
    graphql = GraphQLView(resources=current, metrics=metrics, settings=settings, tracing=tracing)
    shared = graphql.shared
    metrics.documents(lambda: graphql.gate.analyses, lambda: graphql.gate.validations)
    # Clients' subscriptions: their own, and the members of groups of identical ones.
    metrics.read_live(
        lambda: (current().hub.own_subscribers if current.open else 0) + shared.members,
        lambda: shared.groups,
    )

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
    async def lifespan(_: Starlette) -> AsyncGenerator[dict[str, object]]:
        nonlocal supervisor
        release_sigterm = drain.install() if handle_sigterm else lambda: None
        try:
            async with (
                open_resources(settings, metrics=metrics, http_transport=http_transport) as r,
                current.serving(r),
                Supervisor([*background_loops(r), *more_loops]) as supervisor,
            ):
                # Read the language model and the rate table before the first request, off
                # the event loop: loaded inside one, they ate its time budget (a false 503).
                await asyncio.gather(asyncio.to_thread(text.warm), money.loaded())
                await web_app.register_clients(r)
                yield {"resources": r}
                # Let the loops finish their current item (their database calls are bounded
                # by timeoutMS): cancelling a driver call halfway can leave a socket behind.
                release_sigterm()
            log.info("background loops stopped; database connections closed")
        finally:
            release_sigterm()
            mark_worker_gone(metrics)
            if tracing is not None:
                await asyncio.to_thread(tracing.shutdown)  # flushes the last spans

    app = Service(
        routes=[
            *oauth_routes(lambda: current().realms),
            *([] if settings.production else [graphiql.assets()]),
            Route("/graphql", graphql),  # the view answers other methods: JSON 405
            *unsubscribe.routes(current),
            *web_app.routes(current),
            *probes.routes(
                current=current,
                supervisor=lambda: supervisor,
                draining=lambda: drain.draining,
                metrics=metrics,
            ),
        ],
        middleware=[
            Middleware(RequestMetricsMiddleware, metrics=metrics),
            *([Middleware(tracing.wrap)] if tracing else []),
            Middleware(RequestIdMiddleware),
            Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
            Middleware(DeadlineMiddleware, seconds=settings.operation_timeout_ms / 1000),
        ],
        lifespan=lifespan,
        exception_handlers={Unavailable: _unavailable},
    )
    # The view sets a socket's request id and log fields and counts it (not the middlewares).
    app.sockets = WebSocketRoute("/graphql", tracing.wrap(graphql) if tracing else graphql)
    return app


def with_loopback_origins(settings: Settings) -> Settings:
    """In development, a page on any loopback name of the served port (localhost as well as
    127.0.0.1) may open WebSockets: a browser at http://localhost:8000 is no other site."""
    parts = urlsplit(settings.public_url)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    if settings.production or host not in LOOPBACK_NAMES:
        return settings
    port = f":{parts.port}" if parts.port else ""
    loopback = tuple(f"{parts.scheme}://{name}{port}" for name in LOOPBACK_NAMES)
    known = settings.allowed_origins
    origins = (*known, *(origin for origin in loopback if origin not in known))
    return dataclasses.replace(settings, allowed_origins=origins)


class Service(Starlette):
    """The app; the GraphQL endpoint's WebSockets go to `sockets`, around the HTTP middlewares
    (request metrics, body limit, deadline) and Starlette's error, exception and routing
    layers: each of their coroutine frames would stay alive for as long as a socket is open,
    and none of them does anything for a socket."""

    sockets: WebSocketRoute | None = None

    # A coroutine function, not a plain method handing back a coroutine (which would save
    # this frame too): uvicorn takes an app whose __call__ is not one for ASGI 2.
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and self.sockets is not None:
            matched, child = self.sockets.matches(scope)
            if matched is Match.FULL:
                scope["app"] = self
                scope.update(child)
                await self.sockets.app(scope, receive, send)  # not .handle: one frame fewer
                return
        await super().__call__(scope, receive, send)


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


def app_from_env() -> Service:
    """Factory for `uvicorn --factory cityexchange.app:app_from_env` (the container's
    command, and each of `serve --workers N`'s workers): settings from the environment,
    logs on stdout, SIGTERM drains."""
    settings = Settings.from_env()
    logs.configure(production=settings.production, level=settings.log_level)
    metrics = Metrics(multiprocess_dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None)
    app = create_app(settings, handle_sigterm=True, tracing=start_if_enabled(), metrics=metrics)
    runtime.tune_collector()
    return app
