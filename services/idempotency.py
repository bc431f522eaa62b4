"""Idempotent retries: a mutation sent again with the same clientMutationId returns what the
first attempt did and changes nothing (in the manner of Stripe's idempotency keys).

Only successful attempts are recorded: one that failed with a user error changed nothing, so
its retry simply runs again. The record is written in the transaction of the mutation's
write when it has one (services/store/events.record); a mutation that wrote nothing through
it (a no-op, or the webhook and realm-administration writes) is recorded just after.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from cityexchange.services.clock import now
from cityexchange.services.errors import InvalidInput, KeyReused
from cityexchange.services.principal import Principal
from cityexchange.services.store import idempotency as store
from cityexchange.services.store.database import Database
from cityexchange.services.store.idempotency import MutationKey, id_of

T = TypeVar("T")
KEY_MAX = 100

__all__ = ["KEY_MAX", "MutationKey", "id_of", "key_of", "once"]


def key_of(*, actor: Principal, name: str, key: str, input_hash: str) -> MutationKey:
    """The caller's key for mutation `name`, scoped to their city and OAuth client; KeyReused
    later if the same key comes with other input or from another person."""
    if not key or len(key) > KEY_MAX or not key.isprintable():
        raise InvalidInput("clientMutationId", f"must be 1 to {KEY_MAX} printable characters")
    # The caller's subject goes into the hash: people of one city share a client (a portal),
    # and one person's retry must never be answered with another's result.
    caller = hashlib.sha256(f"{actor.subject}\n{input_hash}".encode()).hexdigest()
    return MutationKey(
        city=actor.city, client=actor.client_id, name=name, key=key, input_hash=caller
    )


async def once(
    *,
    db: Database,
    key: MutationKey,
    work: Callable[[], Awaitable[T]],
    result_id: Callable[[T], str | None],
    reload: Callable[[str | None], Awaitable[T]],
) -> T:
    """Run `work` unless `key` already ran; then `reload` its result (read fresh, by the id
    the first attempt recorded). KeyReused when the key came with a different input."""
    first = await store.find(db, key)
    if first is None:
        try:
            with store.claiming(key, at=now()) as claim:
                result = await work()
            if not claim.taken:  # nothing went through a transaction: record it now
                await store.insert(db, claim, result_id=result_id(result))
            return result
        except store.AlreadyRecorded:  # a concurrent attempt with the same key won
            first = await store.find(db, key)
            if first is None:
                raise
    if first.input_hash != key.input_hash:
        raise KeyReused(key.key)
    return await reload(first.result_id)
