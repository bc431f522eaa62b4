"""The realms' shared web parts: one authorization server per city (built on first use),
their pages' security headers and CSRF cookie, and the hops between the async edge and
authlib's thread."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from cityexchange.auth import pages
from cityexchange.auth.oauth_store import OAuthStore
from cityexchange.auth.passwords import HashingGate
from cityexchange.auth.realm_server import RealmServer
from cityexchange.auth.realms import RealmRegistry
from cityexchange.services.store import cities

T = TypeVar("T")

CSRF_COOKIE = "cx_csrf"
# Over https the cookie is `__Host-`: Secure, Path=/, no Domain, so no sibling host or
# plain-http page can plant one (RFC 6265bis §4.1.3.2).
SECURE_CSRF_COOKIE = "__Host-cx_csrf"
# RFC 6797: two years; sent only when the service runs in production (always https).
HSTS = "max-age=63072000; includeSubDomains"


@dataclass(slots=True)
class OAuthRealms:
    """One authorization server per city, built on first use and kept."""

    store: OAuthStore
    registry: RealmRegistry
    audience: str
    access_ttl_seconds: int
    secure_cookies: bool
    hsts: bool = False
    # The web app's redirect URIs (auth/web_app_clients.py); empty: no web app client.
    web_app_redirect_uris: tuple[str, ...] = ()
    hashing: HashingGate = field(default_factory=HashingGate)
    _servers: dict[str, RealmServer] = field(default_factory=dict[str, RealmServer])

    @property
    def csrf_cookie(self) -> str:
        return SECURE_CSRF_COOKIE if self.secure_cookies else CSRF_COOKIE

    def html(self, content: str, status: int = 200) -> HTMLResponse:
        """A realm page, with its security headers."""
        headers = {
            **pages.SECURITY_HEADERS,
            **({"Strict-Transport-Security": HSTS} if self.hsts else {}),
        }
        return HTMLResponse(content, status_code=status, headers=headers)

    async def server(self, city: str) -> RealmServer | None:
        """The realm server of a registered city, built on first use."""
        if city in self._servers:
            return self._servers[city]
        if not await self.registry.has_city(city):
            return None
        server = RealmServer(
            realm=self.registry.realm(city),
            store=self.store,
            audience=self.audience,
            access_ttl_seconds=self.access_ttl_seconds,
            web_app_redirect_uris=self.web_app_redirect_uris,
        )
        self._servers[city] = server
        return server

    async def city_name(self, city: str) -> str:
        """The city's name, for its realm's pages."""
        [found] = await cities.cities_by_slugs(self.registry.db, [city])
        return found.name if found else ""


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking work (authlib, the sync store) in the thread pool."""
    return await run_in_threadpool(fn, *args, **kwargs)


def oauth_response(status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
    header_map = dict(headers)
    if status in (301, 302, 303) and "Location" in header_map:
        return RedirectResponse(
            header_map["Location"], status_code=302, headers={"Cache-Control": "no-store"}
        )
    return JSONResponse(body, status_code=status, headers=header_map)


async def read_form(request: Request) -> dict[str, list[str]]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True)


def first_value(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[0]


def client_address(request: Request) -> str:
    """The peer's address. Behind a proxy this is the proxy's, unless the server was told
    to trust it (`serve --forwarded-allow-ips`): a client-sent X-Forwarded-For counts only
    from there."""
    return request.client.host if request.client else "unknown"


def csrf_matches(realms: OAuthRealms, request: Request, form: dict[str, list[str]]) -> bool:
    csrf = first_value(form, "csrf_token")
    return bool(csrf) and hmac.compare_digest(csrf, request.cookies.get(realms.csrf_cookie, ""))


def set_csrf(response: Response, csrf: str, realms: OAuthRealms, path: str) -> None:
    """The double-submit CSRF cookie of a realm's form: over https a `__Host-` cookie (its
    path must be /), otherwise scoped to the form's path."""
    response.set_cookie(
        realms.csrf_cookie,
        csrf,
        httponly=True,
        samesite="strict",
        secure=realms.secure_cookies,
        path="/" if realms.secure_cookies else path.split("?")[0],
    )
