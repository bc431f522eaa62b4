"""The embedded database: SecantusDB run as a child process on a free loopback port.

SecantusDB is GPL-2.0, so it is never imported: it is started as a separate program, found
on PATH or beside this interpreter, from the optional `embedded` extra.

It runs with `--sync-on-commit`: every commit fsyncs the journal before it is acknowledged.
Without it a commit's journal record may still sit in the server's memory, and `kill -9`
loses acknowledged writes (and hands their event numbers out again after the restart).
`serve` supervises it: when it dies, it is reaped and started again on the same port.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

EXECUTABLE = "secantusd-py"
INSTALL_HINT = "pip install -e '.[embedded]'"
STATE_FILE = "embedded.json"
_LISTENING = re.compile(r"listening on ([\d.]+):(\d+)")
# A database that dies is started again after a delay that doubles while it keeps dying.
RESTART_DELAY_FIRST_SECONDS = 1.0
RESTART_DELAY_MAX_SECONDS = 30.0
RAN_LONG_ENOUGH_SECONDS = 60.0  # ... and starts from the first delay after a run this long
log = logging.getLogger("cityexchange.embedded")


class EmbeddedDatabaseError(RuntimeError):
    """The embedded database is missing, failed to start, or is already running."""


@dataclass(frozen=True, slots=True)
class RunningDatabase:
    pid: int
    port: int

    @property
    def uri(self) -> str:
        # SecantusDB advertises a single-node replica set that is not named rs0: connect
        # directly instead of discovering the set.
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"


def _executable() -> str:
    beside = Path(sys.executable).parent / EXECUTABLE
    found = str(beside) if beside.exists() else shutil.which(EXECUTABLE)
    if found is None:
        raise EmbeddedDatabaseError(
            f"The embedded database (SecantusDB) is not installed. Install it with "
            f"`{INSTALL_HINT}` in the project (./dev does it for you), or point "
            "CITYEXCHANGE_MONGODB_URI at a MongoDB replica set."
        )
    return found


def _die_with_parent() -> None:
    """Linux: the database gets SIGTERM if this process dies without cleaning up."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def alive(pid: int) -> bool:
    """Whether a process of this id runs (a worker, the embedded database)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _state(data_dir: Path) -> RunningDatabase | None:
    """What the state file says runs on `data_dir` (true or not)."""
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
        return RunningDatabase(pid=int(state["pid"]), port=int(state["port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running(data_dir: Path) -> RunningDatabase | None:
    """The embedded database another process runs on `data_dir`, if one answers."""
    db = _state(data_dir)
    return db if db is not None and alive(db.pid) and _answers(db.port) else None


def _storage_in_use(storage: Path) -> bool:
    """Whether a process holds WiredTiger's lock on `storage` (a POSIX lock on the first byte
    of WiredTiger.lock, released by the kernel when its holder dies, even by `kill -9`)."""
    try:
        fd = os.open(storage / "WiredTiger.lock", os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
    except OSError:
        return True
    finally:
        os.close(fd)  # and with it the lock, if this process took it
    return False


class EmbeddedDatabase:
    """Start, reach, supervise and stop SecantusDB with its data under `data_dir`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 0,
        startup_timeout: float = 60.0,
        sync_on_commit: bool = True,
    ) -> None:
        self.data_dir = data_dir
        self.requested_port = port
        self.startup_timeout = startup_timeout
        self.sync_on_commit = sync_on_commit  # False only to measure what durability costs
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self._lock = threading.RLock()  # between stop() and the supervisor's restarts
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    @property
    def uri(self) -> str:
        if self.port is None or self.process is None:
            raise EmbeddedDatabaseError("the embedded database is not running")
        return RunningDatabase(self.process.pid, self.port).uri

    def start(self) -> str:
        """Start the database (on a free port by default); return its URI once it answers."""
        executable = _executable()
        if running(self.data_dir) is not None:
            raise EmbeddedDatabaseError(
                f"another process already runs the embedded database on {self.data_dir}; "
                "stop it first, or run admin commands, which reach it by themselves"
            )
        stale = _state(self.data_dir)
        storage = self.data_dir / "db"
        if _storage_in_use(storage):
            holder = f"; {STATE_FILE} names process {stale.pid}" if stale else ""
            raise EmbeddedDatabaseError(
                f"the embedded database's storage {storage} is in use by a process that does "
                f"not answer{holder}: it may still be starting or stopping; wait, or stop it"
            )
        if stale is not None:
            log.warning(
                "%s is stale (process %d no longer runs the database): starting it afresh",
                self.data_dir / STATE_FILE,
                stale.pid,
            )
        with self._lock:
            self._stopping.clear()
            self._launch(executable, self.requested_port)
        return self.uri

    def _launch(self, executable: str, port: int) -> None:
        storage = self.data_dir / "db"
        storage.mkdir(parents=True, exist_ok=True)
        log_path = self.data_dir / "secantusd.log"
        with log_path.open("ab") as log_file:
            log_start = log_file.seek(0, os.SEEK_END)  # read only this run's output
            self.process = process = subprocess.Popen(  # noqa: S603 - our own child, fixed arguments
                [
                    executable,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--storage-path",
                    str(storage),
                    "--log-level",
                    "INFO",
                    *(["--sync-on-commit"] if self.sync_on_commit else []),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us; we stop it after the app
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        try:
            self.port = self._wait_for_port(process, log_path, log_start)
        except BaseException:
            self.process = None
            _end(process, timeout=5)
            raise
        state = self.data_dir / STATE_FILE
        temporary = state.with_suffix(".tmp")
        temporary.write_text(json.dumps({"pid": process.pid, "port": self.port}))
        temporary.replace(state)

    def _wait_for_port(self, process: subprocess.Popen[bytes], log_path: Path, offset: int) -> int:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            with log_path.open("rb") as log_file:
                log_file.seek(offset)
                output = log_file.read().decode(errors="replace")
            match = _LISTENING.search(output)
            if match and _answers(int(match.group(2))):
                return int(match.group(2))
            if process.poll() is not None:
                raise EmbeddedDatabaseError(
                    f"the embedded database exited with status {process.returncode}; "
                    f"its last output:\n{output[-2000:]}"
                )
            time.sleep(0.05)
        raise EmbeddedDatabaseError(
            f"the embedded database did not start within {self.startup_timeout:.0f}s; "
            f"see {log_path}"
        )

    def supervise(self) -> None:
        """Until stop(): when the database dies, reap it and start it again on the same port
        (clients keep their address), after a delay that grows while it keeps dying."""
        self._supervisor = threading.Thread(
            target=self._restart_when_it_dies, name="embedded-database", daemon=True
        )
        self._supervisor.start()

    def _restart_when_it_dies(self) -> None:
        executable = _executable()
        delay = RESTART_DELAY_FIRST_SECONDS
        while (process := self.process) is not None:
            started = time.monotonic()
            status = process.wait()  # reaps it: no zombie
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= RAN_LONG_ENOUGH_SECONDS:
                delay = RESTART_DELAY_FIRST_SECONDS
            while True:
                log.error(
                    "the embedded database stopped (status %s); starting it again in %.0fs",
                    status,
                    delay,
                )
                if self._stopping.wait(delay):
                    return
                try:
                    with self._lock:
                        if self._stopping.is_set():
                            return
                        self._launch(executable, self.port or self.requested_port)
                except (EmbeddedDatabaseError, OSError) as exc:
                    log.error("the embedded database did not start again: %s", exc)
                    status = "not started"
                    continue
                finally:
                    delay = min(delay * 2, RESTART_DELAY_MAX_SECONDS)
                log.warning("the embedded database runs again, on port %s", self.port)
                break

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the database cleanly (SIGTERM, then SIGKILL after `timeout`), and its
        supervision."""
        with self._lock:
            self._stopping.set()
            process, self.process = self.process, None
        if process is not None:
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / STATE_FILE).unlink()
            _end(process, timeout=timeout)
        supervisor = self._supervisor
        if supervisor is not None and supervisor is not threading.current_thread():
            supervisor.join(timeout)

    def __enter__(self) -> EmbeddedDatabase:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _end(process: subprocess.Popen[bytes], *, timeout: float) -> None:
    """SIGTERM, then SIGKILL after `timeout`; reaped either way."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
