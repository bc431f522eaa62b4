"""Everything long-lived the service opens, in one place: `open_resources(settings)` opens the
database clients, the outbound HTTP clients, the realms, the token verifier, the live-update
hub, the webhook deliverer, the crisis alerts, the mail outbox and digests, and the rate
limiter, and closes them all on the way out.

The app's lifespan, the CLI, the demo loader, the benchmarks and the tests all open them
through it. Closing goes through an `AsyncExitStack`: a resource whose close fails is logged
and the others are still closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx

from cityexchange.auth import web_app_clients
from cityexchange.auth.denylist import Denylist
from cityexchange.auth.federation import Federation
from cityexchange.auth.oauth_store import OAuthStore
from cityexchange.auth.realms import RealmRegistry
from cityexchange.auth.tokens import KNOWN_SCOPES, TokenVerifier
from cityexchange.auth.web import OAuthRealms
from cityexchange.mail import SmtpMailer
from cityexchange.metrics import Metrics
from cityexchange.services.crisis_alerts import CrisisAlerts
from cityexchange.services.delivery import Deliverer, SendFailed
from cityexchange.services.digests import Digests
from cityexchange.services.live import Hub
from cityexchange.services.mail import Outbox
from cityexchange.services.rate_limits import Budget, RateLimiter, Resource
from cityexchange.services.store.database import Database
from cityexchange.services.store.event_stream import EventStream
from cityexchange.services.store.monitoring import CommandCounter
from cityexchange.settings import Settings, SettingsError

log = logging.getLogger("cityexchange")
WEBHOOK_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Resources:
    """What `open_resources` opened; valid until its `async with` ends."""

    settings: Settings
    db: Database
    oauth: OAuthStore  # authlib's server core is synchronous: its own synchronous client
    http: httpx.AsyncClient  # outbound: identity providers' metadata and JWKS
    webhook_http: httpx.AsyncClient
    registry: RealmRegistry
    federation: Federation
    denylist: Denylist
    verifier: TokenVerifier
    realms: OAuthRealms
    hub: Hub
    events: EventStream
    deliverer: Deliverer
    crisis_alerts: CrisisAlerts
    outbox: Outbox | None  # None: no CITYEXCHANGE_SMTP_URL, no mail
    digests: Digests | None  # as the outbox: no mail, no digests
    limiter: RateLimiter
    metrics: Metrics


def budgets(settings: Settings) -> dict[Resource, Budget]:
    """The rate-limit budgets the settings give (docs/security.md)."""
    return {
        Resource.GRAPHQL: Budget(settings.rate_limit_points, 3600),
        Resource.COMMENTS: Budget(settings.comments_per_hour, 3600),
        Resource.PUBLICATIONS: Budget(settings.publications_per_hour, 3600),
        Resource.ANONYMOUS: Budget(settings.anonymous_per_minute, 60),
    }


def database_uri(settings: Settings) -> str:
    if settings.mongodb_uri is None:
        raise SettingsError(
            "CITYEXCHANGE_MONGODB_URI is not set (`cityexchange serve` starts "
            "the embedded database and sets it for you)"
        )
    return settings.mongodb_uri.value


def _released(name: str, close: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
    """`close`, with its failure logged instead of raised: the exit stack goes on with the
    rest, and shutdown is not reported as failed for one resource."""

    async def release() -> None:
        try:
            await close()
        except Exception:
            log.exception("closing %s failed", name, extra={"resource": name})

    return release


@asynccontextmanager
async def open_database(
    settings: Settings, *, metrics: Metrics | None = None
) -> AsyncGenerator[Database]:
    """The service's asynchronous database client alone (admin commands, tests)."""
    listeners = [CommandCounter(metrics.command_started, metrics.command_failed)] if metrics else []
    db = Database.connect(
        database_uri(settings),
        settings.db_name,
        server_selection_timeout_ms=settings.server_selection_timeout_ms,
        timeout_ms=settings.operation_timeout_ms,
        listeners=listeners,
    )
    async with AsyncExitStack() as stack:
        stack.push_async_callback(_released("the database client", db.close))
        yield db


