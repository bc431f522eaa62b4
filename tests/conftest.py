"""Fixtures: a real wire-protocol database, a fresh database per test, the app over HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pymongo.errors import PyMongoError

from cityexchange.app import create_app
from cityexchange.auth.oauth_store import OAuthStore
from cityexchange.auth.realms import RealmRegistry
from cityexchange.auth.tokens import issue_access_token
from cityexchange.embedded import EmbeddedDatabase
from cityexchange.resources import open_database
from cityexchange.services import cities
from cityexchange.services.clock import now
from cityexchange.services.models import City
from cityexchange.services.store.database import Database
from cityexchange.services.store.indexes import ensure_indexes
from cityexchange.settings import Secret, Settings
from tests.mail_support import mail  # noqa: F401 - the fixture, for every module
from tests.oauth_support import Realm, make_realm, store_for

ALL_SCOPES = ("read", "publish", "comment", "admin")


@dataclass(frozen=True)
class SessionDatabase:
    """The server the session's tests run against, and whether its data dies with the session."""

    uri: str
    log: Path | None  # the embedded database's log, to quote when it stops answering

    @property
    def ephemeral(self) -> bool:
        return self.log is not None


@pytest.fixture(scope="session")
def session_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionDatabase]:
    """CITYEXCHANGE_MONGODB_URI if set, else a SecantusDB process for the whole session."""
    configured = os.environ.get("CITYEXCHANGE_MONGODB_URI")
    if configured:
        yield SessionDatabase(configured, log=None)
        return
    data_dir = tmp_path_factory.mktemp("secantus")
    with EmbeddedDatabase(data_dir) as database:
        yield SessionDatabase(database.uri, log=data_dir / "secantusd.log")


@pytest.fixture(scope="session")
def mongodb_uri(session_database: SessionDatabase) -> str:
    return session_database.uri


@pytest.fixture
def settings(mongodb_uri: str) -> Settings:
    """Settings of one test: its own database, so tests never see each other's data."""
    return Settings(
        mongodb_uri=Secret(mongodb_uri),
        db_name=f"cx_test_{uuid.uuid4().hex[:12]}",
        webhook_retry_seconds=0.1,  # every app of a test shares its delivery queue
    )


@pytest.fixture
async def db(settings: Settings, session_database: SessionDatabase) -> AsyncIterator[Database]:
    """The test's database, through the service's own `open_database` (with a roomier
    time budget than a request's: set-up writes many documents at once).

    On a configured MongoDB it is dropped afterwards. The embedded database's are left to
    the session's temporary data directory instead: SecantusDB keeps every database in the
    same few tables and drops one by deleting its rows one at a time under its storage lock,
    which holds every other command meanwhile (the demo's database took 48 s; a test's, up
    to a few seconds, over 500 times a run)."""
    async with open_database(
        dataclasses.replace(settings, operation_timeout_ms=60_000)
    ) as database:
        try:
            await ensure_indexes(database)
        except PyMongoError as error:
            _stop_the_session(session_database, error)
        yield database
        if not session_database.ephemeral:
            await database.client.drop_database(settings.db_name)


def _stop_the_session(database: SessionDatabase, error: PyMongoError) -> NoReturn:
    """Every later test would wait out its time budget on a database that stopped answering:
    end the run now, with what the database said last."""
    said = ""
    if database.log is not None and database.log.exists():
        said = "\n".join(database.log.read_text(errors="replace").splitlines()[-40:])
    pytest.exit(f"the test database stopped answering ({error!r}); its log ends:\n{said}", 3)


@dataclass
class Api:
    """A GraphQL client of the app under test, speaking HTTP through ASGI."""

    http: httpx.AsyncClient
    db: Database
    settings: Settings

    async def token(
        self,
        city: str,
        scopes: tuple[str, ...] = ALL_SCOPES,
        subject: str = "tester",
        ttl: int = 900,
    ) -> str:
        registry = RealmRegistry(self.db, self.settings.public_url)
        issued = await issue_access_token(
            registry,
            registry.realm(city),
            subject=subject,
            scopes=scopes,
            client_id="tests",
            audience=self.settings.audience,
            ttl_seconds=ttl,
        )
        return issued.access_token

    async def gql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        status: int = 200,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str
    ) -> dict[str, Any]:
        """The `data` of a query that must succeed."""
        body = await self.gql(query, variables, token=token)
        assert not body.get("errors"), body["errors"]
        result: dict[str, Any] = body["data"]
        return result


def db_commands(metrics: str) -> float:
    """The database commands requests have sent so far, from the app's /metrics text."""
    return sum(
        float(v)
        for v in re.findall(
            r'^cityexchange_db_commands_total\{[^}]*origin="request"[^}]*\} (\S+)$',
            metrics,
            re.MULTILINE,
        )
    )


async def add_city(db: Database, slug: str, name: str | None = None, country: str = "NL") -> City:
    return await cities.add_city(
        db=db, city=City(slug=slug, name=name or slug.title(), country=country, created_at=now())
    )


@pytest.fixture
async def api(settings: Settings, db: Database) -> AsyncIterator[Api]:
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield Api(http=http, db=db, settings=settings)


@pytest.fixture
async def two_cities(db: Database) -> tuple[City, City]:
    return await add_city(db, "rotterdam", "Rotterdam"), await add_city(db, "lagos", "Lagos", "NG")


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture
async def store(api: Api) -> AsyncIterator[OAuthStore]:
    """The realms' synchronous OAuth store on the test's database."""
    oauth = store_for(api.settings)
    yield oauth
    oauth.close()


@pytest.fixture
async def rotterdam(api: Api, store: OAuthStore) -> Realm:
    """Rotterdam's realm with a portal client, a public app and a person who can sign in."""
    await add_city(api.db, "rotterdam", "Rotterdam")
    return await make_realm(api.db, store, api.settings, "rotterdam")


async def run_cli(api: Api, *args: str) -> tuple[int, str, str]:
    """Run a `cityexchange` command against the test's database; its exit code and output."""
    uri = api.settings.mongodb_uri
    assert uri is not None
    env = {
        **os.environ,
        "CITYEXCHANGE_MONGODB_URI": uri.value,
        "CITYEXCHANGE_DB": api.settings.db_name,
    }
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "cityexchange"),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def on_configured_database(api: Api, *args: str) -> dict[str, Any]:
    """Run a command against the test's database (CITYEXCHANGE_MONGODB_URI); its JSON."""
    code, out, err = await run_cli(api, *args)
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result
