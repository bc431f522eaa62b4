"""The document gate and the rate limiter, measured (docs/performance.md, "Limits").

1. Analysis: API CPU per request of a document whose fragment F_n spreads F_(n-1) twice, at
   16, 20, 22 and 30 levels, sent without a token, beside `{ __typename }` in the same run.
2. Memory: peak RSS of the service (its own process, uvicorn) while 8 of the largest
   responses the cost limit admits are requested at once, for ASCII and for two-byte text.
3. Rate limiter: CPU of one charge, against the API CPU of the cheapest query.

Usage: .venv/bin/python bench/limits.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.seeding import seeding_database
from cityexchange.app import create_app
from cityexchange.auth.realms import RealmRegistry
from cityexchange.auth.tokens import issue_access_token
from cityexchange.embedded import EmbeddedDatabase
from cityexchange.services import cities, problems
from cityexchange.services.clock import now
from cityexchange.services.models import City
from cityexchange.services.principal import Principal
from cityexchange.services.problems import ProblemDraft
from cityexchange.services.rate_limits import Budget, RateLimiter, Resource
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Hazard
from cityexchange.settings import Secret, Settings

DB_NAME = "bench_limits"
# The most body text the cost limit admits (190 bodies): over the response cap, refused.
REFUSED = (
    "{ a: problems(first: 100) { edges { node { body } } } "
    "b: problems(first: 90) { edges { node { body } } } }"
)
# 160 bodies of 50,000 ASCII characters: 8.0 MB, just under the cap, answered.
ANSWERED = (
    "{ a: problems(first: 100) { edges { node { body } } } "
    "b: problems(first: 60) { edges { node { body } } } }"
)


def doubling(levels: int) -> str:
    fragments = ["fragment F0 on Query { __typename }"] + [
        f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)
    ]
    return f"query {{ ...F{levels} }}\n" + "\n".join(fragments)


def spread(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


async def analysis(settings: Settings, rounds: int, requests: int) -> dict[str, object]:
    """API CPU (ms) per request for each document, rounds interleaved."""
    documents = {"{ __typename }": "{ __typename }"}
    documents |= {f"doubling {n}": doubling(n) for n in (16, 20, 22, 30)}
    cpu: dict[str, list[float]] = {name: [] for name in documents}
    async with (
        LifespanManager(create_app(settings)) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://bench"
        ) as http,
    ):
        for _ in range(rounds):
            for name, query in documents.items():
                started = time.process_time()
                for _ in range(requests):
                    await http.post("/graphql", json={"query": query})
                cpu[name].append((time.process_time() - started) / requests * 1000)
    baseline = statistics.median(cpu["{ __typename }"])
    return {
        name: {"api_cpu_ms": spread(values), "ratio": spread([v / baseline for v in values])}
        for name, values in cpu.items()
    }


def limiter_charge_us(charges: int = 200_000) -> float:
    limiter = RateLimiter({Resource.GRAPHQL: Budget(10**12, 3600)})
    keys = [f"city{i % 50}:client{i % 7}" for i in range(1000)]
    started = time.process_time()
    for i in range(charges):
        limiter.charge(Resource.GRAPHQL, keys[i % 1000], 1)
    return (time.process_time() - started) / charges * 1e6


async def cheapest_query_ms(settings: Settings, token: str, requests: int) -> float:
    async with (
        LifespanManager(create_app(settings)) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://bench"
        ) as http,
    ):
        headers = {"Authorization": f"Bearer {token}"}
        body = {"query": "{ viewer { subject } }"}
        for _ in range(20):
            await http.post("/graphql", json=body, headers=headers)
        started = time.process_time()
        for _ in range(requests):
            await http.post("/graphql", json=body, headers=headers)
        return (time.process_time() - started) / requests * 1000


def _error_code(body: Any) -> str:
    """The first error's `extensions.code`; "None" when the query was answered."""
    errors: list[dict[str, Any]] = body.get("errors") or [{}]
    return str(errors[0].get("extensions", {}).get("code"))


