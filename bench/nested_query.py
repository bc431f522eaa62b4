"""Benchmark: database round trips and API-process CPU per request for the nested query.

Wall time against the embedded database says little (it is 10-40x slower than mongod), so
this measures what the service controls: how many commands it sends per request, and how
much CPU the API process spends (the database runs in its own process, so process_time()
counts only ours).

    .venv/bin/python bench/nested_query.py [--problems 60] [--requests 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
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
from cityexchange.services import (
    cities,
    comments,
    problems,
    solutions,
)
from cityexchange.services.clock import now
from cityexchange.services.models import City
from cityexchange.services.principal import Principal
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Hazard
from cityexchange.settings import Secret, Settings

QUERY = """query Nested($first: Int!) { problems(first: $first) { edges { node {
  title city { name } solutions(first: 5) { edges { node { title city { name }
  comments(first: 5) { edges { node { body author { name } city { name } } } } } } } } } } }"""
SCOPES = frozenset({"read", "publish", "comment"})


def _commands(metrics: str) -> float:
    return sum(
        float(v)
        for v in re.findall(
            r'^cityexchange_db_commands_total\{[^}]*origin="request"[^}]*\} (\S+)$',
            metrics,
            re.MULTILINE,
        )
    )


async def _seed(db: Database, count: int) -> None:
    for slug in ("rotterdam", "lagos"):
        await cities.add_city(
            db=db, city=City(slug=slug, name=slug.title(), country="NL", created_at=now())
        )
    owner = Principal("rotterdam", "bench", SCOPES, "bench")
    helper = Principal("lagos", "bench", SCOPES, "bench")
    for i in range(count):
        problem = await problems.publish(
            db=db,
            actor=owner,
            draft=problems.ProblemDraft(title=f"Problem {i}", summary="s", hazards=[Hazard.FLOOD]),
        )
        solution = await solutions.publish(
            db=db,
            actor=helper,
            draft=solutions.SolutionDraft(
                title=f"Solution {i}", summary="s", hazards=[Hazard.FLOOD], problem_ids=[problem.id]
            ),
        )
        await comments.add(
            db=db,
            actor=owner,
            subject_kind="Solution",
            subject_id=solution.id,
            parent_id=None,
            body=f"Comment {i}",
        )


async def run(uri: str, problem_count: int, requests: int) -> dict[str, object]:
    # Rate limits above what the bench spends: they are measured by bench/limits.py.
    settings = Settings(mongodb_uri=Secret(uri), db_name="bench", rate_limit_points=10_000_000)
    async with seeding_database(settings) as db:
        await _seed(db, problem_count)
        registry = RealmRegistry(db, settings.public_url)
        token = (
            await issue_access_token(
                registry,
                registry.realm("rotterdam"),
                subject="bench",
                scopes=["read"],
                client_id="bench",
                audience=settings.audience,
                ttl_seconds=900,
            )
        ).access_token
        results: dict[str, object] = {}
        app = create_app(settings)
        async with (
            LifespanManager(app) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app), base_url="http://bench"
            ) as http,
        ):
            headers = {"Authorization": f"Bearer {token}"}
            for first in (5, 50):
                body = {"query": QUERY, "variables": {"first": first}}
                for _ in range(2):  # warm the key cache and let start-up index creation finish
                    await http.post("/graphql", json=body, headers=headers)
                before = _commands((await http.get("/metrics")).text)
                cpu = time.process_time()
                for _ in range(requests):
                    response = await http.post("/graphql", json=body, headers=headers)
                    assert "errors" not in response.json(), response.text
                cpu = time.process_time() - cpu
                after = _commands((await http.get("/metrics")).text)
                results[f"first={first}"] = {
                    "round_trips_per_request": (after - before) / requests,
                    "api_cpu_ms_per_request": round(cpu / requests * 1000, 2),
                }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--problems", type=int, default=60)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data, EmbeddedDatabase(Path(data)) as database:
        results = asyncio.run(run(database.uri, args.problems, args.requests))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
