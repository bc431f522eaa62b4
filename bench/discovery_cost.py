"""Benchmark: CPU, latency and database round trips per `search`, `City.peers` and
`Problem.suggestedSolutions` call as the corpus grows (docs/performance.md, "Discovery at 1k,
10k and 100k solutions").

For each size a fresh embedded database is seeded with generated cities, problems and
solutions and indexed in bulk (bench/discovery_corpus.py); the real app then answers over
httpx's ASGITransport in this process. Per call: API CPU (`time.process_time()`, this process:
the app, PyMongo and the in-process client), the database's CPU (its process, from /proc),
wall latency, and round trips (`cityexchange_db_commands_total{origin="request"}`). The cases
are interleaved call by call, so a burst of load from other work on the machine falls on all
of them; each prints min / median / max over its calls. At each size it also prints the plan
of the postings query (`explain`) for the common word's term.

    .venv/bin/python -m bench.discovery_cost [--sizes 1000,2000,5000,10000,20000]
        [--calls 15] [--cities 200] [--json results.json]

One database grows through the sizes (seeding dominates: about 70-115 ms per solution on two
shared cores, so 20,000 take 25-40 minutes and 100,000 two to three hours).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from pymongo import monitoring

from bench import query_plans
from bench.discovery_corpus import Corpus, SeedTimes, seed
from bench.procs import cpu_seconds
from cityexchange.app import create_app
from cityexchange.auth.realms import RealmRegistry
from cityexchange.auth.tokens import issue_access_token
from cityexchange.embedded import EmbeddedDatabase
from cityexchange.resources import open_database
from cityexchange.services import cities, search, text
from cityexchange.services.ids import global_id
from cityexchange.services.store import search_index
from cityexchange.services.store.database import Database, Document
from cityexchange.services.store.indexes import ensure_indexes
from cityexchange.services.text import Language
from cityexchange.settings import Secret, Settings

SEARCH = """query Search($q: String!, $filter: SearchFilter, $first: Int!) {
  search(query: $q, filter: $filter, first: $first) { totalCount edges { score
    highlights { field snippet }
    node { __typename ... on Problem { id title city { slug } }
      ... on Solution { id title city { slug } } ... on Comment { id } } } } }"""
PEERS = """query Peers($slug: String!, $first: Int!) { city(slug: $slug) { peers(first: $first) {
  totalCount edges { score reasons { code text } node { slug name } } } } }"""
SUGGESTED = """query Suggested($id: ID!, $first: Int!) { node(id: $id) { ... on Problem {
  suggestedSolutions(first: $first) { edges { score reasons { code text }
    node { id title city { slug } } } } } } }"""
PAGE_SIZES = (5, 50)
SEEDING_TIMEOUT_MS = 600_000
REQUEST_COMMANDS = re.compile(
    r'^cityexchange_db_commands_total\{[^}]*origin="request"[^}]*\} (\S+)$', re.MULTILINE
)
FILTER = {
    "kinds": ["SOLUTION"],
    "hazards": ["FLOOD", "HEAT_WAVE", "STORM"],
    "solutionStatus": ["IMPLEMENTED", "SCALED"],
}


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    query: str
    variables: dict[str, Any]


def name(case: Case) -> str:
    return f"{case.name} first={case.variables['first']}"


@dataclass(slots=True)
class Samples:
    api_cpu_ms: list[float] = field(default_factory=list[float])
    wall_ms: list[float] = field(default_factory=list[float])
    db_cpu_ms: list[float] = field(default_factory=list[float])
    round_trips: list[float] = field(default_factory=list[float])
    errors: list[str] = field(default_factory=list[str])

    def summary(self) -> dict[str, Any]:
        def spread(values: list[float]) -> list[float]:
            return [round(v, 2) for v in (min(values), statistics.median(values), max(values))]

        return {
            "api_cpu_ms": spread(self.api_cpu_ms),
            "wall_ms": spread(self.wall_ms),
            # /proc counts in clock ticks (10 ms): the mean over the calls, not one call's.
            "db_cpu_ms_mean": round(statistics.fmean(self.db_cpu_ms), 2),
            "round_trips": sorted(set(self.round_trips)),
            "errors": dict(Counter(self.errors)),
        }


def content_words(language: Language, words: list[str]) -> list[str]:
    """The vocabulary's words that are not stop words, commonest first (longer than 3)."""
    return [w for w in words if len(w) > 3 and text.stem_word(w, language)]


