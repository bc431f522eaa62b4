"""Benchmark: memory and outcome of a burst of parallel password sign-ins through the real app.

Each sign-in posts the realm's sign-in form with the right password from its own address (so
no throttle applies); the process's resident memory is sampled every 5 ms while the burst
runs. Before the hashing gate, 40 parallel scrypt sign-ins took the process from 16 to
1,252 MiB; now at most `HASHING_SLOTS` argon2id hashes (19 MiB each) run at once, and sign-ins
beyond the queue are answered 429 at once.

    .venv/bin/python bench/sign_in.py [--parallel 40] [--rounds 3]

Linux only (reads /proc/self/status).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cityexchange.app import create_app
from cityexchange.auth.passwords import HASHES, HASHING_QUEUE, HASHING_SLOTS
from cityexchange.embedded import EmbeddedDatabase
from cityexchange.resources import open_resources
from cityexchange.services import cities
from cityexchange.services.clock import now
from cityexchange.services.models import City
from cityexchange.settings import Secret, Settings
from tests.oauth_support import PASSWORD, hidden_fields, make_realm

_RSS = re.compile(r"^VmRSS:\s+(\d+) kB", re.MULTILINE)


def rss_mib() -> float:
    return int(_RSS.findall(Path("/proc/self/status").read_text())[0]) / 1024


async def burst(app: object, url: str, parallel: int) -> tuple[Counter[int], float, float]:
    """(statuses, peak RSS growth in MiB, seconds) of `parallel` simultaneous sign-ins."""
    addresses = [f"10.8.{i // 250}.{i % 250}" for i in range(parallel)]  # no throttle applies
    browsers = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 1)),  # type: ignore[arg-type]
            base_url="http://bench",
        )
        for address in addresses
    ]
    forms = [hidden_fields((await b.get(url)).text) for b in browsers]
    base = peak = rss_mib()
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mib())
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    start = time.perf_counter()
    responses = await asyncio.gather(
        *(
            b.post(url, data={**f, "username": "cro.bench", "password": PASSWORD})
            for b, f in zip(browsers, forms, strict=True)
        )
    )
    seconds = time.perf_counter() - start
    done.set()
    await sampler
    for b in browsers:
        await b.aclose()
    return Counter(r.status_code for r in responses), peak - base, seconds


async def main(parallel: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as data, EmbeddedDatabase(Path(data)) as database:
        settings = Settings(mongodb_uri=Secret(database.uri), db_name="bench_sign_in")
        # The set-up's and clean-up's clients wait longer than the app under test's.
        set_up = replace(settings, operation_timeout_ms=30_000)
        async with open_resources(set_up) as resources:
            db = resources.db
            await cities.add_city(
                db=db, city=City(slug="bench", name="Bench", country="NL", created_at=now())
            )
            realm = await make_realm(db, resources.oauth, settings, "bench")
            url = (
                f"/realms/bench/authorize?response_type=code&client_id={realm.mobile_id}"
                "&redirect_uri=org.rotterdam.app%3A%2Fcallback&scope=read&state=s"
                "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
            )
            app = create_app(settings)
            async with LifespanManager(app) as manager:
                print(f"slots {HASHING_SLOTS}, queue {HASHING_QUEUE}, {parallel} parallel sign-ins")
                for n in range(rounds):
                    HASHES.reset_peak()
                    statuses, growth, seconds = await burst(manager.app, url, parallel)
                    print(
                        f"round {n + 1}: {dict(sorted(statuses.items()))}, hashes at once "
                        f"{HASHES.peak}, RSS +{growth:.0f} MiB, {seconds:.2f} s"
                    )
            await db.client.drop_database(settings.db_name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--parallel", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.parallel, args.rounds))