def _peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert found is not None
    return int(found.group(1)) / 1024


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert found is not None
    return int(found.group(1)) / 1024


async def memory(uri: str, token: str, db_name: str, query: str) -> dict[str, object]:
    """Peak RSS of a separate service process under 8 parallel worst-case queries."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    env = {**os.environ, "CITYEXCHANGE_MONGODB_URI": uri, "CITYEXCHANGE_DB": db_name}
    env["CITYEXCHANGE_RATE_LIMIT_POINTS"] = "10000000"
    env["CITYEXCHANGE_LOG_LEVEL"] = "WARNING"
    command = [sys.executable, "-m", "uvicorn", "--factory", "cityexchange.app:app_from_env"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--log-level", "warning"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,  # its request log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            async with asyncio.timeout(60):
                while True:
                    try:
                        if (await http.get("/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.2)
            headers = {"Authorization": f"Bearer {token}"}
            small = {"query": "{ problems(first: 1) { edges { node { title } } } }"}
            await http.post("/graphql", json=small, headers=headers)
            idle = _rss_mib(server.pid)
            answers = await asyncio.gather(
                *(http.post("/graphql", json={"query": query}, headers=headers) for _ in range(8))
            )
            codes = sorted({_error_code(r.json()) for r in answers})
            await asyncio.sleep(1)
            return {
                "rss_before_mib": round(idle, 1),
                "peak_rss_mib": round(_peak_rss_mib(server.pid), 1),
                "rss_after_mib": round(_rss_mib(server.pid), 1),
                "answers": codes,
                "response_bytes": max(len(r.content) for r in answers),
            }
    finally:
        server.terminate()
        server.wait(30)


async def seed(db: Database, text: Callable[[int], str], count: int) -> None:
    actor = Principal("rotterdam", "bench", frozenset({"read", "publish"}), "bench")
    for i in range(count):
        draft = ProblemDraft(
            title=f"Problem {i}",
            summary="A long case study.",
            body=text(i),
            hazards=(Hazard.FLOOD,),
        )
        await problems.publish(db=db, actor=actor, draft=draft)


async def run(uri: str, rounds: int) -> dict[str, object]:
    results: dict[str, object] = {}
    # Budgets out of the way: the analysis is measured, not the throttle's refusals.
    settings = Settings(
        mongodb_uri=Secret(uri),
        db_name=DB_NAME,
        rate_limit_points=10_000_000,
        anonymous_per_minute=10_000_000,
    )
    async with seeding_database(settings) as db:
        await cities.add_city(
            db=db, city=City(slug="rotterdam", name="Rotterdam", country="NL", created_at=now())
        )
        registry = RealmRegistry(db, settings.public_url)
        issued = await issue_access_token(
            registry,
            registry.realm("rotterdam"),
            subject="bench",
            scopes=["read"],
            client_id="bench",
            audience=settings.audience,
            ttl_seconds=3600,
        )
        results["analysis"] = await analysis(settings, rounds, requests=40)
        charge = limiter_charge_us()
        cheapest = [
            await cheapest_query_ms(settings, issued.access_token, 300) for _ in range(rounds)
        ]
        results["rate_limiter"] = {
            "charge_us": round(charge, 2),
            "cheapest_query_api_cpu_ms": spread(cheapest),
            "share_of_cheapest_query_percent": round(charge / 1000 / min(cheapest) * 100, 2),
        }
        await seed(db, lambda i: "x" * 50_000, 100)
        token = issued.access_token
        results["memory_ascii_answered"] = await memory(uri, token, DB_NAME, ANSWERED)
        results["memory_ascii_refused"] = await memory(uri, token, DB_NAME, REFUSED)
        await db.problems.update_many({}, {"$set": {"body": "é" * 50_000}})
        results["memory_two_byte_refused"] = await memory(uri, token, DB_NAME, REFUSED)
        await db.client.drop_database(DB_NAME)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data, EmbeddedDatabase(Path(data)) as database:
        results = asyncio.run(run(database.uri, args.rounds))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