def cases(corpus: Corpus, asking: str) -> list[Case]:
    """Every measured call, at both page sizes."""
    english = content_words(Language.EN, corpus.words[Language.EN].words)
    common, rare = english[0], english[2_000]
    three = " ".join((english[1], english[20], english[200]))
    made: list[Case] = []
    for first in PAGE_SIZES:
        made += [
            Case(f"search common '{common}'", SEARCH, {"q": common, "first": first}),
            Case(f"search rare '{rare}'", SEARCH, {"q": rare, "first": first}),
            Case(f"search 3 words '{three}'", SEARCH, {"q": three, "first": first}),
            Case(
                f"search filtered '{common}'",
                SEARCH,
                {"q": common, "filter": FILTER, "first": first},
            ),
            Case(
                "search filtered 3 words",
                SEARCH,
                {"q": three, "filter": FILTER, "first": first},
            ),
            Case("City.peers", PEERS, {"slug": "city-000", "first": first}),
            Case("Problem.suggestedSolutions", SUGGESTED, {"id": asking, "first": first}),
        ]
    return made


async def term_counts(db: Database, words: list[str]) -> dict[str, int]:
    """Document frequency of each word's English term."""
    terms = {w: f"en:{text.stem_word(w, Language.EN)}" for w in words}
    stats = await search_index.statistics(db, set(terms.values()))
    return {w: stats.terms[t].df if t in stats.terms else 0 for w, t in terms.items()}


async def explain(db: Database, word: str) -> dict[str, Any]:
    """The postings query of `word`'s term as search runs it, and without the threshold."""
    term = f"en:{text.stem_word(word, Language.EN)}"
    stats = await search_index.statistics(db, [term])
    # The very threshold the search computes: the bench explains the query search sends.
    at_least = search._threshold(stats.terms[term], search.CANDIDATES_PER_TERM)  # pyright: ignore[reportPrivateUsage]
    out: dict[str, Any] = {"term": term, "df": stats.terms[term].df}
    for label, bound in (("threshold", at_least), ("all postings", 0)):
        plan = await search_index.explain_postings(db, term, at_least=bound)
        run: Document = plan.get("executionStats", {})
        out[label] = {
            "at_least": bound,
            "winning_plan": query_plans.stages(plan["queryPlanner"]["winningPlan"]),
            "returned": run.get("nReturned"),
            "keys_examined": run.get("totalKeysExamined"),
            "docs_examined": run.get("totalDocsExamined"),
            "ms": run.get("executionTimeMillis"),
        }
    return out


