"""Benchmark: relevance of ranked search and `Problem.suggestedSolutions` against the labelled
set in tests/relevance/, beside a plain BM25 baseline over the same text.

The packaged case-study library is imported into a fresh embedded database; every labelled
query goes to `Query.search` (solutions only, first 10) and every labelled problem to
`Problem.suggestedSolutions(first: 10)`, through GraphQL over HTTP with the app in-process.
The baseline is hand-written here: one bag of words per solution (title, summary, body,
lessons, outcomes, tags), lower-cased and accent-folded, no stemming, no stop words, no field
weights, no taxonomy; BM25 with k1 = 1.2, b = 0.75. Precision@5 counts grade >= 1 as relevant;
nDCG@10 uses gains 2^grade - 1 and log2(rank + 1) discounts, ideal DCG from the labels.

    .venv/bin/python -m bench.discovery_quality [--queries] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import statistics
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from bench.seeding import seeding_database
from cityexchange.app import create_app
from cityexchange.auth.realms import RealmRegistry
from cityexchange.auth.tokens import issue_access_token
from cityexchange.demo import library
from cityexchange.embedded import EmbeddedDatabase
from cityexchange.services.ids import global_id, parse_global_id
from cityexchange.services.library_import import import_library
from cityexchange.services.library_records import ProblemRecord, SolutionRecord
from cityexchange.services.store import problems as problem_store
from cityexchange.services.store import solutions as solution_store
from cityexchange.settings import Secret, Settings

LABELS = Path(__file__).resolve().parent.parent / "tests" / "relevance"
DEPTH = 10  # results read per query: nDCG@10, and P@5 of the first five
K1, B = 1.2, 0.75
BOOTSTRAP = 10_000

SEARCH = """query Search($query: String!, $first: Int!) {
  search(query: $query, filter: {kinds: [SOLUTION]}, first: $first) {
    edges { node { __typename ... on Solution { id } } } } }"""
SUGGESTED = """query Suggested($id: ID!, $first: Int!) {
  node(id: $id) { ... on Problem { suggestedSolutions(first: $first) {
    edges { node { id } } } } } }"""


# ------------------------------------------------------------------ the baseline


def _fold(text: str) -> str:
    """Case-folded, accents of Latin letters removed; other scripts' marks kept (Tamil)."""
    out: list[str] = []
    for char in unicodedata.normalize("NFKD", text.casefold()):
        if unicodedata.combining(char) and out and out[-1].isascii():
            continue
        out.append(char)
    return unicodedata.normalize("NFC", "".join(out))


# Letters and digits, plus the Tamil block whole: `\w` alone cuts Tamil words at vowel signs.
_WORD = re.compile(r"(?:[^\W_]|[\u0B80-\u0BFF])+")


def bag(text: str) -> list[str]:
    return _WORD.findall(_fold(text))


def solution_text(record: SolutionRecord) -> str:
    d, t = record.details, record.details.transferability
    parts: list[str | None] = [record.title, record.summary, d.body]
    parts += [*d.success_factors, *d.limiting_factors]
    if t:
        parts += [*t.prerequisites, t.context, t.do_differently]
    parts += [f"{o.metric} {o.unit or ''} {o.note or ''}" for o in d.outcomes]
    parts += list(d.tags)
    return "\n".join(p for p in parts if p)


def problem_text(record: ProblemRecord) -> str:
    return "\n".join(p for p in (record.title, record.summary, record.body) if p)


@dataclass
class BM25:
    """Okapi BM25 over one bag of words per document."""

    docs: dict[str, Counter[str]]
    lengths: dict[str, int] = field(init=False)
    df: Counter[str] = field(init=False)
    average: float = field(init=False)

    def __post_init__(self) -> None:
        self.lengths = {d: sum(c.values()) for d, c in self.docs.items()}
        self.average = sum(self.lengths.values()) / len(self.docs)
        self.df = Counter(term for counts in self.docs.values() for term in counts)

    def idf(self, term: str) -> float:
        n, df = len(self.docs), self.df[term]
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def rank(self, query: str, among: Iterable[str] | None = None) -> list[str]:
        """Documents by score, best first (ties by id); each distinct query word counts once."""
        terms = set(bag(query))
        scores: dict[str, float] = {}
        for doc in among if among is not None else self.docs:
            counts, norm = self.docs[doc], K1 * (1 - B + B * self.lengths[doc] / self.average)
            score = sum(
                self.idf(t) * counts[t] * (K1 + 1) / (counts[t] + norm) for t in terms if counts[t]
            )
            if score > 0:
                scores[doc] = score
        return sorted(scores, key=lambda d: (-scores[d], d))


# ------------------------------------------------------------------ the measures


