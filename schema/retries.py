"""Retries at the edge: how a mutation names itself for idempotency (services/idempotency.py)
and answers a retry with the same clientMutationId. `attempt` (schema/errors.py) runs them."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from cityexchange.schema.context import Info
from cityexchange.services import idempotency

T = TypeVar("T")

RETRY_KEY = (
    "Your id for this change, to send it again safely: for 24 hours, the same mutation with the "
    "same clientMutationId (from your city and OAuth client) returns the first result and "
    "changes nothing; with a different input it is a CONFLICT. At most 100 printable "
    "characters."
)
RETRY_KEY_ECHO = "The input's clientMutationId."


class MutationInput(Protocol):
    """Every mutation's input: it may carry a clientMutationId."""

    client_mutation_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Retry(Generic[T]):
    """How a mutation answers a retry with the same clientMutationId: `reload` reads the
    first attempt's result fresh, given the id that attempt recorded (`result_id`)."""

    info: Info
    input: MutationInput
    reload: Callable[[str | None], Awaitable[T]]
    result_id: Callable[[T], str | None] = idempotency.id_of


def created(get: Callable[[str], Awaitable[T]]) -> Callable[[str | None], Awaitable[T]]:
    """The `reload` of a mutation that creates something: by the id it recorded."""

    async def reload(result_id: str | None) -> T:
        if result_id is None:  # a creation's transaction always returns its model
            raise RuntimeError("a creation was recorded without the id it created")
        return await get(result_id)

    return reload


def fingerprint(input: MutationInput) -> str:
    """A hash of everything in `input` but its clientMutationId (a key reused with other
    input is refused, not replayed)."""
    fields = {
        name: value for name, value in _fields_of(input).items() if name != "client_mutation_id"
    }
    canonical = json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _fields_of(input: object) -> dict[str, object]:
    if dataclasses.is_dataclass(input) and not isinstance(input, type):
        return dataclasses.asdict(input)
    raise TypeError(f"{type(input).__name__} is not a strawberry input")


async def still_gone(_: str | None) -> None:
    """The `reload` of a deletion: its retry finds it still gone."""
