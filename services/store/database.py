"""The database handle: one AsyncMongoClient per process, collections, transactions, indexes."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pymongo
from bson import ObjectId
from bson.errors import InvalidId
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from cityexchange.services.errors import OutcomeUnknown, Unavailable
from cityexchange.services.store import driver_fixes
from cityexchange.services.store.monitoring import CommandCounter
from cityexchange.services.store.unavailable import (
    guarded,  # the one "unavailable" rule, re-exported
)

driver_fixes.apply()  # before any client exists: see the module

Document = dict[str, Any]
R = TypeVar("R")

WRITE_CONFLICT = 112
# An acknowledged write survives the loss of the primary only once a majority of the replica
# set has it in its journal (MongoDB manual, "Write Concern": w "majority", j true).
DURABLE = WriteConcern(w="majority", j=True)
# Every read of a transaction from one snapshot of majority-committed data, so no
# transaction builds on a write that a failover could roll back.
SNAPSHOT = ReadConcern("snapshot")
# Conflicts are retried within the request's time budget, and at most this many times.
TRANSACTION_ATTEMPTS = 20
BACKOFF_FIRST_SECONDS = 0.005
BACKOFF_MAX_SECONDS = 0.2
COMMIT_ATTEMPTS = 3


def _retryable(exc: PyMongoError) -> bool:
    """A transaction that failed this way did not commit, and may succeed if run again. A
    timeout is not retried: the request's time budget is spent."""
    conflict = isinstance(exc, OperationFailure) and exc.code == WRITE_CONFLICT
    return (conflict or exc.has_error_label("TransientTransactionError")) and not exc.timeout


async def _commit(session: AsyncClientSession) -> None:
    """Commit; a commit whose answer was lost is sent again (the server applies a
    transaction's commit once), and when no answer comes the outcome is unknown."""
    sent_unanswered = False
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            await session.commit_transaction()
            return
        except PyMongoError as exc:
            unknown = exc.has_error_label("UnknownTransactionCommitResult")
            if not unknown and not sent_unanswered:
                raise  # the server answered the first commit: not committed
            # Once a commit went unanswered, a later "no such transaction" may only mean
            # that a restarted server forgot it: the outcome stays unknown.
            sent_unanswered = True
            if not unknown or exc.timeout or attempt == COMMIT_ATTEMPTS:
                raise OutcomeUnknown() from exc


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
    # Held by the exclusive transaction of this process that is running (see in_transaction).
    exclusive: asyncio.Lock = field(default_factory=asyncio.Lock)

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
            w="majority",  # DURABLE, for the writes outside transactions too
            journal=True,
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

    @guarded
    async def in_transaction(
        self, work: Callable[[AsyncClientSession], Awaitable[R]], *, exclusive: bool = False
    ) -> R:
        """Run `work` in a transaction and commit it durably, retrying conflicts with bounded,
        jittered backoff. `exclusive` transactions run one at a time in this process: they
        all write one document, and a transaction conflicts on it whenever another commits
        a change to it after this one's snapshot was taken, so they queue here instead.
        All attempts together get one operation timeout (within any caller's deadline)."""
        with pymongo.timeout(self.client.options.timeout):
            async with self.client.start_session() as session:
                for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
                    try:
                        if exclusive:
                            async with self.exclusive:
                                return await self._attempt(session, work)
                        return await self._attempt(session, work)
                    except PyMongoError as exc:
                        if not _retryable(exc):
                            raise
                        if attempt == TRANSACTION_ATTEMPTS:
                            raise Unavailable("too many concurrent changes; try again") from exc
                    backoff = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2**attempt)
                    await asyncio.sleep(random.uniform(0, backoff))  # noqa: S311 - jitter
        raise AssertionError("the loop returns or raises")

    @staticmethod
    async def _attempt(
        session: AsyncClientSession, work: Callable[[AsyncClientSession], Awaitable[R]]
    ) -> R:
        await session.start_transaction(read_concern=SNAPSHOT, write_concern=DURABLE)
        try:
            result = await work(session)
        except PyMongoError:
            if session.in_transaction:
                await session.abort_transaction()
            raise
        await _commit(session)
        return result

    @guarded
    async def ping(self, within_seconds: float | None = None) -> None:
        """Ask the server for a reply within `within_seconds`. The bound is the driver's
        own (CSOT): cancelling a driver call from outside (asyncio.wait_for) can leave its
        connection pool locked."""
        with pymongo.timeout(within_seconds):
            await self.client.admin.command("ping")

    async def is_empty(self) -> bool:
        return await self.cities.estimated_document_count() == 0
