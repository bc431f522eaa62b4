"""The labelled relevance set (tests/relevance/) is well formed against the packaged library:
every id exists, grades are 1 or 2 with a reason, nothing is judged twice, every query has a
directly relevant answer, and suggestions only name other cities' solutions. No database."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from cityexchange.demo import library
from cityexchange.services.library_records import ProblemRecord, SolutionRecord
from cityexchange.services.text import Language

HERE = Path(__file__).parent / "relevance"
MIN_QUERIES = 30
MIN_PROBLEMS = 15
LANGUAGES = {language.value for language in Language}
FORMS = {"word", "inflected", "phrase", "ask"}


def _lines(name: str) -> list[dict[str, Any]]:
    with (HERE / name).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


@cache
def _cities() -> tuple[dict[str, str], dict[str, str]]:
    """(solution external id -> city, problem external id -> city) of the packaged library."""
    solutions: dict[str, str] = {}
    problems: dict[str, str] = {}
    for record in library():
        if isinstance(record, SolutionRecord):
            solutions[record.external_id] = record.city
        elif isinstance(record, ProblemRecord):
            problems[record.external_id] = record.city
    return solutions, problems


def _check_judgements(where: str, judgements: list[dict[str, Any]]) -> None:
    solutions, _ = _cities()
    assert judgements, f"{where}: no judgements"
    seen: set[str] = set()
    for judgement in judgements:
        assert set(judgement) == {"solution", "grade", "why"}, f"{where}: {judgement}"
        solution = judgement["solution"]
        assert solution in solutions, f"{where}: {solution} is not in the library"
        assert solution not in seen, f"{where}: {solution} judged twice"
        seen.add(solution)
        assert judgement["grade"] in (1, 2), f"{where}: {solution} grade {judgement['grade']}"
        why = judgement["why"]
        assert isinstance(why, str), f"{where}: {solution}"
        assert why.strip(), f"{where}: {solution} has no reason"
        assert "\n" not in why, f"{where}: {solution}'s reason is not one line"
    assert any(j["grade"] == 2 for j in judgements), f"{where}: no grade-2 item"


def test_search_queries_are_well_formed() -> None:
    queries = _lines("search.jsonl")
    assert len(queries) >= MIN_QUERIES
    ids = [q["id"] for q in queries]
    assert len(ids) == len(set(ids)), "duplicate query ids"
    texts = [(q["language"], q["query"].casefold()) for q in queries]
    assert len(texts) == len(set(texts)), "the same query twice"
    for query in queries:
        assert set(query) == {"id", "query", "language", "form", "note", "judgements"}, query
        assert query["query"].strip(), query["id"]
        assert len(query["query"]) <= 500, query["id"]  # the search's own bound
        assert query["language"] in LANGUAGES, query["id"]
        assert query["form"] in FORMS, query["id"]
        _check_judgements(query["id"], query["judgements"])


def test_search_queries_cover_the_member_languages_and_forms() -> None:
    queries = _lines("search.jsonl")
    assert {q["language"] for q in queries} == LANGUAGES
    assert {q["form"] for q in queries} == FORMS


def test_suggestion_problems_are_well_formed() -> None:
    solutions, problems = _cities()
    items = _lines("suggestions.jsonl")
    assert len(items) >= MIN_PROBLEMS
    names = [item["problem"] for item in items]
    assert len(names) == len(set(names)), "a problem judged twice"
    for item in items:
        assert set(item) == {"problem", "note", "judgements"}, item
        problem = item["problem"]
        assert problem in problems, f"{problem} is not in the library"
        _check_judgements(problem, item["judgements"])
        for judgement in item["judgements"]:
            # The product never suggests a city's own solutions; a label that did could not be met.
            assert solutions[judgement["solution"]] != problems[problem], (
                f"{problem}: {judgement['solution']} is the same city's"
            )


@pytest.mark.parametrize("name", ["search.jsonl", "suggestions.jsonl"])
def test_files_are_one_json_object_per_line(name: str) -> None:
    text = (HERE / name).read_text(encoding="utf-8")
    assert text.endswith("\n")
    for number, line in enumerate(text.splitlines(), 1):
        assert isinstance(json.loads(line), dict), f"{name}:{number}"
