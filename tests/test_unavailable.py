"""One rule says "the database is unavailable" (services/store/unavailable.py), from PyMongo's
own error types, flags and labels; checked here with errors the real database and a real
client raise."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pymongo
import pytest
from pymongo import MongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import (
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
)

from cityexchange.services.errors import Unavailable
from cityexchange.services.store.database import Database, guarded
from cityexchange.services.store.unavailable import guarded_sync, is_unavailable, translate


def _closed_port() -> int:
    """A local port nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_no_server_is_unavailable() -> None:
    db = Database.connect(
        f"mongodb://127.0.0.1:{_closed_port()}/?directConnection=true",
        "nowhere",
        server_selection_timeout_ms=200,
        timeout_ms=1000,
    )
    try:
        with pytest.raises(Unavailable) as raised:
            await db.ping()
    finally:
        await db.close()
    cause = raised.value.__cause__
    assert isinstance(cause, ServerSelectionTimeoutError)
    assert is_unavailable(cause)


def test_no_server_is_unavailable_to_the_sync_client_too() -> None:
    client: MongoClient[dict[str, Any]] = MongoClient(
        f"mongodb://127.0.0.1:{_closed_port()}/?directConnection=true",
        serverSelectionTimeoutMS=200,
    )

    @guarded_sync
    def count() -> int:
        return client["nowhere"]["things"].count_documents({})

    try:
        with pytest.raises(Unavailable) as raised:
            count()
    finally:
        client.close()
    assert isinstance(raised.value.__cause__, ServerSelectionTimeoutError)


async def test_an_operation_out_of_time_is_unavailable(db: Database) -> None:
    await db.cities.insert_one({"_id": "rotterdam"})  # the connection is up and warm

    @guarded
    async def find_within_a_microsecond() -> object:
        with pymongo.timeout(0.000_001):
            return await db.cities.find_one({"_id": "rotterdam"})

    with pytest.raises(Unavailable) as raised:
        await find_within_a_microsecond()
    cause = raised.value.__cause__
    assert isinstance(cause, PyMongoError)
    assert cause.timeout
    assert is_unavailable(cause)


async def test_a_duplicate_key_is_not_unavailable(db: Database) -> None:
    await db.cities.insert_one({"_id": "rotterdam"})

    @guarded
    async def insert_again() -> None:
        await db.cities.insert_one({"_id": "rotterdam"})

    with pytest.raises(DuplicateKeyError) as raised:
        await insert_again()  # passed through as it is: the caller's to handle
    assert not is_unavailable(raised.value)
    assert translate(raised.value) is None


@pytest.mark.parametrize(
    "error",
    [
        OperationFailure("not primary", 10107, {"errorLabels": ["RetryableWriteError"]}),
        WaitQueueTimeoutError("no free connection in the pool"),
    ],
)
def test_labels_and_pool_timeouts_are_unavailable(error: PyMongoError) -> None:
    """Errors a single server rarely gives on demand, as the driver builds them."""
    assert is_unavailable(error)
    assert type(translate(error)) is Unavailable


def test_an_ordinary_server_error_is_not_unavailable() -> None:
    assert not is_unavailable(OperationFailure("bad query", 2, {}))


async def test_a_write_conflict_in_a_transaction_is_retried_not_unavailable(db: Database) -> None:
    """TransientTransactionError is the transaction runner's to retry: a conflict met by a
    guarded write inside a transaction reaches the runner as the driver's error."""
    await db.cities.insert_one({"_id": "rotterdam", "n": 0})
    holding, conflicted = asyncio.Event(), asyncio.Event()
    attempts = 0

    @guarded
    async def bump(session: AsyncClientSession) -> None:
        await db.cities.update_one({"_id": "rotterdam"}, {"$inc": {"n": 1}}, session=session)

    async def holder(session: AsyncClientSession) -> None:
        await bump(session)
        holding.set()
        async with asyncio.timeout(10):  # uncommitted until the contender has met it
            await conflicted.wait()

    async def contender(session: AsyncClientSession) -> None:
        nonlocal attempts
        attempts += 1
        try:
            await bump(session)
        except (PyMongoError, Unavailable):
            conflicted.set()
            raise

    first = asyncio.create_task(db.in_transaction(holder))
    await holding.wait()
    await db.in_transaction(contender)  # conflicts, is retried, and commits
    await first
    assert attempts >= 2
    doc = await db.cities.find_one({"_id": "rotterdam"})
    assert doc is not None
    assert doc["n"] == 2
