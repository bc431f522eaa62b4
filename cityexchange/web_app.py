"""The CRO web app at /app (web/, docs/web-app.md): its built files, shipped in the package
(static/app/, built by `npm run build` in web/ and committed), and the list of member cities
its sign-in page offers.

Every path under /app that is not a file of the build is the app's page: the app routes in
the browser (/app/problems/..., /app/map). The page loads nothing from elsewhere; its script
talks to /graphql and the realms' OAuth endpoints on this origin only."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from os import PathLike
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from cityexchange.auth import web_app_clients
from cityexchange.auth.web_app_clients import client_id
from cityexchange.resources import Current, Resources
from cityexchange.services import cities
from cityexchange.services.errors import Unavailable
from cityexchange.services.store import cities as city_store

log = logging.getLogger("cityexchange")

PATH = "/app"
BUILD = Path(__file__).parent / "static" / "app"
MAX_CITIES = 2000  # the picker's list; more member cities than that need a search box
REALMS_FRESH_SECONDS = 60.0  # anonymous callers cost one read a minute, however many they are
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # The sign-in callback's URL carries the authorization code: never send it onwards.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # a new release's page names new asset files
}
# Asset names carry a hash of their content (Vite): a name never changes its bytes.
ASSET_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}


class _Assets(StaticFiles):
    def file_response(
        self,
        full_path: PathLike[str] | str,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(ASSET_HEADERS)
        return response


class _Directory:
    """/app/realms.json's body, read from the database at most once a minute per process
    however many ask (one read at a time: callers during a read wait for it)."""

    def __init__(self, current: Current) -> None:
        self.current = current
        self.read_at = -REALMS_FRESH_SECONDS
        self.cached = b""
        self.lock = asyncio.Lock()

    def fresh(self) -> bool:
        return time.monotonic() - self.read_at < REALMS_FRESH_SECONDS

    async def body(self) -> bytes:
        if self.fresh():
            return self.cached
        async with self.lock:
            if not self.fresh():  # the caller before this one may have read it
                listed = await cities.directory(db=self.current().db, limit=MAX_CITIES)
                self.cached = json.dumps(
                    [
                        {
                            "slug": city.slug,
                            "name": city.name,
                            "country": city.country,
                            "issuer": f"/realms/{city.slug}",
                            "clientId": client_id(city.slug),
                        }
                        for city in listed
                    ],
                    ensure_ascii=False,
                ).encode()
                self.read_at = time.monotonic()
        return self.cached


def routes(current: Current) -> list[BaseRoute]:
    index = BUILD / "index.html"

    async def page(_: Request) -> Response:
        if not index.is_file():  # a source checkout whose build was deleted
            return PlainTextResponse(
                "The web app is not built: run `npm ci && npm run build` in web/",
                status_code=503,
            )
        return FileResponse(index, headers=PAGE_HEADERS, media_type="text/html")

    directory = _Directory(current)

    async def realms(_: Request) -> Response:
        """The member cities, each with its realm and the app's client there: the sign-in
        page's city picker (public, as each realm's metadata is)."""
        return Response(
            await directory.body(),
            media_type="application/json",
            headers={
                "Cache-Control": f"public, max-age={int(REALMS_FRESH_SECONDS)}",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return [
        Route(f"{PATH}/realms.json", realms),
        Mount(f"{PATH}/assets", app=_Assets(directory=BUILD / "assets", check_dir=False)),
        Route(PATH, page),
        Route(f"{PATH}/{{path:path}}", page),
    ]


async def register_clients(resources: Resources) -> None:
    """At start, before the first request: register the app in every realm, or bring its
    redirect URIs up to date. If the database cannot be reached, each realm does it on the
    app's first sign-in instead (auth/realm_server.py), as it does for cities added later."""
    uris = resources.realms.web_app_redirect_uris
    try:
        slugs = sorted(await city_store.city_slugs(resources.db))
        await asyncio.to_thread(web_app_clients.ensure, resources.oauth, slugs, uris)
    except Unavailable:
        log.warning("database unreachable; each realm registers the web app on first use")
