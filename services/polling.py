"""The shape every background poller of the service shares: do a round now, then again every
so often until told to stop; a round the database could not answer is logged and waited out,
never the end of the loop (cityexchange/supervisor.py restarts a loop on anything else)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from cityexchange.services.errors import Unavailable


async def every(
    seconds: float,
    stopping: asyncio.Event,
    round: Callable[[], Awaitable[object]],
    *,
    log: logging.Logger,
    paused: str,
) -> None:
    """Run `round` now and then every `seconds` until `stopping` is set; `paused` is logged
    as a warning when a round finds the database unreachable."""
    while not stopping.is_set():
        try:
            await round()
        except Unavailable:
            log.warning(paused)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), seconds)
