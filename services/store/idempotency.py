"""Idempotency records in MongoDB: one per (city, client, mutation, clientMutationId).

A record is inserted in the same transaction as the write it stands for, so a committed write
always has its record and a rolled-back one never does. The claim reaches that transaction
through a context variable, as PyMongo's own `pymongo.timeout()` reaches every command inside
its block: the use cases between the edge and the store need not carry it.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from cityexchange.services.store.database import Database, Document, guarded

COLLECTION = "mutations"


@dataclass(frozen=True, slots=True)
class MutationKey:
    """A retry is the same mutation when all of these match; `input_hash` must match too."""

    city: str
    client: str
    name: str
    key: str
    input_hash: str


@dataclass(frozen=True, slots=True)
class Recorded:
    """What the first attempt left: its input's hash and the id of what it wrote, if any."""

    input_hash: str
    result_id: str | None


class AlreadyRecorded(Exception):
    """Another attempt with the same key committed first; this one wrote nothing."""


@dataclass(slots=True)
class Claim:
    """A key waiting for the first transaction of the mutation it names."""

    key: MutationKey
    at: datetime
    taken: bool = False


_pending: ContextVar[Claim | None] = ContextVar("cityexchange_mutation_claim", default=None)


@contextmanager
def claiming(key: MutationKey, *, at: datetime) -> Generator[Claim]:
    """Within the block, the first transaction (events.record) also records `key`."""
    claim = Claim(key=key, at=at)
    token = _pending.set(claim)
    try:
        yield claim
    finally:
        _pending.reset(token)


def take() -> Claim | None:
    """The pending claim, for the transaction about to start; later ones get None."""
    claim = _pending.get()
    if claim is None or claim.taken:
        return None
    claim.taken = True
    return claim


def _filter(key: MutationKey) -> Document:
    return {"city": key.city, "client": key.client, "name": key.name, "key": key.key}


@guarded
async def find(db: Database, key: MutationKey) -> Recorded | None:
    doc = await db.db[COLLECTION].find_one(_filter(key))
    if doc is None:
        return None
    return Recorded(input_hash=doc["inputHash"], result_id=doc.get("resultId"))


def id_of(result: object) -> str | None:
    """The id of what a transaction wrote, when it returned a model with one."""
    result_id = getattr(result, "id", None)
    return result_id if isinstance(result_id, str) else None


@guarded
async def insert(
    db: Database,
    claim: Claim,
    *,
    result_id: str | None,
    session: AsyncClientSession | None = None,
) -> None:
    """Record `claim`; AlreadyRecorded when the unique index says that another attempt with
    the same key got there first (inside a transaction, that aborts this attempt's write)."""
    doc: Document = {
        **_filter(claim.key),
        "inputHash": claim.key.input_hash,
        "resultId": result_id,
        "createdAt": claim.at,
    }
    try:
        await db.db[COLLECTION].insert_one(doc, session=session)
    except DuplicateKeyError as exc:
        raise AlreadyRecorded() from exc
