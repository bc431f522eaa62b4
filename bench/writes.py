"""Benchmark: writes per second through the real HTTP app at concurrency 1, 10 and 50.

Every write (`addComment` on one problem) takes the next number of the event log's counter
inside its transaction, so writes serialize on that one document; this measures how far the
service gets before they queue (writes/s), whether any is reported failed, and checks that the
events came out with consecutive numbers. The same writes are then made through the service
layer alone (no HTTP, GraphQL or token checks), which is closer to the database's own ceiling
for this design. API-process CPU per write is reported too (the database is another process).

The embedded database runs with the same options as `cityexchange serve` (every commit
fsynced); `--no-sync` starts it without per-commit fsync, to measure what durability costs.

    .venv/bin/python bench/writes.py [--rounds 3] [--writes 150] [--no-sync]

SecantusDB is 10-40x slower than mongod and shares the machine's cores with the API process
here: read the numbers as the shape of the curve and as a floor, not as production capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.seeding import seeding_database
from cityexchange.app import create_app
from cityexchange.auth.realms import RealmRegistry
from cityexchange.auth.tokens import issue_access_token
from cityexchange.embedded import EmbeddedDatabase
from cityexchange.schema.relay import to_global_id
from cityexchange.services import cities, comments, problems
from cityexchange.services.clock import now
from cityexchange.services.models import City
from cityexchange.services.principal import Principal
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Hazard
from cityexchange.settings import Secret, Settings

ADD_COMMENT = """mutation Add($input: AddCommentInput!) { addComment(input: $input) {
  comment { id } userErrors { code } } }"""
CONCURRENCY = (1, 10, 50)


async def _burst(
    http: httpx.AsyncClient, token: str, subject: str, *, writes: int, width: int
) -> tuple[float, int]:
    """Send `writes` comments, `width` at a time; return (seconds, failures)."""
    gate = asyncio.Semaphore(width)
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        async with gate:
            response = await http.post(
                "/graphql",
                json={
                    "query": ADD_COMMENT,
                    "variables": {"input": {"subjectId": subject, "body": f"c{i}"}},
                },
                headers={"Authorization": f"Bearer {token}"},
            )
            body = response.json()
            if (
                response.status_code != 200
                or body.get("errors")
                or not body["data"]["addComment"]["comment"]
            ):
                failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(writes)))
    return time.perf_counter() - started, failures


async def _service_burst(
    db: Database, actor: Principal, subject: str, *, writes: int, width: int
) -> float:
    """Writes per second of `comments.add` called directly, `width` at a time."""
    gate = asyncio.Semaphore(width)

    async def one(i: int) -> None:
        async with gate:
            await comments.add(
                db=db,
                actor=actor,
                subject_kind="Problem",
                subject_id=subject,
                parent_id=None,
                body=f"s{i}",
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(writes)))
    return writes / (time.perf_counter() - started)


async def run(uri: str, *, rounds: int, writes: int) -> dict[str, object]:
    settings = Settings(  # rate limits above what the bench spends: they are not measured
        mongodb_uri=Secret(uri),
        db_name="bench_writes",
        rate_limit_points=10_000_000,
        comments_per_hour=1_000_000,
    )
    async with seeding_database(settings) as db:
        await cities.add_city(
            db=db, city=City(slug="rotterdam", name="Rotterdam", country="NL", created_at=now())
        )
        actor = Principal("rotterdam", "bench", frozenset({"read", "publish", "comment"}), "bench")
        problem = await problems.publish(
            db=db,
            actor=actor,
            draft=problems.ProblemDraft(title="Bench", summary="s", hazards=[Hazard.FLOOD]),
        )
        registry = RealmRegistry(db, settings.public_url)
        issued = await issue_access_token(
            registry,
            registry.realm("rotterdam"),
            subject="bench",
            scopes=["read", "comment"],
            client_id="bench",
            audience=settings.audience,
            ttl_seconds=3600,
        )
        subject = to_global_id("Problem", problem.id)
        results: dict[str, object] = {}
        app = create_app(settings)
        async with (
            LifespanManager(app) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app), base_url="http://bench"
            ) as http,
        ):
            await _burst(http, issued.access_token, subject, writes=5, width=1)  # warm up
            for width in CONCURRENCY:
                rates: list[float] = []
                cpu_ms: list[float] = []
                failed = 0
                for _ in range(rounds):
                    cpu = time.process_time()  # the API process only: the database is another
                    seconds, failures = await _burst(
                        http, issued.access_token, subject, writes=writes, width=width
                    )
                    cpu_ms.append((time.process_time() - cpu) / writes * 1000)
                    rates.append((writes - failures) / seconds)
                    failed += failures
                results[f"concurrency={width}"] = {
                    "writes_per_second": {
                        "min": round(min(rates), 1),
                        "median": round(statistics.median(rates), 1),
                        "max": round(max(rates), 1),
                    },
                    "api_cpu_ms_per_write": round(statistics.median(cpu_ms), 1),
                    "failed": failed,
                    "of": writes * rounds,
                }
        for width in CONCURRENCY:  # the same writes without HTTP, GraphQL and tokens
            rates = [
                await _service_burst(db, actor, problem.id, writes=writes, width=width)
                for _ in range(rounds)
            ]
            results[f"service_layer_concurrency={width}"] = {
                "writes_per_second": {
                    "min": round(min(rates), 1),
                    "median": round(statistics.median(rates), 1),
                    "max": round(max(rates), 1),
                }
            }
        numbers = [doc["_id"] async for doc in db.events.find({}, {"_id": 1}).sort("_id", 1)]
        results["events_consecutive"] = numbers == list(range(1, len(numbers) + 1))
        results["comments_stored"] = await db.comments.count_documents({})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writes", type=int, default=150, help="writes per round")
    parser.add_argument("--no-sync", action="store_true", help="no fsync per commit")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as data,
        EmbeddedDatabase(Path(data), sync_on_commit=not args.no_sync) as database,
    ):
        results = asyncio.run(run(database.uri, rounds=args.rounds, writes=args.writes))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
