"""Benchmark: would a packaged multilingual embedding model improve the relevance figures?
(docs/discovery.md, "A multilingual model, measured").

The one model found that installs from the package index with its weights and loads offline
is WordLlama's `l2_supercat` (256 dimensions, in the `wordllama` wheel). This bench asks the
product exactly as bench/discovery_quality.py does (same library, same labelled set in
tests/relevance/, same measures), embeds every solution and every query or problem with the
model, and scores, beside the product's own top ten:

- the model alone (cosine similarity, best first);
- reciprocal rank fusion (RRF, k = 60) of the product's top ten with the model's top 50, the
  model's list weighted 1, 0.5 or 0.25 against the product's 1;
- the product's top ten re-ordered by 0.7 x its rank + 0.3 x the model's rank.

For suggestions the model ranks only other cities' solutions, as the product does. The
fusion weights are read off these same labels, so the best fusion row flatters the model.

wordllama is not a dependency of the project. To run this, install it and the four packages
it needs without their own dependencies: `tokenizers` would bring `huggingface_hub` and with
it `httpx2`, which authlib's httpx client then takes in place of `httpx` (the suite's OAuth
tests fail on that):

    .venv/bin/pip install --no-deps wordllama==0.4.0.post1 tokenizers safetensors toml \
        pydantic pydantic-core annotated-types typing-inspection
    .venv/bin/python -m bench.multilingual_model
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import wordllama  # type: ignore[import-not-found]
from wordllama import WordLlama  # type: ignore[import-not-found]

from bench.discovery_quality import (
    BOOTSTRAP,
    DEPTH,
    Scored,
    _lines,
    machine,
    measures,
    problem_text,
    run,
    solution_text,
)
from cityexchange.demo import library
from cityexchange.embedded import EmbeddedDatabase
from cityexchange.services.library_records import ProblemRecord, SolutionRecord

RRF_K = 60
MODEL_DEPTH = 50  # of the model's list, fused with the product's top ten


def load_model() -> Any:
    """The packaged model, never a download: the wheel ships its tokenizer in `tokenizers/`,
    where WordLlama looks only inside its cache directory, so the package is named as that."""
    return WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)


def fuse(lists: Sequence[Sequence[str]], weights: Sequence[float]) -> list[str]:
    scores: dict[str, float] = {}
    for ranked, weight in zip(lists, weights, strict=True):
        for rank, item in enumerate(ranked):
            scores[item] = scores.get(item, 0.0) + weight / (RRF_K + rank + 1)
    return sorted(scores, key=lambda item: (-scores[item], item))


def variants(product: list[str], model: list[str]) -> dict[str, list[str]]:
    position = {item: i for i, item in enumerate(model)}
    head = model[:MODEL_DEPTH]
    return {
        "product": product,
        "model alone": model[:DEPTH],
        "RRF, model x1": fuse([product, head], [1, 1])[:DEPTH],
        "RRF, model x0.5": fuse([product, head], [1, 0.5])[:DEPTH],
        "RRF, model x0.25": fuse([product, head], [1, 0.25])[:DEPTH],
        "re-ordered, 0.3 model": sorted(
            product, key=lambda s: 0.7 * product.index(s) + 0.3 * position.get(s, len(model))
        ),
    }


def interval(diffs: list[float]) -> str:
    draw = random.Random(11)  # noqa: S311 - resampling, not secrets
    means = sorted(statistics.fmean(draw.choices(diffs, k=len(diffs))) for _ in range(BOOTSTRAP))
    low, high = means[int(0.025 * BOOTSTRAP)], means[int(0.975 * BOOTSTRAP) - 1]
    return f"{statistics.fmean(diffs):+.3f} ({low:+.3f} to {high:+.3f})"


def report(
    label: str,
    rows: Sequence[Scored],
    grades: dict[str, dict[str, int]],
    ranked_by_model: Callable[[Scored], list[str]],
) -> list[str]:
    figures: dict[str, list[tuple[Scored, dict[str, float]]]] = {}
    for row in rows:
        for name, ranked in variants(row.product_top, ranked_by_model(row)).items():
            figures.setdefault(name, []).append((row, measures(ranked, grades[row.key])))
    lines: list[str] = []
    for name, scored in figures.items():
        cells = [f"{label}: {name}"]
        for part in (scored, [(r, m) for r, m in scored if r.cross_language]):
            for measure in ("p@5", "ndcg@10"):
                cells.append(f"{statistics.fmean(m[measure] for _, m in part):.3f}")
        diffs = [m["ndcg@10"] - r.product["ndcg@10"] for r, m in scored]
        cells.append("—" if name == "product" else interval(diffs))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    records = library()
    solutions = {r.external_id: r for r in records if isinstance(r, SolutionRecord)}
    problems = {r.external_id: r for r in records if isinstance(r, ProblemRecord)}
    with tempfile.TemporaryDirectory() as data, EmbeddedDatabase(Path(data)) as database:
        search, suggestions, context = asyncio.run(run(database.uri))
    model = load_model()
    ids = sorted(solutions)
    vectors = model.embed([solution_text(solutions[s]) for s in ids], norm=True)

    def ranked(text: str, among: set[str] | None = None) -> list[str]:
        scores = vectors @ model.embed([text], norm=True)[0]
        order = sorted(range(len(ids)), key=lambda i: (-float(scores[i]), ids[i]))
        return [ids[i] for i in order if among is None or ids[i] in among]

    queries = {q["id"]: q for q in _lines("search.jsonl")}
    asked = {p["problem"]: p for p in _lines("suggestions.jsonl")}
    grades = {
        key: {j["solution"]: j["grade"] for j in item["judgements"]}
        for key, item in [*queries.items(), *asked.items()]
    }

    def for_problem(row: Scored) -> list[str]:
        problem = problems[row.key]
        others = {s for s, r in solutions.items() if r.city != problem.city}
        return ranked(problem_text(problem), others)

    print(f"machine: {machine()}; library: {context}")
    print(
        "| set: ranking | P@5 | nDCG@10 | P@5, cross-language | nDCG@10, cross-language "
        "| nDCG@10 minus the product's (95% CI) |"
    )
    print("|---|---|---|---|---|---|")
    for line in report("search", search, grades, lambda r: ranked(queries[r.key]["query"])):
        print(line)
    for line in report("suggestedSolutions", suggestions, grades, for_problem):
        print(line)


if __name__ == "__main__":
    main()
