"""The database handle: one AsyncMongoClient per process, collections, transactions, indexes."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import pymongo
from bson import ObjectId
from bson.errors import InvalidId
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WTimeoutError,
)

from services.errors import Unavailable
from services.store import driver_fixes
from services.store.monitoring import CommandCounter

driver_fixes.apply()  # before any client exists: see the module

Document = dict[str, Any]
P = ParamSpec("P")
R = TypeVar("R")

WRITE_CONFLICT = 112
_UNREACHABLE = (
    AutoReconnect,
    ConnectionFailure,
    ExecutionTimeout,
    NetworkTimeout,
    ServerSelectionTimeoutError,
    WTimeoutError,
)


def guarded(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn 'database unreachable' driver errors into the domain's Unavailable."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except _UNREACHABLE as exc:
            raise Unavailable() from exc
        except PyMongoError as exc:
            if "timed out" in str(exc).lower():
                raise Unavailable() from exc
            raise

    return wrapper


def deadline(seconds: float) -> AbstractContextManager[None]:
    """Bound all the database work inside the block, together, to `seconds` (PyMongo's
    client-side operation timeout, carried by a context variable into child tasks)."""
    return pymongo.timeout(seconds)


def object_id(text: str) -> ObjectId | None:
    """Parse an id from the outside world; None when it cannot be one of ours."""
    try:
        return ObjectId(text)
    except (InvalidId, TypeError):
        return None


def object_ids(texts: Sequence[str]) -> list[ObjectId]:
    return [oid for text in texts if (oid := object_id(text)) is not None]


@dataclass(frozen=True, slots=True)
class Database:
    """Typed access to the service's collections; built once in the app's lifespan."""

    client: AsyncMongoClient[Document]
    db: AsyncDatabase[Document]

    @classmethod
    def connect(
        cls,
        uri: str,
        name: str,
        *,
        server_selection_timeout_ms: int,
        timeout_ms: int,
        listeners: Sequence[CommandCounter] = (),
        app_name: str = "cityexchange",
    ) -> Database:
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            uri,
            serverSelectionTimeoutMS=server_selection_timeout_ms,
            timeoutMS=timeout_ms,
            connectTimeoutMS=min(server_selection_timeout_ms, 3000),
            event_listeners=list(listeners),
            appname=app_name,
            tz_aware=True,
            retryWrites=True,
        )
        return cls(client=client, db=client[name])

    async def close(self) -> None:
        await self.client.close()

    @property
    def cities(self) -> AsyncCollection[Document]:
        return self.db["cities"]

    @property
    def people(self) -> AsyncCollection[Document]:
        return self.db["people"]

    @property
    def problems(self) -> AsyncCollection[Document]:
        return self.db["problems"]

    @property
    def solutions(self) -> AsyncCollection[Document]:
        return self.db["solutions"]

    @property
    def comments(self) -> AsyncCollection[Document]:
        return self.db["comments"]

    @property
    def events(self) -> AsyncCollection[Document]:
        return self.db["events"]

    @property
    def realm_keys(self) -> AsyncCollection[Document]:
        return self.db["realm_keys"]

    @guarded
    async def in_transaction(self, work: Callable[[AsyncClientSession], Awaitable[R]]) -> R:
        """Run `work` in a transaction; transient conflicts and unknown commit results are
        retried by the driver (within the operation timeout), so concurrent writers queue
        up instead of failing."""
        try:
            async with self.client.start_session() as session:
                return await session.with_transaction(work)
        except OperationFailure as exc:
            if exc.code == WRITE_CONFLICT or exc.has_error_label("TransientTransactionError"):
                raise Unavailable("too many concurrent changes; try again") from exc
            raise

    @guarded
    async def ping(self, within_seconds: float | None = None) -> None:
        """Ask the server for a reply within `within_seconds`. The bound is the driver's
        own (CSOT): cancelling a driver call from outside (asyncio.wait_for) can leave its
        connection pool locked."""
        with pymongo.timeout(within_seconds):
            await self.client.admin.command("ping")

    async def is_empty(self) -> bool:
        return await self.cities.estimated_document_count() == 0
