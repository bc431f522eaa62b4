"""The CRO web app at /app (web/, docs/web-app.md): what the service serves, the OAuth client it
registers in every realm, the documents the app sends, and the app itself in a real browser."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from graphql import build_schema, parse, validate

from cityexchange import demo, web_app
from cityexchange.auth import web_app_clients
from cityexchange.auth.passwords import verify_password
from cityexchange.resources import open_resources
from cityexchange.services.clock import now
from cityexchange.services.store import people
from tests.conftest import Api, add_city
from tests.oauth_support import (
    PASSWORD,
    Realm,
    authorize,
    make_realm,
    oauth_client,
    store_for,
)

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _tool(name: str) -> str:
    """A Node.js tool's full path (`./dev test` needs Node.js 20 for the audit already)."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: the web app's tests need Node.js 20 and npm")
    return found


def _run(
    args: list[str], *, cwd: Path = ROOT, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A Node.js tool's run, its output kept for the assertion that reads it."""
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _node(script: str) -> str:
    done = _run([_tool("node"), "--input-type=module", "-e", script], timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def app_documents() -> dict[str, str]:
    """Every GraphQL document of web/src/queries.ts (plain JavaScript: node runs it as is)."""
    source = (WEB / "src" / "queries.ts").read_text()
    names = re.findall(r"^export const (\w+) =", source, re.MULTILINE)
    printed = _node(f"{source}\nconsole.log(JSON.stringify({{{', '.join(names)}}}));")
    documents: dict[str, str] = json.loads(printed)
    return documents


async def test_the_app_is_one_page_under_app_with_a_strict_policy(api: Api) -> None:
    page = await api.http.get("/app/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert page.headers["referrer-policy"] == "no-referrer"  # the callback URL holds a code
    assert page.headers["x-frame-options"] == "DENY"

    # The browser routes: every app path is the same page.
    for path in ("/app", "/app/map", "/app/problems/UHJvYmxlbTox", "/app/signed-in?code=x"):
        again = await api.http.get(path)
        assert again.status_code == 200, path
        assert again.text == page.text, path

    assets = re.findall(r'(?:src|href)="(/app/assets/[^"]+)"', page.text)
    assert any(a.endswith(".js") for a in assets)
    assert any(a.endswith(".css") for a in assets)
    for asset in assets:
        response = await api.http.get(asset)
        assert response.status_code == 200, asset
        assert "immutable" in response.headers["cache-control"]
        assert response.headers["x-content-type-options"] == "nosniff"
    assert (await api.http.get("/app/assets/none.js")).status_code == 404
    # Nothing from another origin: no absolute URL in the page or its script.
    script = (await api.http.get(next(a for a in assets if a.endswith(".js")))).text
    assert not re.search(r"""["'`]https?://(?!www\.w3\.org)""", page.text + script)


async def test_the_city_picker_lists_every_member_city_with_the_apps_client(api: Api) -> None:
    await add_city(api.db, "rotterdam", "Rotterdam")
    await add_city(api.db, "lagos", "Lagos", "NG")
    response = await api.http.get("/app/realms.json")
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.json() == [
        {
            "slug": "lagos",
            "name": "Lagos",
            "country": "NG",
            "issuer": "/realms/lagos",
            "clientId": "lagos-web",
        },
        {
            "slug": "rotterdam",
            "name": "Rotterdam",
            "country": "NL",
            "issuer": "/realms/rotterdam",
            "clientId": "rotterdam-web",
        },
    ]


async def test_every_realm_gets_the_app_as_a_public_pkce_client(api: Api) -> None:
    await add_city(api.db, "rotterdam", "Rotterdam")
    store = store_for(api.settings)
    try:
        async with open_resources(api.settings) as resources:
            await web_app.register_clients(resources)  # as the app's start does
        client = await asyncio.to_thread(store.get_client, "rotterdam", "rotterdam-web")
        assert client is not None
        assert client.type.value == "public"
        assert client.grants == ("authorization_code", "refresh_token")
        assert client.scopes == ("read", "publish", "comment")  # never admin
        # Each loopback name of the development address, exactly.
        assert client.redirect_uris == (
            "http://127.0.0.1:8000/app/signed-in",
            "http://localhost:8000/app/signed-in",
            "http://[::1]:8000/app/signed-in",
        )

        # A new address (another port, a public name) replaces the redirect URIs; a realm
        # whose admin revoked the app keeps it revoked.
        await asyncio.to_thread(store.revoke_client, "rotterdam", "rotterdam-web", at=now())
        uris = web_app_clients.redirect_uris("https://cx.example.org", production=True)
        assert uris == ("https://cx.example.org/app/signed-in",)
        await asyncio.to_thread(web_app_clients.ensure, store, ["rotterdam"], uris)
        client = await asyncio.to_thread(store.get_client, "rotterdam", "rotterdam-web")
        assert client is not None
        assert client.redirect_uris == uris
        assert client.revoked_at is not None
    finally:
        store.close()


async def test_a_person_signs_in_to_the_app_with_pkce_and_signs_out(api: Api) -> None:
    # The city is added after the service started: its realm registers the app on first use.
    await add_city(api.db, "rotterdam", "Rotterdam")
    store = store_for(api.settings)
    try:
        realm: Realm = await make_realm(api.db, store, api.settings, "rotterdam")
        assert await asyncio.to_thread(store.get_client, "rotterdam", "rotterdam-web") is None
    finally:
        store.close()
    transport = api.http._transport
    callback = "http://localhost:8000/app/signed-in"  # the page opened as localhost
    async with oauth_client(
        transport,
        client_id="rotterdam-web",
        redirect_uri=callback,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as client:
        location, verifier = await authorize(client, realm, scope="read publish comment")
        assert location.startswith(callback + "?")
        token = await client.fetch_token(
            f"{realm.issuer}/token", authorization_response=location, code_verifier=verifier
        )
        assert sorted(token["scope"].split()) == ["comment", "publish", "read"]
        viewer = await api.data("{ viewer { clientId } }", token=token["access_token"])
        assert viewer["viewer"]["clientId"] == "rotterdam-web"

        refreshed = await client.refresh_token(
            f"{realm.issuer}/token", refresh_token=token["refresh_token"]
        )
        assert refreshed["refresh_token"] != token["refresh_token"]  # rotated

        # Sign-out: revoking the refresh token ends the family, access tokens included.
        revoked = await api.http.post(
            "/realms/rotterdam/revoke",
            data={
                "token": refreshed["refresh_token"],
                "token_type_hint": "refresh_token",
                "client_id": "rotterdam-web",
            },
        )
        assert revoked.status_code == 200
        again = await api.http.post(
            "/realms/rotterdam/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": refreshed["refresh_token"],
                "client_id": "rotterdam-web",
            },
        )
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"
        # ... and its family's access tokens (the denylist is re-read every few seconds).
        answer: dict[str, Any] = {}
        for _ in range(100):
            answer = await api.gql("{ viewer { subject } }", token=refreshed["access_token"])
            if answer.get("errors"):
                break
            await asyncio.sleep(0.1)
        assert answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

        # Another site cannot receive the app's codes, nor may the app ask for admin.
        evil = "https://evil.example/app/signed-in"
        for redirect, scope in ((evil, "read"), (callback, "admin")):
            page = await api.http.get(
                "/realms/rotterdam/authorize",
                params={
                    "response_type": "code",
                    "client_id": "rotterdam-web",
                    "redirect_uri": redirect,
                    "scope": scope,
                    "state": "s",
                    "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                    "code_challenge_method": "S256",
                },
            )
            if page.status_code == 302:  # an error the client may hear of, at its own URI
                query = parse_qs(urlsplit(page.headers["location"]).query)
                assert page.headers["location"].startswith(callback)
                assert query["error"] == ["invalid_scope"]
            else:
                assert page.status_code == 400, (redirect, page.text)

        # A redirect URI an OAuth error cannot quote (a quote, a newline) is a 400 too.
        for odd in (callback + '"', callback + "\n", callback + "\\"):
            page = await api.http.get(
                "/realms/rotterdam/authorize",
                params={"response_type": "code", "client_id": "rotterdam-web", "redirect_uri": odd},
            )
            assert page.status_code == 400, (odd, page.text)


async def test_every_document_the_app_sends_is_valid_and_within_the_cost_limit(api: Api) -> None:
    """The app's queries and mutations against the live API (validation and the document
    cost limit included), and its subscriptions against the schema."""
    await add_city(api.db, "rotterdam", "Rotterdam")
    token = await api.token("rotterdam")
    schema = build_schema((ROOT / "schema" / "schema.graphql").read_text())
    documents = app_documents()
    assert {"EVENTS", "VIEWER_EVENTS", "PROBLEM", "SOLUTION", "PUBLISH_PROBLEM"} <= set(documents)
    variables: dict[str, dict[str, Any]] = {
        "PROBLEM": {"id": "UHJvYmxlbTowMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA="},
        "SOLUTION": {"id": "U29sdXRpb246MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw"},
        "ADD_COMMENT": {"input": {"subjectId": "x", "body": "b"}},
        "FACE_TOO": {"input": {"problemId": "x"}},
        "PUBLISH_PROBLEM": {"input": {"title": "", "summary": "", "hazards": []}},
    }
    for name, document in documents.items():
        assert validate(schema, parse(document)) == [], name
        if document.lstrip().startswith("subscription"):
            continue
        body = await api.gql(document, variables.get(name, {}), token=token)
        codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
        assert "QUERY_TOO_COMPLEX" not in codes, (name, body)
        assert "GRAPHQL_VALIDATION_FAILED" not in codes, (name, body)


def test_the_apps_choices_are_the_schemas_enums() -> None:
    sdl = (ROOT / "schema" / "schema.graphql").read_text()
    source = (WEB / "src" / "taxonomy.ts").read_text()
    for enum, constant in (("Hazard", "HAZARDS"), ("Sector", "SECTORS"), ("Urgency", "URGENCIES")):
        block = re.search(rf"^enum {enum} \{{(.*?)^\}}", sdl, re.MULTILINE | re.DOTALL)
        assert block is not None
        values = re.findall(r"^  ([A-Z_]+)$", block.group(1), re.MULTILINE)
        listed = re.search(rf"export const {constant} = \[(.*?)\] as const", source, re.DOTALL)
        assert listed is not None
        assert re.findall(r'"([A-Z_]+)"', listed.group(1)) == values, enum


def _web_tooling() -> None:
    if not (WEB / "node_modules" / ".bin" / "vite").exists():
        pytest.fail("web/node_modules is missing: `./dev test` installs it (npm ci in web/)")


def test_the_committed_build_is_the_build_of_the_sources(tmp_path: Path) -> None:
    """cityexchange/static/app is what `npm run build` makes of web/: a change to the sources
    must come with its build (the package ships the build; serving needs no Node.js)."""
    _web_tooling()
    # Strict TypeScript: a UI text missing in a language fails here.
    typed = _run([_tool("npx"), "tsc", "--noEmit"], cwd=WEB, timeout=300)
    assert typed.returncode == 0, typed.stdout + typed.stderr
    out = tmp_path / "app"
    done = _run(
        [
            _tool("npx"),
            "vite",
            "build",
            "--outDir",
            str(out),
            "--emptyOutDir",
            "--logLevel",
            "error",
        ],
        cwd=WEB,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    committed = web_app.BUILD

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    built, shipped = files(out), files(committed)
    assert sorted(built) == sorted(shipped), "rebuild: (cd web && npm run build), then commit"
    assert built == shipped, "rebuild: (cd web && npm run build), then commit"


def test_a_cro_team_works_in_the_web_app(tmp_path: Path) -> None:
    """web/e2e/web_app.mjs in Debian's Chromium against `serve --demo`: sign in with a demo
    person's password, the live feed, an event published in another tab arriving live, a
    server restart and the missed event shown once, a problem page, a lineage link, the map,
    the publish form's errors, Spanish at a phone's width, sign-out; axe-core on each page.
    Screenshots go to artifacts/web-app (CI keeps them)."""
    _web_tooling()
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `./dev test` installs Debian's chromium (apt)")
    artifacts = ROOT / "artifacts" / "web-app"
    shutil.rmtree(artifacts, ignore_errors=True)
    command = Path(sys.executable).parent / "cityexchange"
    env = {
        **os.environ,
        "CITYEXCHANGE_BIN": str(command),
        "E2E_DATA_DIR": str(tmp_path / "data"),
        "E2E_ARTIFACTS": str(artifacts),
        "CHROMIUM": CHROMIUM,
    }
    env.pop("CITYEXCHANGE_MONGODB_URI", None)  # the demo on its own embedded database
    done = _run([_tool("node"), str(WEB / "e2e" / "web_app.mjs")], env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all steps passed" in done.stdout
    shots = sorted(p.name for p in artifacts.glob("*.png"))
    assert len(shots) >= 12, shots


async def test_a_realm_adds_this_addresss_redirect_uris_on_first_use(api: Api) -> None:
    """Stored for another address (another process, an older public URL): the first sign-in
    here adds this address's URIs and keeps the others (two processes do not undo each other)."""
    await add_city(api.db, "rotterdam", "Rotterdam")
    store = store_for(api.settings)
    try:
        elsewhere = ("http://127.0.0.1:8001/app/signed-in",)
        await asyncio.to_thread(web_app_clients.ensure, store, ["rotterdam"], elsewhere)
        page = await api.http.get(
            "/realms/rotterdam/authorize",
            params={
                "response_type": "code",
                "client_id": "rotterdam-web",
                "redirect_uri": "http://127.0.0.1:8000/app/signed-in",
                "scope": "read",
                "state": "s",
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "code_challenge_method": "S256",
            },
        )
        assert page.status_code == 200, page.text  # the realm's sign-in page
        client = await asyncio.to_thread(store.get_client, "rotterdam", "rotterdam-web")
        assert client is not None
        assert client.redirect_uris == (
            *elsewhere,
            *web_app_clients.redirect_uris(api.settings.public_url, production=False),
        )
    finally:
        store.close()


async def test_the_demo_password_never_replaces_one_someone_set(api: Api, tmp_path: Path) -> None:
    """`--demo` on a database that already has a person of the demo's name: their password
    stays theirs; a demo person without one gets the demo's."""
    await add_city(api.db, "rotterdam", "Rotterdam")
    store = store_for(api.settings)
    try:
        realm = await make_realm(api.db, store, api.settings, "rotterdam")  # has a password
        kept = demo.password(tmp_path)
        assert demo.password(tmp_path) == kept  # once per data directory
        (tmp_path / demo.PASSWORD_FILE).write_text("short\n")
        fresh = demo.password(tmp_path)  # a file no one could sign in with is replaced
        assert fresh != "short"
        assert len(fresh) >= 10
        await asyncio.to_thread(
            demo.give_password, store, "rotterdam", realm.username, fresh, False
        )
        creds = await asyncio.to_thread(people.credentials, store.db, "rotterdam", realm.username)
        assert creds is not None
        assert creds.password_hash is not None
        assert verify_password(PASSWORD, creds.password_hash)  # unchanged
    finally:
        store.close()
