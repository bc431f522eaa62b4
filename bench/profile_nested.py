"""Profile the nested page of bench/edge.py in the API's code (cProfile, in this process).

The app runs here through httpx's ASGITransport, so the profile holds the service's work
(parse, validate, execute, resolve, serialise) and, apart, the client's; the database runs
in its own process. Prints the top functions by own CPU time and by cumulative CPU time.

    .venv/bin/python -m bench.profile_nested [--requests 40] [--top 30]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baseline import NESTED_PAGE
from bench.edge import PAGE_SIZES
from bench.edge_servers import DB_NAME, seed
from bench.seeding import seeding_database
from cityexchange.app import create_app
from cityexchange.embedded import EmbeddedDatabase
from cityexchange.settings import Secret, Settings


async def run(uri: str, requests: int) -> cProfile.Profile:
    settings = Settings(mongodb_uri=Secret(uri), db_name=DB_NAME, rate_limit_points=10_000_000)
    async with seeding_database(settings) as db:
        token = await seed(db)
    app = create_app(settings)
    # CPU time, not wall time: waits on the database and a busy machine's preemptions
    # would otherwise count as the functions' own time.
    profile = cProfile.Profile(time.process_time)
    body = {"query": NESTED_PAGE, "variables": PAGE_SIZES}
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://bench"
        ) as http,
    ):
        for _ in range(3):
            await http.post("/graphql", json=body, headers=headers)
        profile.enable()
        for _ in range(requests):
            response = await http.post("/graphql", json=body, headers=headers)
            assert "errors" not in response.json(), response.text
        profile.disable()
    return profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data, EmbeddedDatabase(Path(data)) as database:
        profile = asyncio.run(run(database.uri, args.requests))
    stats = pstats.Stats(profile).strip_dirs()
    print(f"# {args.requests} requests; per-request time = total / {args.requests}")
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
