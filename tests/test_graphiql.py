"""GraphiQL works offline: its page loads only this server's assets, each of which answers
with the right content type; in production neither the page nor the assets exist."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager

from cityexchange.app import create_app
from cityexchange.settings import Settings
from tests.conftest import Api

CONTENT_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
}


class _Loads(HTMLParser):
    """What a browser would fetch for a page: script src and link href; inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            src = attributes.get("src")
            if src:
                self.urls.append(src)
            self._in_script_without_src = not src
        elif tag == "link" and attributes.get("href"):
            self.urls.append(attributes["href"] or "")
        elif tag in ("img", "iframe") and attributes.get("src"):
            self.urls.append(attributes["src"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script_without_src = False

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src and data.strip():
            self.inline_scripts += 1


def _loads(html: str) -> _Loads:
    parser = _Loads()
    parser.feed(html)
    parser.close()
    return parser


async def test_graphiql_loads_only_local_assets(api: Api) -> None:
    page = await api.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Authorization: Bearer" in page.text.replace('"', "").replace("&lt;", "<")
    assert "./dev serve --demo" in page.text
    # The browser holds the page to this server too: no script or style from elsewhere.
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "default-src 'none'" in policy

    loads = _loads(page.text)
    assert loads.inline_scripts == 0  # script-src 'self' would block them
    names = {urlsplit(url).path.rsplit("/", 1)[-1] for url in loads.urls}
    assert {"graphiql.min.js", "graphiql.min.css", "react.production.min.js"} <= names
    for url in loads.urls:
        parts = urlsplit(url)
        assert not parts.scheme, f"{url} is not on this server"
        assert not parts.netloc, f"{url} is not on this server"
        assert parts.path.startswith("/"), url
        asset = await api.http.get(url)
        assert asset.status_code == 200, url
        suffix = "." + parts.path.rsplit(".", 1)[-1]
        media_type = asset.headers["content-type"].split(";")[0].strip()
        assert media_type in CONTENT_TYPES[suffix], (url, media_type)
        assert len(asset.content) > 1000 or parts.path.endswith("page.js"), url
        if suffix == ".css":  # fonts and icons are data: URLs, nothing to fetch elsewhere
            assert "url(http" not in asset.text, url
            assert "@import" not in asset.text, url


async def test_graphiql_assets_are_the_pinned_builds(api: Api) -> None:
    """The UMD builds set the globals page.js uses."""
    expected = {
        "react.production.min.js": "React",
        "react-dom.production.min.js": "ReactDOM",
        "graphiql.min.js": "GraphiQL",
        "graphql-ws.min.js": "graphqlWs",
    }
    for name, global_name in expected.items():
        asset = await api.http.get(f"/graphiql/{name}")
        assert asset.status_code == 200, name
        assert f".{global_name}=" in asset.text or f".{global_name} =" in asset.text, name
    licence = await api.http.get("/graphiql/graphiql.LICENSE")
    assert licence.status_code == 200
    assert "MIT License" in licence.text


@pytest.fixture
async def production(settings: Settings, api: Api) -> AsyncIterator[httpx.AsyncClient]:
    prod = dataclasses.replace(settings, env="prod", public_url="https://x.example.org")
    app = create_app(prod)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="https://test") as http:
            yield http


async def test_production_serves_neither_graphiql_nor_its_assets(
    production: httpx.AsyncClient,
) -> None:
    page = await production.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert "graphiql" not in page.text.lower()
    for name in ("graphiql.min.js", "graphiql.min.css", "page.js"):
        asset = await production.get(f"/graphiql/{name}")
        assert asset.status_code == 404, name
