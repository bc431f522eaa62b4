"""The embedded database: SecantusDB run as a child process on a free loopback port.

SecantusDB is GPL-2.0, so it is never imported: it is started as a separate program, found
on PATH or beside this interpreter, from the optional `embedded` extra.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

EXECUTABLE = "secantusd-py"
INSTALL_HINT = "pip install -e '.[embedded]'"
STATE_FILE = "embedded.json"
_LISTENING = re.compile(r"listening on ([\d.]+):(\d+)")


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(data_dir: Path) -> RunningDatabase | None:
    """The embedded database another process runs on `data_dir`, if one answers."""
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
        db = RunningDatabase(pid=int(state["pid"]), port=int(state["port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return db if _alive(db.pid) and _answers(db.port) else None


class EmbeddedDatabase:
    """Start, reach and stop SecantusDB with its data under `data_dir`."""

    def __init__(self, data_dir: Path, *, port: int = 0, startup_timeout: float = 60.0) -> None:
        self.data_dir = data_dir
        self.requested_port = port
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

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
        storage = self.data_dir / "db"
        storage.mkdir(parents=True, exist_ok=True)
        log_path = self.data_dir / "secantusd.log"
        with log_path.open("ab") as log_file:
            log_start = log_file.seek(0, os.SEEK_END)  # read only this run's output
            self.process = subprocess.Popen(  # noqa: S603 - our own child, fixed arguments
                [
                    executable,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.requested_port),
                    "--storage-path",
                    str(storage),
                    "--log-level",
                    "INFO",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us; we stop it after the app
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        self.port = self._wait_for_port(log_path, log_start)
        state = self.data_dir / STATE_FILE
        temporary = state.with_suffix(".tmp")
        temporary.write_text(json.dumps({"pid": self.process.pid, "port": self.port}))
        temporary.replace(state)
        return self.uri

    def _wait_for_port(self, log_path: Path, offset: int) -> int:
        deadline = time.monotonic() + self.startup_timeout
        process = self.process
        assert process is not None
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
        self.stop()
        raise EmbeddedDatabaseError(
            f"the embedded database did not start within {self.startup_timeout:.0f}s; "
            f"see {log_path}"
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the database cleanly (SIGTERM, then SIGKILL after `timeout`)."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / STATE_FILE).unlink()
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> EmbeddedDatabase:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
