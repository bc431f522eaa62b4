"""What the benchmarks read about server processes: CPU and memory from /proc (Linux only),
free ports, readiness, and percentiles."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path

import httpx

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stat(pid: int) -> list[str]:
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (uvicorn's workers, for example)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int(_stat(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def cpu_seconds(pid: int, *, tree: bool = False) -> float:
    """utime + stime of `pid` (and of its descendants with `tree`), from /proc/<pid>/stat."""
    total = 0
    for each in descendants(pid) if tree else [pid]:
        try:
            fields = _stat(each)
        except OSError:
            continue  # it ended between the listing and the read
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert found is not None
    return int(found.group(1)) * 1024


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def spread(values: Sequence[float], digits: int = 2) -> str:
    """min / median / max, the way the tables show them."""
    return " / ".join(
        f"{v:.{digits}f}" for v in (min(values), statistics.median(values), max(values))
    )


async def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    """Until `url` answers 200 (at most a minute); fail early if the process died."""
    async with httpx.AsyncClient() as http, asyncio.timeout(60):
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode} before {url}")
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
