"""The one place that decides "the database is unavailable", from PyMongo's own error types,
flags and labels (never from an error's message), for the async and the sync client alike.

PyMongoError
├── ConnectionFailure               no connection, or it broke               -> Unavailable
│   ├── AutoReconnect               (NetworkTimeout, ServerSelectionTimeoutError)
│   └── WaitQueueTimeoutError       no free connection in the pool in time
├── any error whose `timeout` is True (CSOT `timeoutMS`, ExecutionTimeout)   -> Unavailable
├── label RetryableWriteError      the driver's one retry failed too        -> Unavailable
└── WTimeoutError                   applied, not known durable               -> OutcomeUnknown
Anything else (DuplicateKeyError, a bad query, ...) is the caller's to handle. So is the label
TransientTransactionError (a write conflict, say): the transaction runner retries the whole
transaction (Database.in_transaction) and reports Unavailable itself when its attempts run
out; turning it into Unavailable inside the transaction would stop that retry.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Generator
from typing import ParamSpec, TypeVar

from pymongo.errors import ConnectionFailure, PyMongoError, WTimeoutError

from cityexchange.services.errors import OutcomeUnknown, Unavailable

P = ParamSpec("P")
R = TypeVar("R")

# The label the server or the driver puts on a write that may succeed later, once the
# driver's own retry failed too (MongoDB manual, "Retryable Writes").
UNAVAILABLE_LABELS = ("RetryableWriteError",)


def is_unavailable(exc: PyMongoError) -> bool:
    """Whether `exc` means the database could not be reached or did not answer in time."""
    if isinstance(exc, ConnectionFailure) or exc.timeout:  # WaitQueueTimeoutError included
        return True
    return any(exc.has_error_label(label) for label in UNAVAILABLE_LABELS)


def translate(exc: PyMongoError) -> Unavailable | None:
    """The domain error a driver error stands for, or None when it is not an outage."""
    if isinstance(exc, WTimeoutError):
        return OutcomeUnknown()
    if is_unavailable(exc):
        return Unavailable()
    return None


@contextlib.contextmanager
def translated() -> Generator[None]:
    """Within it, PyMongo's outage errors become the domain's (see `translate`)."""
    try:
        yield
    except PyMongoError as exc:
        error = translate(exc)
        if error is None:
            raise
        raise error from exc


def guarded(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """An async store function whose outage errors become the domain's Unavailable (and a
    write concern that timed out, applied but not known durable, OutcomeUnknown)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with translated():
            return await fn(*args, **kwargs)

    return wrapper


def guarded_sync(fn: Callable[P, R]) -> Callable[P, R]:
    """`guarded`, for the synchronous client of the authorization server and the CLI."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with translated():
            return fn(*args, **kwargs)

    return wrapper
