"""The benchmarks' database, opened through the composition root (`open_database`) with its
indexes made, for seeding and reading back outside the service under test."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import replace

from cityexchange.resources import open_database
from cityexchange.services.store.database import Database
from cityexchange.services.store.indexes import ensure_indexes
from cityexchange.settings import Settings

SEEDING_TIMEOUT_MS = 60_000  # bulk seeding on a busy machine outlasts the service's timeout


@asynccontextmanager
async def seeding_database(settings: Settings) -> AsyncGenerator[Database]:
    """`settings`' database with the indexes made; operations may take `SEEDING_TIMEOUT_MS`.
    The service under test keeps `settings` as they are."""
    seeding = replace(settings, operation_timeout_ms=SEEDING_TIMEOUT_MS)
    async with open_database(seeding) as db:
        await ensure_indexes(db)
        yield db
