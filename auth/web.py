"""The realms' HTTP endpoints: RFC 8414 metadata, JWKS, authorize (with sign-in), token,
revocation (RFC 7009) and introspection (RFC 7662). authlib runs in the thread pool."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs

from authlib.oauth2 import OAuth2Error
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from auth import admin, pages
from auth.oauth_server import Consent, FormRequest, OAuthResponse, RealmServer, ResourceOwner
from auth.oauth_store import OAuthStore
from auth.passwords import (
    HashingBusy,
    HashingGate,
    hash_password,
    hash_secret,
    needs_rehash,
    verify_password,
)
from auth.realms import RealmRegistry
from services.errors import InvalidInput

log = logging.getLogger("cityexchange.oauth")
T = TypeVar("T")

CSRF_COOKIE = "cx_csrf"
# Over https the cookie is `__Host-`: Secure, Path=/, no Domain, so no sibling host or
# plain-http page can plant one (RFC 6265bis §4.1.3.2).
SECURE_CSRF_COOKIE = "__Host-cx_csrf"
TICKET_TTL_SECONDS = 300
# Sign-in throttling, per (account, client address): an attacker's guesses slow down only
# their own tries, never the owner's from elsewhere. After PAIR_FREE_ATTEMPTS each try makes
# the next wait twice as long as the last (5 s, 10 s, 20 s ... 15 min); trying during the wait
# is refused with Retry-After and doubles it as well.
PAIR_FREE_ATTEMPTS = 5
PAIR_BASE_DELAY_SECONDS = 5
PAIR_MAX_DELAY_SECONDS = 900
ADDRESS_FAILURES = 20  # per client address and window, over all accounts
FAILURE_WINDOW_SECONDS = 900
GENERIC_LOGIN_ERROR = "Wrong username or password."
BUSY_ERROR = "Sign-in is busy right now. Try again in a moment."
THROTTLED_ERROR = "Too many failed attempts. Wait a few minutes and try again."
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

    def server(self, city: str) -> RealmServer | None:
        """The realm server of an existing city (synchronous: call in the thread pool)."""
        if city in self._servers:
            return self._servers[city]
        if self.store.city_name(city) is None:
            return None
        server = RealmServer(
            realm=self.registry.realm(city),
            store=self.store,
            audience=self.audience,
            access_ttl_seconds=self.access_ttl_seconds,
        )
        self._servers[city] = server
        return server


async def _thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await run_in_threadpool(fn, *args, **kwargs)


def _oauth_response(status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
    header_map = dict(headers)
    if status in (301, 302, 303) and "Location" in header_map:
        return RedirectResponse(
            header_map["Location"], status_code=302, headers={"Cache-Control": "no-store"}
        )
    return JSONResponse(body, status_code=status, headers=header_map)


async def _form(request: Request) -> dict[str, list[str]]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True)


def routes(get_realms: Callable[[], OAuthRealms]) -> list[Route]:
    """Routes of every realm, under /realms/<city>, plus RFC 8414's well-known location.
    `get_realms` hands over the realms the app's lifespan opened."""

    async def server_for(request: Request) -> RealmServer | None:
        return await _thread(get_realms().server, request.path_params["city"])

    def oauth_request(
        server: RealmServer, request: Request, endpoint: str, form: dict[str, list[str]]
    ) -> FormRequest:
        uri = f"{server.realm.issuer}/{endpoint}"
        if request.url.query:
            uri = f"{uri}?{request.url.query}"
        return FormRequest(
            request.method,
            uri,
            request.headers,
            parse_qs(request.url.query, keep_blank_values=True),
            form,
        )

    async def metadata(request: Request) -> Response:
        server = await server_for(request)
        if server is None:
            return JSONResponse({"error": "unknown realm"}, status_code=404)
        return JSONResponse(server.metadata(), headers={"Cache-Control": "max-age=300"})

    async def jwks(request: Request) -> Response:
        server = await server_for(request)
        if server is None:
            return JSONResponse({"error": "unknown realm"}, status_code=404)
        keys = await _thread(server.jwks)
        return JSONResponse(keys, headers={"Cache-Control": "max-age=60"})

    def endpoint(
        name: str, run: Callable[[RealmServer, FormRequest], OAuthResponse]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            server = await server_for(request)
            if server is None:
                return JSONResponse(
                    {"error": "invalid_request", "error_description": "unknown realm"},
                    status_code=404,
                )
            oauth = oauth_request(server, request, name, await _form(request))
            return _oauth_response(*await _thread(run, server, oauth))

        return handle

    token = endpoint("token", lambda s, r: s.token_response(r))
    revoke = endpoint("revoke", lambda s, r: s.endpoint_response("revocation", r))
    introspect = endpoint("introspect", lambda s, r: s.endpoint_response("introspection", r))

    async def authorize(request: Request) -> Response:
        realms = get_realms()
        server = await server_for(request)
        if server is None:
            return realms.html(pages.error(title="Unknown realm", detail="No such city."), 404)
        oauth = oauth_request(server, request, "authorize", {})
        try:
            grant = await _thread(server.consent, oauth)
        except OAuth2Error as exc:
            if exc.redirect_uri:
                return _oauth_response(*server.error_response(oauth, exc))
            detail = str(exc.description or exc.error)
            page = pages.error(title="This sign-in link is not valid", detail=detail)
            return realms.html(page, 400)
        city_name = await _thread(server.store.city_name, server.realm.city) or ""
        action = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        sign_in = _SignInPage(realms, city_name, grant.client.name, action)
        if request.method == "GET":
            return sign_in.render()
        form = await _form(request)
        if not _csrf_matches(realms, request, form):
            page = pages.error(title="Session expired", detail="Please go back and sign in again.")
            return realms.html(page, 400)
        request_hash = hashlib.sha256(request.url.query.encode()).hexdigest()
        if "ticket" in form:
            return await _after_consent(realms, server, oauth, grant, form, request_hash)
        try:
            async with realms.hashing.place():
                return await _after_password(
                    sign_in, server, oauth, grant, form, _address(request), request_hash
                )
        except HashingBusy as busy:
            # RFC 6749 §4.1.2.1's temporarily_unavailable, as a page: the person is here.
            response = sign_in.render(BUSY_ERROR, 429)
            response.headers["Retry-After"] = str(busy.retry_after_seconds)
            return response

    async def join(request: Request) -> Response:
        """The invitation page: a person sets a first password with a single-use code."""
        realms = get_realms()
        server = await server_for(request)
        if server is None:
            return realms.html(pages.error(title="Unknown realm", detail="No such city."), 404)
        store, city = server.store, server.realm.city
        city_name = await _thread(store.city_name, city) or ""
        action = request.url.path

        def form_page(error: str | None = None, status: int = 200) -> Response:
            csrf = secrets.token_urlsafe(24)
            response = realms.html(
                pages.invitation(city_name=city_name, action=action, csrf=csrf, error=error), status
            )
            _set_csrf(response, csrf, realms, action)
            return response

        if request.method == "GET":
            return form_page()
        form = await _form(request)
        if not _csrf_matches(realms, request, form):
            return form_page("Your session expired; please try again.", 400)
        address_key = f"address:{city}:{_address(request)}"
        if (await _thread(store.failures, [address_key])).get(address_key, 0) >= ADDRESS_FAILURES:
            return form_page(THROTTLED_ERROR, 429)
        accept = functools.partial(
            admin.accept_invitation,
            store,
            city=city,
            username=_first(form, "username").strip()[:100],
            code=_first(form, "code").strip(),
            password=_first(form, "password"),
        )
        try:
            async with realms.hashing.place():
                accepted = await realms.hashing.run(accept)
        except InvalidInput as exc:
            return form_page(f"The password {exc.message}.", 400)
        except HashingBusy as busy:
            response = form_page(BUSY_ERROR, 429)
            response.headers["Retry-After"] = str(busy.retry_after_seconds)
            return response
        if not accepted:
            await _thread(store.count_failure, address_key, window_seconds=FAILURE_WINDOW_SECONDS)
            return form_page("This invitation is not valid (wrong, used or expired).", 400)
        detail = f"You can now sign in to {city_name} from your app."
        return realms.html(pages.done(title="Password set", detail=detail))

    return [
        Route("/realms/{city}/invitation", join, methods=["GET", "POST"]),
        Route("/.well-known/oauth-authorization-server/realms/{city}", metadata),
        Route("/realms/{city}/.well-known/oauth-authorization-server", metadata),
        Route("/realms/{city}/jwks", jwks),
        Route("/realms/{city}/authorize", authorize, methods=["GET", "POST"]),
        Route("/realms/{city}/token", token, methods=["POST"]),
        Route("/realms/{city}/revoke", revoke, methods=["POST"]),
        Route("/realms/{city}/introspect", introspect, methods=["POST"]),
    ]


def _first(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[0]


def _address(request: Request) -> str:
    """The peer's address. Behind a proxy this is the proxy's, unless the server was told
    to trust it (`serve --forwarded-allow-ips`): a client-sent X-Forwarded-For counts only
    from there."""
    return request.client.host if request.client else "unknown"


def _csrf_matches(realms: OAuthRealms, request: Request, form: dict[str, list[str]]) -> bool:
    csrf = _first(form, "csrf_token")
    return bool(csrf) and hmac.compare_digest(csrf, request.cookies.get(realms.csrf_cookie, ""))


def _set_csrf(response: Response, csrf: str, realms: OAuthRealms, path: str) -> None:
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


@dataclass(frozen=True, slots=True)
class _SignInPage:
    """The sign-in form of one authorization request, shown again with an error."""

    realms: OAuthRealms
    city_name: str
    client_name: str
    action: str

    def render(self, error: str | None = None, status: int = 200) -> Response:
        csrf = secrets.token_urlsafe(24)
        content = pages.sign_in(
            city_name=self.city_name,
            client_name=self.client_name,
            action=self.action,
            csrf=csrf,
            error=error,
        )
        response = self.realms.html(content, status)
        _set_csrf(response, csrf, self.realms, self.action)
        return response


async def _after_password(
    sign_in: _SignInPage,
    server: RealmServer,
    oauth: FormRequest,
    grant: Consent,
    form: dict[str, list[str]],
    address: str,
    request_hash: str,
) -> Response:
    """Check the person's password (in a hashing slot), throttled per (account, address)
    and per address; then consent, or the code at once."""
    realms, store, city = sign_in.realms, server.store, server.realm.city
    username = _first(form, "username").strip()[:100]
    password = _first(form, "password")
    pair_key = f"pair:{city}:{username.casefold()}:{address}"
    address_key = f"address:{city}:{address}"
    # Each attempt is counted before the password is checked, so parallel guesses cannot all
    # slip under the limit; a success gives its count back.
    window = FAILURE_WINDOW_SECONDS
    if await _thread(store.take_attempt, address_key, window_seconds=window) > ADDRESS_FAILURES:
        log.warning("sign-in throttled for realm %s: too many from one address", city)
        return sign_in.render(THROTTLED_ERROR, 429)
    wait = await _thread(
        store.take_spaced_attempt,
        pair_key,
        free=PAIR_FREE_ATTEMPTS,
        base_delay_seconds=PAIR_BASE_DELAY_SECONDS,
        max_delay_seconds=PAIR_MAX_DELAY_SECONDS,
        window_seconds=window,
    )
    if wait:
        await _thread(store.give_back_attempt, address_key)  # no password was checked
        # No username in the log: logs are not a user directory.
        log.warning("sign-in slowed down for realm %s", city)
        response = sign_in.render(THROTTLED_ERROR, 429)
        response.headers["Retry-After"] = str(wait)
        return response
    credentials = await _thread(store.credentials, city, username) if username else None
    stored = credentials.password_hash if credentials else None
    valid = await realms.hashing.run(functools.partial(verify_password, password, stored))
    if credentials is None or not valid or credentials.revoked_at is not None:
        return sign_in.render(GENERIC_LOGIN_ERROR, 401)
    await _thread(store.clear_failures, pair_key)
    await _thread(store.give_back_attempt, address_key)
    if stored is not None and needs_rehash(stored):
        rehashed = await realms.hashing.run(functools.partial(hash_password, password))
        await _thread(store.replace_password_hash, city, credentials.person_id, stored, rehashed)
    owner = ResourceOwner(credentials.person_id, city, credentials.role)
    scope = owner.allowed(grant.scope)  # what the person's role allows of what was asked
    client_id = grant.client.client_id
    if not scope or await _thread(store.has_consent, city, owner.person_id, client_id, scope):
        return await _issue_code(server, oauth, grant, owner)
    ticket = secrets.token_urlsafe(24)
    await _thread(
        store.save_ticket,
        hash_secret(ticket),
        city,
        credentials.person_id,
        request_hash,
        ttl_seconds=TICKET_TTL_SECONDS,
    )
    csrf = secrets.token_urlsafe(24)
    response = realms.html(
        pages.consent(
            city_name=sign_in.city_name,
            client_name=sign_in.client_name,
            scopes=scope.split(),
            action=sign_in.action,
            csrf=csrf,
            ticket=ticket,
        )
    )
    _set_csrf(response, csrf, realms, sign_in.action)
    return response


async def _after_consent(
    realms: OAuthRealms,
    server: RealmServer,
    oauth: FormRequest,
    grant: Consent,
    form: dict[str, list[str]],
    request_hash: str,
) -> Response:
    store, city = server.store, server.realm.city
    person_id = await _thread(
        store.take_ticket, hash_secret(_first(form, "ticket")), city, request_hash
    )
    if person_id is None:
        page = pages.error(title="Session expired", detail="Please go back and sign in again.")
        return realms.html(page, 400)
    owner = await _thread(server.resource_owner, person_id)
    if owner is None or _first(form, "decision") != "allow":
        return await _issue_code(server, oauth, grant, None)  # access_denied, to the client
    await _thread(
        store.add_consent, city, person_id, grant.client.client_id, owner.allowed(grant.scope)
    )
    return await _issue_code(server, oauth, grant, owner)


async def _issue_code(
    server: RealmServer, oauth: FormRequest, grant: Consent, owner: ResourceOwner | None
) -> Response:
    """Redirect to the client with a code for `owner`, or with access_denied for None."""
    return _oauth_response(*await _thread(server.authorization_response, oauth, grant, owner))