async def measure(
    settings: Settings,
    db: Database,
    db_pid: int,
    measured: list[Case],
    calls: int,
    recorder: query_plans.Recorder,
) -> tuple[dict[str, Samples], dict[str, query_plans.CallPlans]]:
    """The samples of every case, and the plans of every read of one call of each."""
    registry = RealmRegistry(db, settings.public_url)
    issued = await issue_access_token(
        registry,
        registry.realm("city-001"),
        subject="bench",
        scopes=["read"],
        client_id="bench",
        audience=settings.audience,
        ttl_seconds=3_600,
    )
    headers = {"Authorization": f"Bearer {issued.access_token}"}
    samples = {name(c): Samples() for c in measured}
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://bench", timeout=120
        ) as http,
    ):

        async def call(case: Case) -> str | None:
            """The call's first error code (a timeout on a loaded machine), None if none."""
            body = {"query": case.query, "variables": case.variables}
            response = await http.post("/graphql", json=body, headers=headers)
            assert response.status_code == 200, response.text
            errors: list[Document] = response.json().get("errors") or []
            if not errors:
                return None
            print(f"  {name(case)}: {errors[0]}", file=sys.stderr, flush=True)
            return str(errors[0].get("extensions", {}).get("code", errors[0].get("message")))

        async def commands() -> float:
            metrics = (await http.get("/metrics")).text
            return sum(float(v) for v in REQUEST_COMMANDS.findall(metrics))

        plans: dict[str, query_plans.CallPlans] = {}
        for case in measured:  # warm: caches, stemmers, the loaders' first imports
            await call(case)
            recorder.commands.clear()
            recorder.recording = True
            await call(case)
            recorder.recording = False
            plans[name(case)] = await query_plans.explain_all(db, recorder.commands)
        for _ in range(calls):
            for case in measured:
                sample = samples[name(case)]
                before = await commands()
                db_cpu, cpu, wall = cpu_seconds(db_pid), time.process_time(), time.perf_counter()
                error = await call(case)
                sample.wall_ms.append((time.perf_counter() - wall) * 1000)
                sample.api_cpu_ms.append((time.process_time() - cpu) * 1000)
                sample.db_cpu_ms.append((cpu_seconds(db_pid) - db_cpu) * 1000)
                sample.round_trips.append(await commands() - before)
                if error is not None:
                    sample.errors.append(error)
    return samples, plans


def _progress(start: int, total: int) -> Any:
    started = time.perf_counter()

    def report(done: int, times: SeedTimes) -> None:
        elapsed = time.perf_counter() - started
        eta = elapsed / done * (total - start - done)
        print(
            f"  seeded {start + done:,}/{total:,} solutions in {elapsed:.0f} s "
            f"({times.postings:,} postings; about {eta:.0f} s left)",
            file=sys.stderr,
            flush=True,
        )

    return report


async def run(
    uri: str, db_pid: int, sizes: list[int], city_count: int, calls: int, out: Path | None
) -> list[Document]:
    """One database grown through `sizes`: seeded to the first and measured, seeded on to
    the next (the same generator continues, so each size's corpus is what a fresh database
    of that size would hold) and measured again."""
    recorder = query_plans.Recorder()
    monitoring.register(recorder)  # before the clients are made: they copy the listeners
    # Rate limits above what the bench spends: they are measured by bench/limits.py.
    settings = Settings(mongodb_uri=Secret(uri), db_name="bench", rate_limit_points=10_000_000)
    corpus = Corpus(city_count=city_count)
    results: list[Document] = []
    # An index transaction of a batch outlasts bench/seeding.py's 60 s on a loaded machine.
    async with open_database(replace(settings, operation_timeout_ms=SEEDING_TIMEOUT_MS)) as db:
        await ensure_indexes(db)
        for city in corpus.city_list:
            await cities.add_city(db=db, city=city)
        seeded = 0
        for size in sizes:
            print(f"# {size:,} solutions: seeding", file=sys.stderr, flush=True)
            started, db_cpu = time.perf_counter(), cpu_seconds(db_pid)
            times = await seed(db, corpus, size - seeded, progress=_progress(seeded, size))
            seeding = {
                "added_solutions": size - seeded,
                "wall_s": round(time.perf_counter() - started, 1),
                "database_cpu_s": round(cpu_seconds(db_pid) - db_cpu, 1),
                "generate_s": round(times.generate, 1),
                "analyse_s": round(times.analyse, 1),
                "write_s": round(times.write, 1),
                "postings_added": times.postings,
            }
            seeded = size
            asking = global_id("Problem", corpus.first_problems[0].id)
            measured = cases(corpus, asking)
            english = content_words(Language.EN, corpus.words[Language.EN].words)
            words = [english[0], english[1], english[20], english[200], english[2_000]]
            result: Document = {
                "size": size,
                "documents": {
                    "problems": await db.problems.count_documents({}),
                    "solutions": await db.solutions.count_documents({}),
                    "postings": await db.db[search_index.POSTINGS].estimated_document_count(),
                    "terms": await db.db[search_index.TERMS].estimated_document_count(),
                },
                "seeding": seeding,
                "document_frequency": await term_counts(db, words),
                "explain": await explain(db, english[0]),
            }
            samples, plans = await measure(settings, db, db_pid, measured, calls, recorder)
            result["calls"] = {n: s.summary() for n, s in samples.items()}
            result["plans"] = {n: p.summary() for n, p in plans.items()}
            results.append(result)
            report(result)
            if out is not None:
                await asyncio.to_thread(out.write_text, json.dumps(results, indent=1))
    return results


