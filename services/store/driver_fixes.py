"""A workaround for PyMongo's async client on Python 3.11 (imported by services/store/database.py).

PyMongo waits on its condition variables (server selection, the connection pool) with
`asyncio.wait_for(condition.wait(), timeout)`. Before Python 3.12, `wait_for` runs the wait
in a task of its own and, on timeout, cancels that task and waits for it, and the cancelled
`Condition.wait` must take the lock back before it ends. While the database is unreachable,
many server selections time out at once, and the client's topology lock can end up with
waiters only: every database call of the process then waits for ever, and recovery never
comes. `tests/test_database_outage.py` hung this way about one run in four.

Python 3.12 implemented `wait_for` with `asyncio.timeout`, in the waiting task itself. On
3.11, where `asyncio.timeout` exists too, this module makes PyMongo's async waits do the same.
On 3.12 and later it changes nothing.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pymongo.asynchronous.pool
import pymongo.asynchronous.topology
import pymongo.lock


async def _cond_wait(condition: Any, timeout: float | None) -> bool:  # noqa: ASYNC109 (its signature)
    """PyMongo's `_async_cond_wait`, as Python 3.12's `wait_for` would run it."""
    try:
        async with asyncio.timeout(timeout):
            return bool(await condition.wait())
    except TimeoutError:
        return False


def apply() -> None:
    if sys.version_info >= (3, 12):
        return
    for module in (pymongo.lock, pymongo.asynchronous.topology, pymongo.asynchronous.pool):
        if hasattr(module, "_async_cond_wait"):
            setattr(module, "_async_cond_wait", _cond_wait)  # noqa: B010