def precision_at(ranked: Sequence[str], grades: dict[str, int], k: int = 5) -> float:
    return sum(1 for r in ranked[:k] if grades.get(r, 0) > 0) / k


def ndcg_at(ranked: Sequence[str], grades: dict[str, int], k: int = DEPTH) -> float:
    def dcg(gains: Iterable[int]) -> float:
        return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(gains))

    ideal = dcg(sorted(grades.values(), reverse=True)[:k])
    return dcg(grades.get(r, 0) for r in ranked[:k]) / ideal


def judged_at(ranked: Sequence[str], grades: dict[str, int], k: int = DEPTH) -> float:
    """Share of the top k that the judge named at all (relevant); unjudged count as not."""
    return sum(1 for r in ranked[:k] if r in grades) / k


@dataclass
class Scored:
    key: str
    language: str
    form: str
    cross_language: bool
    product: dict[str, float]
    baseline: dict[str, float]
    product_top: list[str]
    baseline_top: list[str]


def measures(ranked: Sequence[str], grades: dict[str, int]) -> dict[str, float]:
    return {
        "p@5": precision_at(ranked, grades),
        "ndcg@10": ndcg_at(ranked, grades),
        "judged@10": judged_at(ranked, grades),
    }


# ------------------------------------------------------------------ running it


def _lines(name: str) -> list[dict[str, Any]]:
    with (LABELS / name).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


async def _token(settings: Settings, registry: RealmRegistry, city: str) -> str:
    """A read token of `city`: a problem's suggestions are asked for as its own city."""
    issued = await issue_access_token(
        registry,
        registry.realm(city),
        subject="bench",
        scopes=["read"],
        client_id="bench",
        audience=settings.audience,
        ttl_seconds=3600,
    )
    return issued.access_token


async def _post(http: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any]) -> Any:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"{variables}: {response.status_code} {body}")
    return body["data"]


def _external(ids: Sequence[str], by_id: dict[str, str]) -> list[str]:
    out: list[str] = []
    for gid in ids:
        parsed = parse_global_id(gid)
        if parsed is None or parsed[0] != "Solution":
            raise RuntimeError(f"not a solution: {gid}")
        out.append(by_id[parsed[1]])
    return out


async def run(uri: str) -> tuple[list[Scored], list[Scored], dict[str, Any]]:
    records = library()
    solutions = {r.external_id: r for r in records if isinstance(r, SolutionRecord)}
    problems = {r.external_id: r for r in records if isinstance(r, ProblemRecord)}
    baseline = BM25({e: Counter(bag(solution_text(r))) for e, r in solutions.items()})
    settings = Settings(mongodb_uri=Secret(uri), db_name="discovery", rate_limit_points=10_000_000)
    async with seeding_database(settings) as db:
        summary = await import_library(db=db, records=records)
        if summary.errors:
            raise RuntimeError(str(summary.errors[0]))
        solution_ids = await solution_store.ids_by_external_ids(db, sorted(solutions))
        problem_ids = await problem_store.ids_by_external_ids(db, sorted(problems))
        external = {v: k for k, v in solution_ids.items()}
        registry = RealmRegistry(db, settings.public_url)
        app = create_app(settings)
        search_scores: list[Scored] = []
        suggestion_scores: list[Scored] = []
        async with (
            LifespanManager(app) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app), base_url="http://bench", timeout=60
            ) as http,
        ):
            reader = await _token(settings, registry, "rotterdam")
            for q in _lines("search.jsonl"):
                grades = {j["solution"]: j["grade"] for j in q["judgements"]}
                data = await _post(http, reader, SEARCH, {"query": q["query"], "first": DEPTH})
                found = [e["node"]["id"] for e in data["search"]["edges"]]
                product = _external(found, external)
                base = baseline.rank(q["query"])[:DEPTH]
                search_scores.append(
                    _scored(q["id"], q["language"], q["form"], grades, solutions, product, base)
                )
            for p in _lines("suggestions.jsonl"):
                problem = problems[p["problem"]]
                grades = {j["solution"]: j["grade"] for j in p["judgements"]}
                token = await _token(settings, registry, problem.city)
                gid = global_id("Problem", problem_ids[problem.external_id])
                data = await _post(http, token, SUGGESTED, {"id": gid, "first": DEPTH})
                found = [e["node"]["id"] for e in data["node"]["suggestedSolutions"]["edges"]]
                product = _external(found, external)
                others = [e for e, r in solutions.items() if r.city != problem.city]
                base = baseline.rank(problem_text(problem), others)[:DEPTH]
                language = problem.language.value if problem.language else "en"
                suggestion_scores.append(
                    _scored(p["problem"], language, "problem", grades, solutions, product, base)
                )
    context = {
        "solutions": len(solutions),
        "problems": len(problems),
        "cities": len(records) - len(solutions) - len(problems),
    }
    return search_scores, suggestion_scores, context


