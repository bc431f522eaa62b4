"""Domain errors, raised by use cases and translated to API codes only at the edge.

ServiceError
├── InvalidInput(field, message)   bad value from the caller        -> BAD_USER_INPUT
├── NotFound(kind, id)             no such thing (or not visible)   -> NOT_FOUND
├── Conflict(expected, actual)     stale version, lost-update guard -> CONFLICT
├── Forbidden(reason)              authenticated, but not allowed   -> FORBIDDEN
├── KeyReused(key)                 clientMutationId, other input    -> CONFLICT
└── Unavailable(reason)            the database cannot be reached   -> SERVICE_UNAVAILABLE
    │                              (decided by services/store/unavailable.py)
    └── OutcomeUnknown(reason)     a write may or may not have committed -> OUTCOME_UNKNOWN
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a use case raises on purpose."""


class InvalidInput(ServiceError):
    def __init__(self, field: str | tuple[str, ...], message: str) -> None:
        self.field: tuple[str, ...] = (field,) if isinstance(field, str) else field
        self.message = message
        super().__init__(f"{'.'.join(self.field)}: {message}")


NOT_FOUND_ID_SHOWN = 100  # characters of a missing id a message repeats: not a client's megabyte


class NotFound(ServiceError):
    def __init__(self, kind: str, id: str) -> None:
        self.kind = kind
        self.id = id
        shown = id if len(id) <= NOT_FOUND_ID_SHOWN else f"{id[:NOT_FOUND_ID_SHOWN]}..."
        super().__init__(f"{kind} {shown!r} not found")


class Conflict(ServiceError):
    def __init__(self, kind: str, id: str, *, expected: int, actual: int | None) -> None:
        self.kind = kind
        self.id = id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{kind} {id!r} is at version {actual}, not {expected}: reload it and try again"
        )


class KeyReused(ServiceError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"clientMutationId {key!r} was used for a different change: use a new one")


class Forbidden(ServiceError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Unavailable(ServiceError):
    def __init__(self, reason: str = "the database is unreachable") -> None:
        self.reason = reason
        super().__init__(reason)


class OutcomeUnknown(Unavailable):
    """The time budget ran out before a write's commit was confirmed: it may have happened."""

    def __init__(
        self, reason: str = "the change may or may not have been stored: read it back first"
    ) -> None:
        super().__init__(reason)
