"""One supervised task group for the process's background loops.

A loop is an async function that runs until the stop event is set. One that raises is logged
with its name and traceback and started again after a delay that doubles while it keeps
failing (capped, and back to the first delay after a long enough run). A loop that returns
before the stop has died quietly and is restarted alike, unless it is marked `once` (index
creation), which is then done. Each loop's state shows in `/readyz`.

On the way out the stop event is set and the loops together get one bounded time to finish
their current item; those that overrun are cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from types import TracebackType

log = logging.getLogger("cityexchange.supervisor")

RESTART_DELAY_FIRST_SECONDS = 1.0
RESTART_DELAY_MAX_SECONDS = 60.0
RAN_LONG_ENOUGH_SECONDS = 60.0
STOP_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Loop:
    """A named background loop: `run(stopping)` returns once `stopping` is set, or, when
    `once`, when its work is done."""

    name: str
    run: Callable[[asyncio.Event], Awaitable[None]]
    once: bool = False


class LoopState(Enum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"  # it raised; it starts again after a delay
    DONE = "done"  # a `once` loop that returned by itself (index creation)
    STOPPED = "stopped"  # it returned after the stop event
    CANCELLED = "cancelled"  # it overran its stop bound


@dataclass(slots=True)
class LoopStatus:
    state: LoopState = LoopState.STARTING
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    restarts: int = 0
    last_error: str | None = None

    def as_json(self) -> dict[str, object]:
        shown: dict[str, object] = {
            "state": self.state.value,
            "since": self.since.isoformat(),
            "restarts": self.restarts,
        }
        if self.last_error is not None:
            shown["last_error"] = self.last_error
        return shown


class Supervisor:
    """Runs `loops` from `async with` until its end; see the module's docstring."""

    def __init__(
        self,
        loops: Sequence[Loop],
        *,
        first_delay: float = RESTART_DELAY_FIRST_SECONDS,
        max_delay: float = RESTART_DELAY_MAX_SECONDS,
        stop_seconds: float = STOP_SECONDS,
    ) -> None:
        names = [loop.name for loop in loops]
        if len(set(names)) != len(names):
            raise ValueError(f"loop names must be unique: {names}")
        self.loops = tuple(loops)
        self.first_delay, self.max_delay, self.stop_seconds = first_delay, max_delay, stop_seconds
        self.stopping = asyncio.Event()
        self.status = {loop.name: LoopStatus() for loop in loops}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def restarting(self) -> list[str]:
        """The loops waiting to start again after an error."""
        return [n for n, s in self.status.items() if s.state is LoopState.RESTARTING]

    def as_json(self) -> dict[str, object]:
        return {name: status.as_json() for name, status in self.status.items()}

    async def __aenter__(self) -> Supervisor:
        for loop in self.loops:
            self._tasks[loop.name] = asyncio.create_task(self._keep(loop), name=loop.name)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Set the stop event, then give the loops together `stop_seconds` to return, and
        cancel those that overrun."""
        self.stopping.set()
        running = {task: name for name, task in self._tasks.items() if not task.done()}
        if not running:
            return
        log.info("waiting for the background loops to stop: %s", ", ".join(running.values()))
        _, late = await asyncio.wait(running, timeout=self.stop_seconds)
        for task in late:
            name = running[task]
            log.warning(
                "the %s loop did not stop within %.0fs; cancelling it",
                name,
                self.stop_seconds,
                extra={"loop": name},
            )
            task.cancel()
            self._set(name, LoopState.CANCELLED)
        if late:
            await asyncio.wait(late)

    def _set(self, name: str, state: LoopState, error: str | None = None) -> None:
        status = self.status[name]
        status.state, status.since = state, datetime.now(UTC)
        if error is not None:
            status.last_error = error

    async def _keep(self, loop: Loop) -> None:
        """Run `loop` until the stop; its failures (a raise, or a return before the stop
        that is not `once`) are logged and followed by a restart after a growing delay."""
        delay = self.first_delay
        while True:
            self._set(loop.name, LoopState.RUNNING)
            started = time.monotonic()
            try:
                await loop.run(self.stopping)
                failure = None
            except Exception as exc:
                if self.stopping.is_set():
                    log.exception("the %s loop failed while stopping", loop.name)
                    self._set(loop.name, LoopState.STOPPED, f"{type(exc).__name__}: {exc}")
                    return
                failure = exc
            if failure is None and (self.stopping.is_set() or loop.once):
                self._set(
                    loop.name, LoopState.STOPPED if self.stopping.is_set() else LoopState.DONE
                )
                return
            if time.monotonic() - started >= RAN_LONG_ENOUGH_SECONDS:
                delay = self.first_delay
            if failure is None:
                error = "it returned before the stop"
                log.error(
                    "the %s loop returned before the stop; starting it again in %.1fs",
                    loop.name,
                    delay,
                    extra={"loop": loop.name},
                )
            else:
                error = f"{type(failure).__name__}: {failure}"
                log.error(
                    "the %s loop failed; starting it again in %.1fs",
                    loop.name,
                    delay,
                    exc_info=failure,
                    extra={"loop": loop.name},
                )
            self._set(loop.name, LoopState.RESTARTING, error)
            self.status[loop.name].restarts += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            if self.stopping.is_set():
                self._set(loop.name, LoopState.STOPPED)
                return
            delay = min(delay * 2, self.max_delay)
