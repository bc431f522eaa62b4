"""The realms' HTTP endpoints: RFC 8414 metadata, JWKS, authorize (with sign-in, in
auth/sign_in.py), token, revocation (RFC 7009) and introspection (RFC 7662). authlib runs in
the thread pool."""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from authlib.oauth2 import OAuth2Error
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cityexchange.auth import admin, pages, sign_in_store
from cityexchange.auth.oauth_realms import (
    OAuthRealms,
    client_address,
    csrf_matches,
    first_value,
    in_thread,
    oauth_response,
    read_form,
    set_csrf,
)
from cityexchange.auth.oauth_requests import FormRequest, OAuthResponse
from cityexchange.auth.passwords import HashingBusy
from cityexchange.auth.realm_server import RealmServer
from cityexchange.auth.sign_in import (
    ADDRESS_FAILURES,
    BUSY_ERROR,
    FAILURE_WINDOW_SECONDS,
    THROTTLED_ERROR,
    SignInPage,
    after_consent,
    after_password,
)
from cityexchange.services.errors import InvalidInput

# An error description may hold only printable ASCII but the quote and the backslash (RFC
# 6749 §5.2): a parameter with others (a redirect_uri with a quote or a newline) is answered
# without it.
UNQUOTABLE = "a parameter holds characters an error cannot quote (quotes, backslashes, controls)"


def routes(get_realms: Callable[[], OAuthRealms]) -> list[Route]:
    """Routes of every realm, under /realms/<city>, plus RFC 8414's well-known location.
    `get_realms` hands over the realms the app's lifespan opened."""

    async def server_for(request: Request) -> RealmServer | None:
        return await get_realms().server(request.path_params["city"])

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
        keys = await in_thread(server.jwks)
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
            oauth = oauth_request(server, request, name, await read_form(request))
            try:
                return oauth_response(*await in_thread(run, server, oauth))
            except ValueError:  # authlib refusing to quote a value in its error (RFC 6749 §5.2)
                return JSONResponse(
                    {"error": "invalid_request", "error_description": UNQUOTABLE}, status_code=400
                )

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
            grant = await in_thread(server.consent, oauth)
        except ValueError:  # authlib refusing to quote a value in its error (RFC 6749 §5.2)
            page = pages.error(title="This sign-in link is not valid", detail=UNQUOTABLE)
            return realms.html(page, 400)
        except OAuth2Error as exc:
            if exc.redirect_uri:
                return oauth_response(*server.error_response(oauth, exc))
            detail = str(exc.description or exc.error)
            page = pages.error(title="This sign-in link is not valid", detail=detail)
            return realms.html(page, 400)
        city_name = await realms.city_name(server.realm.city)
        action = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        sign_in = SignInPage(realms, city_name, grant.client.name, action)
        if request.method == "GET":
            return sign_in.render()
        form = await read_form(request)
        if not csrf_matches(realms, request, form):
            page = pages.error(title="Session expired", detail="Please go back and sign in again.")
            return realms.html(page, 400)
        request_hash = hashlib.sha256(request.url.query.encode()).hexdigest()
        if "ticket" in form:
            return await after_consent(realms, server, oauth, grant, form, request_hash)
        try:
            async with realms.hashing.place():
                return await after_password(
                    sign_in, server, oauth, grant, form, client_address(request), request_hash
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
        city_name = await realms.city_name(city)
        action = request.url.path

        def form_page(error: str | None = None, status: int = 200) -> Response:
            csrf = secrets.token_urlsafe(24)
            response = realms.html(
                pages.invitation(city_name=city_name, action=action, csrf=csrf, error=error), status
            )
            set_csrf(response, csrf, realms, action)
            return response

        if request.method == "GET":
            return form_page()
        form = await read_form(request)
        if not csrf_matches(realms, request, form):
            return form_page("Your session expired; please try again.", 400)
        address_key = f"address:{city}:{client_address(request)}"
        failures = await in_thread(sign_in_store.failures, store.db, [address_key])
        if failures.get(address_key, 0) >= ADDRESS_FAILURES:
            return form_page(THROTTLED_ERROR, 429)
        accept = functools.partial(
            admin.accept_invitation,
            store,
            city=city,
            username=first_value(form, "username").strip()[:100],
            code=first_value(form, "code").strip(),
            password=first_value(form, "password"),
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
            await in_thread(
                sign_in_store.count_failure,
                store.db,
                address_key,
                window_seconds=FAILURE_WINDOW_SECONDS,
            )
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


__all__ = ["OAuthRealms", "routes"]