def _scored(
    key: str,
    language: str,
    form: str,
    grades: dict[str, int],
    solutions: dict[str, SolutionRecord],
    product: list[str],
    base: list[str],
) -> Scored:
    top = [s for s, g in grades.items() if g == 2]
    other = sum(1 for s in top if (solutions[s].language or "en") != language)
    return Scored(
        key=key,
        language=language,
        form=form,
        cross_language=other * 2 > len(top),
        product=measures(product, grades),
        baseline=measures(base, grades),
        product_top=product,
        baseline_top=base,
    )


# ------------------------------------------------------------------ the table


def _mean(rows: Sequence[Scored], side: str, measure: str) -> float:
    return statistics.fmean(getattr(r, side)[measure] for r in rows)


def _row(label: str, rows: Sequence[Scored]) -> str:
    cells = [label, str(len(rows))]
    for measure in ("p@5", "ndcg@10"):
        cells += [
            f"{_mean(rows, 'product', measure):.3f}",
            f"{_mean(rows, 'baseline', measure):.3f}",
        ]
    cells += [
        f"{_mean(rows, 'product', 'judged@10'):.2f}",
        f"{_mean(rows, 'baseline', 'judged@10'):.2f}",
    ]
    return "| " + " | ".join(cells) + " |"


def table(search: Sequence[Scored], suggestions: Sequence[Scored]) -> str:
    lines = [
        "| set | n | P@5 ranking | P@5 BM25 | nDCG@10 ranking | nDCG@10 BM25 "
        "| judged@10 ranking | judged@10 BM25 |",
        "|---|---|---|---|---|---|---|---|",
        _row("search, all queries", search),
    ]
    for language in ("en", "nl", "es", "pt", "fr", "id", "ta"):
        rows = [r for r in search if r.language == language]
        if rows:
            lines.append(_row(f"search, {language}", rows))
    lines.append(_row("search, cross-language", [r for r in search if r.cross_language]))
    lines.append(_row("search, same language", [r for r in search if not r.cross_language]))
    for form in ("word", "inflected", "phrase", "ask"):
        lines.append(_row(f"search, {form}", [r for r in search if r.form == form]))
    lines.append(_row("suggestedSolutions, all problems", suggestions))
    return "\n".join(lines)


def paired(label: str, rows: Sequence[Scored], measure: str = "ndcg@10") -> str:
    """Per-query wins, ties and losses of the ranking, and a bootstrap 95% interval of the
    mean difference (10,000 resamples of the queries, fixed seed)."""
    diffs = [r.product[measure] - r.baseline[measure] for r in rows]
    wins, losses = sum(d > 1e-9 for d in diffs), sum(d < -1e-9 for d in diffs)
    draw = random.Random(11)  # noqa: S311 - resampling, not secrets
    means = sorted(statistics.fmean(draw.choices(diffs, k=len(diffs))) for _ in range(BOOTSTRAP))
    low, high = means[int(0.025 * BOOTSTRAP)], means[int(0.975 * BOOTSTRAP) - 1]
    return (
        f"{label} {measure}, ranking - BM25: {wins} better, {len(diffs) - wins - losses} equal, "
        f"{losses} worse; mean {statistics.fmean(diffs):+.3f} (95% CI {low:+.3f} to {high:+.3f})"
    )


def per_query(rows: Sequence[Scored]) -> str:
    return "\n".join(
        f"{r.key:32} {r.language}  nDCG@10 {r.product['ndcg@10']:.2f} vs "
        f"{r.baseline['ndcg@10']:.2f}  P@5 {r.product['p@5']:.1f} vs {r.baseline['p@5']:.1f}"
        for r in rows
    )


def machine() -> str:
    """Cores, CPU model and date, for the figures' record."""
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        model = next(
            (ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), model
        )
    return f"{os.cpu_count()} cores, {model}, {datetime.now(UTC):%Y-%m-%d}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", action="store_true", help="print each query's figures too")
    parser.add_argument("--json", type=Path, help="write every query's figures and top 10 here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data, EmbeddedDatabase(Path(data)) as database:
        search, suggestions, context = asyncio.run(run(database.uri))
    print(f"machine: {machine()}; library: {context}")
    print(table(search, suggestions))
    for measure in ("p@5", "ndcg@10"):
        print(paired("search", search, measure))
        print(paired("suggestedSolutions", suggestions, measure))
    if args.queries:
        print(per_query(search))
        print(per_query(suggestions))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "search": [r.__dict__ for r in search],
                    "suggestions": [r.__dict__ for r in suggestions],
                },
                ensure_ascii=False,
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
