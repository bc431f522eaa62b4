"""A database outage gives coded errors within seconds, and the service recovers by itself."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from cityexchange.app import create_app
from cityexchange.embedded import EmbeddedDatabase
from cityexchange.services.store.database import Database
from cityexchange.services.store.indexes import ensure_indexes
from cityexchange.settings import Secret, Settings
from tests.conftest import Api, add_city

# A liveness bound from the issue ("never a hang"), not a performance measurement.
OUTAGE_ANSWER_SECONDS = 5
RECOVERY_SECONDS = 60


@pytest.mark.skipif(
    "CITYEXCHANGE_MONGODB_URI" in __import__("os").environ,
    reason="stops and restarts its own embedded database process",
)
async def test_outage_is_reported_fast_and_recovery_needs_no_restart(tmp_path: Path) -> None:
    database = EmbeddedDatabase(tmp_path)
    uri = database.start()
    port = database.port
    settings = Settings(mongodb_uri=Secret(uri), db_name="outage")
    db = Database.connect(uri, "outage", server_selection_timeout_ms=3000, timeout_ms=10_000)
    try:
        await ensure_indexes(db)
        await add_city(db, "rotterdam")
        app = create_app(settings)
        async with (
            LifespanManager(app) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app), base_url="http://t"
            ) as http,
        ):
            api = Api(http=http, db=db, settings=settings)
            token = await api.token("rotterdam")
            query = "{ viewer { city { name } } problems { totalCount } }"
            assert (await api.data(query, token=token))["viewer"]["city"] == {"name": "Rotterdam"}

            database.stop()
            # Timed, not cancelled: cancelling an in-flight driver call from outside can
            # wedge the driver's pool, which would be the test breaking the service.
            started = time.monotonic()
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert time.monotonic() - started < OUTAGE_ANSWER_SECONDS
            started = time.monotonic()
            body = await api.gql(query, token=token, status=503)
            assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            assert time.monotonic() - started < OUTAGE_ANSWER_SECONDS
            token_response = await http.post(
                "/realms/rotterdam/token",
                data={"grant_type": "client_credentials"},
                auth=("some-client", "some-secret"),
            )
            assert token_response.status_code == 503
            assert token_response.json()["error"] == "temporarily_unavailable"

            restarted = EmbeddedDatabase(tmp_path, port=port or 0)
            restarted.start()
            database = restarted
            deadline = time.monotonic() + RECOVERY_SECONDS
            while (await http.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "the service did not recover"
                await asyncio.sleep(0.2)
            data = await api.data(query, token=token)
            assert data["problems"]["totalCount"] == 0
    finally:
        await db.close()
        database.stop()
