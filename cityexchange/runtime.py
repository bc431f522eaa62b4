"""Process-wide tuning of a serving process (not of an app embedded in tests).

The cyclic garbage collector's default first threshold (700 allocations) runs a collection
every few hundred objects; with thousands of sockets open each full collection walks all of
them, about once per event (docs/performance.md, "Side by side with hand-written code"). A
serving process moves what it built at start-up out of the collector's sight (`gc.freeze`)
and collects the youngest generation every 20,000 allocations instead. Cycles are still
collected; memory between collections grows by at most that many young objects.
"""

from __future__ import annotations

import gc

YOUNGEST_THRESHOLD = 20_000


def tune_collector() -> None:
    """Call once, after the app is built and before it serves."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNGEST_THRESHOLD, middle, oldest)