def growth(results: list[Document]) -> list[str]:
    """Median wall and API CPU of each case at each size over the smallest size's."""
    if len(results) < 2:
        return []
    base = results[0]
    lines: list[str] = []
    for name in base["calls"]:
        parts: list[str] = []
        for other in results[1:]:
            x = other["size"] / base["size"]
            wall = other["calls"][name]["wall_ms"][1] / base["calls"][name]["wall_ms"][1]
            cpu = other["calls"][name]["api_cpu_ms"][1] / base["calls"][name]["api_cpu_ms"][1]
            parts.append(f"size x{x:g}: wall x{wall:.2f}, API CPU x{cpu:.2f}")
        lines.append(f"{name}: " + "; ".join(parts))
    return lines


def report(result: Document) -> None:
    print(f"\n## {result['size']:,} solutions: {json.dumps(result['documents'])}")
    print(f"seeding: {json.dumps(result['seeding'])}")
    print(f"document frequency of the query words: {json.dumps(result['document_frequency'])}")
    print(f"explain: {json.dumps(result['explain'])}")
    print("| call | round trips | API CPU ms | wall ms | database CPU ms (mean) |")
    print("|---|---|---|---|---|")

    def spread(values: list[float]) -> str:
        return " / ".join(f"{v:.1f}" for v in values)

    for call, s in result["calls"].items():
        print(
            f"| {call} | {', '.join(f'{r:g}' for r in s['round_trips'])} "
            f"| {spread(s['api_cpu_ms'])} | {spread(s['wall_ms'])} | {s['db_cpu_ms_mean']:.1f} |"
        )
    print("plans of one call's reads:")
    for call, p in result["plans"].items():
        print(f"  {call}: {json.dumps(p)}")


@contextmanager
def embedded(data: Path, cache_size: str) -> Generator[EmbeddedDatabase]:
    """The embedded database with a storage cache of `cache_size`. SecantusDB reads
    ./secantusd.toml from its working directory, which it inherits from this process: start
    it from `data`. With its default 1G cache, the commit of a bulk index transaction
    wedged at about 8,300 solutions (1.1 M postings, 0.9 GB on disk), in two runs of two."""
    (data / "secantusd.toml").write_text(f'[storage]\ncache_size = "{cache_size}"\n')
    here = Path.cwd()
    os.chdir(data)
    database = EmbeddedDatabase(data)
    try:
        database.start()
    finally:
        os.chdir(here)
    try:
        yield database
    finally:
        database.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,2000,5000,10000,20000")
    parser.add_argument("--calls", type=int, default=15)
    parser.add_argument("--cities", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--cache-size", default="4G", help="SecantusDB's storage cache (its own default: 1G)"
    )
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory() as data, embedded(Path(data), args.cache_size) as database:
        assert database.process is not None
        pid = database.process.pid
        results = asyncio.run(run(database.uri, pid, sizes, args.cities, args.calls, args.json))
    print("\n## growth of the medians")
    for line in growth(results):
        print(line)


if __name__ == "__main__":
    main()
