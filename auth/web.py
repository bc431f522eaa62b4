"""The realms' HTTP endpoints: RFC 8414 metadata, JWKS, authorize (with sign-in), token,
revocation (RFC 7009) and introspection (RFC 7662). authlib runs in the thread pool."""

from __future__ import annotations

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
from auth.passwords import hash_secret, verify_password
from auth.realms import RealmRegistry
from services.errors import InvalidInput

log = logging.getLogger("cityexchange.oauth")
T = TypeVar("T")

CSRF_COOKIE = "cx_csrf"
TICKET_TTL_SECONDS = 300
ACCOUNT_FAILURES = 5  # per account and window: then the account is throttled
ADDRESS_FAILURES = 20  # per client address and window
FAILURE_WINDOW_SECONDS = 900
GENERIC_LOGIN_ERROR = "Wrong username or password."


@dataclass(slots=True)
class OAuthRealms:
    """One authorization server per city, built on first use and kept."""

    store: OAuthStore
    registry: RealmRegistry
    audience: str
    access_ttl_seconds: int
    secure_cookies: bool
    _servers: dict[str, RealmServer] = field(default_factory=dict[str, RealmServer])

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
        server = await server_for(request)
        if server is None:
            return _html(pages.error(title="Unknown realm", detail="No such city."), 404)
        oauth = oauth_request(server, request, "authorize", {})
        try:
            grant = await _thread(server.consent, oauth)
        except OAuth2Error as exc:
            if exc.redirect_uri:
                return _oauth_response(*server.error_response(oauth, exc))
            detail = str(exc.description or exc.error)
            return _html(pages.error(title="This sign-in link is not valid", detail=detail), 400)
        city_name = await _thread(server.store.city_name, server.realm.city) or ""
        action = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        client_name = grant.client.name
        realms = get_realms()
        if request.method == "GET":
            return _sign_in(realms, city_name, client_name, action)
        form = await _form(request)
        csrf = _first(form, "csrf_token")
        if not csrf or not hmac.compare_digest(csrf, request.cookies.get(CSRF_COOKIE, "")):
            return _html(
                pages.error(title="Session expired", detail="Please go back and sign in again."),
                400,
            )
        request_hash = hashlib.sha256(request.url.query.encode()).hexdigest()
        if "ticket" in form:
            return await _after_consent(server, oauth, grant, form, request_hash)
        return await _after_password(
            realms,
            server,
            oauth,
            grant,
            form,
            request,
            city_name,
            client_name,
            action,
            request_hash,
        )

    async def join(request: Request) -> Response:
        """The invitation page: a person sets a first password with a single-use code."""
        server = await server_for(request)
        if server is None:
            return _html(pages.error(title="Unknown realm", detail="No such city."), 404)
        realms = get_realms()
        store, city = server.store, server.realm.city
        city_name = await _thread(store.city_name, city) or ""
        action = request.url.path

        def form_page(error: str | None = None, status: int = 200) -> Response:
            csrf = secrets.token_urlsafe(24)
            response = _html(
                pages.invitation(city_name=city_name, action=action, csrf=csrf, error=error), status
            )
            _set_csrf(response, csrf, realms, action)
            return response

        if request.method == "GET":
            return form_page()
        form = await _form(request)
        csrf = _first(form, "csrf_token")
        if not csrf or not hmac.compare_digest(csrf, request.cookies.get(CSRF_COOKIE, "")):
            return form_page("Your session expired; please try again.", 400)
        address_key = f"address:{city}:{request.client.host if request.client else 'unknown'}"
        if (await _thread(store.failures, [address_key])).get(address_key, 0) >= ADDRESS_FAILURES:
            return form_page("Too many failed attempts. Wait a few minutes and try again.", 429)
        try:
            accepted = await _thread(
                admin.accept_invitation,
                store,
                city=city,
                username=_first(form, "username").strip()[:100],
                code=_first(form, "code").strip(),
                password=_first(form, "password"),
            )
        except InvalidInput as exc:
            return form_page(f"The password {exc.message}.", 400)
        if not accepted:
            await _thread(store.count_failure, address_key, window_seconds=FAILURE_WINDOW_SECONDS)
            return form_page("This invitation is not valid (wrong, used or expired).", 400)
        return _html(
            pages.done(
                title="Password set", detail=f"You can now sign in to {city_name} from your app."
            )
        )

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


def _set_csrf(response: Response, csrf: str, realms: OAuthRealms, path: str) -> None:
    """The double-submit CSRF cookie of a realm's form, scoped to the form's path."""
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        httponly=True,
        samesite="strict",
        secure=realms.secure_cookies,
        path=path.split("?")[0],
    )


def _html(content: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(content, status_code=status, headers=pages.SECURITY_HEADERS)


def _sign_in(
    realms: OAuthRealms,
    city_name: str,
    client_name: str,
    action: str,
    error: str | None = None,
    status: int = 200,
) -> Response:
    csrf = secrets.token_urlsafe(24)
    response = _html(
        pages.sign_in(
            city_name=city_name, client_name=client_name, action=action, csrf=csrf, error=error
        ),
        status,
    )
    _set_csrf(response, csrf, realms, action.split("?")[0])
    return response


async def _after_password(
    realms: OAuthRealms,
    server: RealmServer,
    oauth: FormRequest,
    grant: Consent,
    form: dict[str, list[str]],
    request: Request,
    city_name: str,
    client_name: str,
    action: str,
    request_hash: str,
) -> Response:
    store, city = server.store, server.realm.city
    username = _first(form, "username").strip()[:100]
    password = _first(form, "password")
    address = request.client.host if request.client else "unknown"
    account_key = f"account:{city}:{username.casefold()}"
    address_key = f"address:{city}:{address}"
    # Each attempt is counted before the password is checked, so parallel guesses cannot all
    # slip under the limit; a success gives its count back.
    window = FAILURE_WINDOW_SECONDS
    attempts = await _thread(store.take_attempt, account_key, window_seconds=window)
    from_address = await _thread(store.take_attempt, address_key, window_seconds=window)
    if attempts > ACCOUNT_FAILURES or from_address > ADDRESS_FAILURES:
        # No username in the log: logs are not a user directory.
        log.warning("sign-in throttled for realm %s", city)
        message = "Too many failed attempts. Wait a few minutes and try again."
        return _sign_in(realms, city_name, client_name, action, message, 429)
    credentials = await _thread(store.credentials, city, username) if username else None
    valid = await _thread(
        verify_password, password, credentials.password_hash if credentials else None
    )
    if credentials is None or not valid or credentials.revoked_at is not None:
        return _sign_in(realms, city_name, client_name, action, GENERIC_LOGIN_ERROR, 401)
    await _thread(store.clear_failures, account_key)
    await _thread(store.give_back_attempt, address_key)
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
    response = _html(
        pages.consent(
            city_name=city_name,
            client_name=client_name,
            scopes=scope.split(),
            action=action,
            csrf=csrf,
            ticket=ticket,
        )
    )
    _set_csrf(response, csrf, realms, action.split("?")[0])
    return response


async def _after_consent(
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
        return _html(
            pages.error(title="Session expired", detail="Please go back and sign in again."), 400
        )
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