@asynccontextmanager
async def open_resources(
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    http_transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncGenerator[Resources]:
    """Open every resource of the service; close them all when the block ends. Nothing here
    starts a background loop (cityexchange/loops.py does). `http_transport` carries outbound
    HTTP to identity providers; tests pass a fake one."""
    metrics = metrics or Metrics()
    uri = database_uri(settings)
    async with AsyncExitStack() as stack:
        db = await stack.enter_async_context(open_database(settings, metrics=metrics))
        oauth = OAuthStore.connect(
            uri,
            settings.db_name,
            server_selection_timeout_ms=settings.server_selection_timeout_ms,
            timeout_ms=settings.operation_timeout_ms,
        )
        stack.push_async_callback(
            _released("the OAuth store's client", lambda: asyncio.to_thread(oauth.close))
        )
        http = httpx.AsyncClient(transport=http_transport, follow_redirects=False)
        stack.push_async_callback(_released("the identity providers' HTTP client", http.aclose))
        webhook_http = httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False)
        stack.push_async_callback(_released("the webhooks' HTTP client", webhook_http.aclose))

        registry = RealmRegistry(db, settings.public_url)
        federation = Federation(db, http, KNOWN_SCOPES)
        denylist = Denylist(db)
        live = metrics.live_updates
        hub = Hub(on_fanout=live.fanned_out.inc)
        deliverer = Deliverer(
            db,
            _sender(webhook_http),
            production=settings.production,
            app_url=f"{settings.public_url}/app",
            retry_base_seconds=settings.webhook_retry_seconds,
            send_timeout_seconds=WEBHOOK_TIMEOUT_SECONDS,
            on_attempt=lambda outcome: live.webhook_attempts.labels(outcome).inc(),
            on_lag=live.delivery_lag.observe,
        )
        hub.on_publish = deliverer.wake.set
        outbox = None
        if settings.smtp_url is not None:
            outbox = Outbox(
                db,
                SmtpMailer.from_url(settings.smtp_url.value),
                sender=settings.sender,
                domain=settings.mail_domain,
            )
        yield Resources(
            settings=settings,
            db=db,
            oauth=oauth,
            http=http,
            webhook_http=webhook_http,
            registry=registry,
            federation=federation,
            denylist=denylist,
            verifier=TokenVerifier(
                registry, settings.audience, denylist=denylist, federation=federation
            ),
            realms=OAuthRealms(
                store=oauth,
                registry=registry,
                audience=settings.audience,
                access_ttl_seconds=settings.access_token_ttl_seconds,
                secure_cookies=settings.public_url.startswith("https://"),
                hsts=settings.production,
                web_app_redirect_uris=web_app_clients.redirect_uris(
                    settings.public_url, production=settings.production
                ),
            ),
            hub=hub,
            events=EventStream(db, hub.publish, on_open=live.change_streams.inc),
            deliverer=deliverer,
            crisis_alerts=CrisisAlerts(
                db, app_url=f"{settings.public_url}/app", send_mail=outbox is not None
            ),
            outbox=outbox,
            digests=Digests(db, public_url=settings.public_url) if outbox else None,
            limiter=RateLimiter(budgets(settings)),
            metrics=metrics,
        )


def _sender(
    webhook_http: httpx.AsyncClient,
) -> Callable[[str, dict[str, str], bytes], Awaitable[int]]:
    async def send(url: str, headers: dict[str, str], body: bytes) -> int:
        # The status is all a delivery needs: the response body is never read, so a
        # receiver cannot make us buffer it. InvalidURL is no HTTPError: caught by name.
        try:
            async with webhook_http.stream("POST", url, content=body, headers=headers) as response:
                return response.status_code
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise SendFailed(type(exc).__name__) from exc

    return send


class Current:
    """The resources of the running lifespan, for the handlers built before it starts
    (the GraphQL view, the realms' routes): call it for them."""

    def __init__(self) -> None:
        self._resources: Resources | None = None

    def __call__(self) -> Resources:
        if self._resources is None:
            raise RuntimeError("the app's lifespan is not running")
        return self._resources

    @property
    def open(self) -> bool:
        return self._resources is not None

    @asynccontextmanager
    async def serving(self, resources: Resources) -> AsyncGenerator[Resources]:
        self._resources = resources
        try:
            yield resources
        finally:
            self._resources = None
