"""`cityexchange import FILE`: load a case-study library from JSON Lines (docs/import.md),
every record checked first, each imported once, with progress on stderr."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from cityexchange.services.library_import import ImportSummary, import_library
from cityexchange.services.library_records import AdaptationCycle, Record, in_order, read
from cityexchange.services.store.database import Database
from cityexchange.settings import Settings

FILE_MAX_BYTES = 512 * 1024 * 1024
_BAR_WIDTH = 30


class ProgressBar:
    """One line redrawn in place on a terminal; on a pipe, a line every tenth of the way."""

    def __init__(self, total: int, out: TextIO) -> None:
        self._total = max(total, 1)
        self._out = out
        self._tty = out.isatty()
        self._counts = {"imported": 0, "skipped": 0, "failed": 0}
        self._done = 0
        self._next_tenth = 1
        self._drawn = 0.0

    def __call__(self, record: Record, outcome: str) -> None:
        self._done += 1
        self._counts[outcome] += 1
        if self._tty:
            now = time.monotonic()
            if now - self._drawn >= 0.1 or self._done == self._total:
                self._drawn = now
                self._out.write("\r" + self._line())
                self._out.flush()
        elif self._done * 10 >= self._next_tenth * self._total:
            self._next_tenth = self._done * 10 // self._total + 1
            self._out.write(self._line() + "\n")

    def _line(self) -> str:
        filled = _BAR_WIDTH * self._done // self._total
        c = self._counts
        return (
            f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {self._done}/{self._total}"
            f"  imported {c['imported']}  skipped {c['skipped']}  failed {c['failed']}"
        )

    def close(self) -> None:
        if self._tty and self._done:
            self._out.write("\n")


def _import(args: argparse.Namespace, settings: Settings) -> None:
    from cityexchange.cli import CommandError, print_json, with_db

    path = Path(args.file)
    try:
        if path.stat().st_size > FILE_MAX_BYTES:
            raise CommandError(f"{path} is over {FILE_MAX_BYTES // 2**20} MiB; split it")
        with path.open(encoding="utf-8") as lines:
            records, errors = read(lines)
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise CommandError(f"{path} is not UTF-8 (byte {exc.start})") from None
    for error in errors:
        print(f"{path}:{error}", file=sys.stderr)
    if errors and not args.keep_going:
        raise CommandError(
            f"{len(errors)} of {len(records) + len(errors)} records are invalid; nothing was "
            "imported (fix them, or --keep-going to import the valid ones)"
        )
    try:
        ordered = in_order(records)
    except AdaptationCycle as cycle:
        raise CommandError(f"{path}:{cycle.error}; nothing was imported") from None
    if args.check:
        print_json({"valid": len(ordered), "invalid": len(errors)})
        return
    bar = ProgressBar(len(ordered), sys.stderr)

    async def work(db: Database) -> ImportSummary:
        return await import_library(db=db, records=ordered, progress=bar)

    try:
        summary = with_db(settings, Path(args.data_dir), work)
    finally:
        bar.close()
    for error in summary.errors:
        print(f"{path}:{error}", file=sys.stderr)
    print_json(
        {
            "imported": summary.imported,
            "skipped": summary.skipped,
            "failed": len(summary.errors),
            "invalid": len(errors),
        }
    )
    if summary.errors:
        raise CommandError(
            f"{len(summary.errors)} records failed; the others are in (run again to retry them)"
        )


def add_parsers(commands: Any, data_dir_option: Callable[[argparse.ArgumentParser], None]) -> None:
    """`import`."""
    command = commands.add_parser(
        "import",
        help="import a case-study library from JSON Lines (docs/import.md): cities, problems "
        "and solutions, each once by its externalId, so an interrupted import can run again",
    )
    command.add_argument("file", help="the .jsonl file")
    command.add_argument(
        "--check",
        action="store_true",
        help="only check the records and print the counts; write nothing",
    )
    command.add_argument(
        "--keep-going",
        action="store_true",
        help="import the valid records even when some are invalid (they are listed on stderr)",
    )
    command.set_defaults(run=_import)
    data_dir_option(command)
