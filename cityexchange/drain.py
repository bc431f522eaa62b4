"""Graceful shutdown for rolling updates.

On SIGTERM the process first stops being ready (`/readyz` answers 503) while it keeps serving,
for `drain_seconds`, so that load balancers take it out of rotation. It then closes its
WebSockets with 1001 (going away), so clients reconnect elsewhere and resume with `after`, and
hands over to uvicorn: uvicorn stops accepting connections, finishes the requests in flight
(within its `--timeout-graceful-shutdown`), and runs the lifespan's shutdown, which stops the
background workers after their current item. A second SIGTERM skips what is left of the drain.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger("cityexchange")

Handler = Callable[[int, FrameType | None], object]


@dataclass(slots=True)
class Drain:
    seconds: float
    close_sockets: Callable[[], Awaitable[None]]
    draining: bool = False
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def install(self) -> Callable[[], None]:
        """Take SIGTERM over from the server (uvicorn) for the lifespan of the app; returns
        the undo. Nothing is installed outside the main thread or when no Python handler is
        in place (then the server handles SIGTERM on its own, without the drain)."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        server_handler = signal.getsignal(signal.SIGTERM)
        if not callable(server_handler):
            return lambda: None
        hand_over: Handler = server_handler
        loop = asyncio.get_running_loop()

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            if self.draining:
                log.info("second SIGTERM: stopping without waiting for the drain")
                hand_over(signum, frame)
                return
            self.draining = True
            # A fresh context: the signal may arrive while a request's code runs, and the
            # drain is no request's.
            loop.call_soon_threadsafe(
                self._start, lambda: hand_over(signum, frame), context=contextvars.Context()
            )

        signal.signal(signal.SIGTERM, on_sigterm)

        def undo() -> None:
            if signal.getsignal(signal.SIGTERM) is on_sigterm:
                signal.signal(signal.SIGTERM, server_handler)

        return undo

    def _start(self, hand_over: Callable[[], object]) -> None:
        self._task = asyncio.ensure_future(self._run(hand_over))

    async def _run(self, hand_over: Callable[[], object]) -> None:
        log.info(
            "SIGTERM: not ready any more; draining for %s s before closing connections",
            self.seconds,
        )
        try:
            await asyncio.sleep(self.seconds)
            await self.close_sockets()
        finally:
            hand_over()  # whatever happened above, the server stops
