"""`cityexchange import FILE`: a case-study library in JSON Lines, each record checked on its own,
imported once by its external id, resumable; the packaged library itself loads cleanly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cityexchange.demo import library
from cityexchange.services.library_import import import_library
from cityexchange.services.library_records import (
    AdaptationCycle,
    CityRecord,
    SolutionRecord,
    in_order,
    read,
)
from tests.conftest import Api, run_cli

CITY = {
    "kind": "city",
    "externalId": "city:rotterdam",
    "slug": "rotterdam",
    "name": "Rotterdam",
    "country": "NL",
    "coastal": True,
    "rivers": ["Nieuwe Maas"],
    "incomeGroup": "HIGH",
    "hazards": ["FLOOD"],
    "source": {"publisher": "Gemeente Rotterdam", "title": "Rotterdam Resilience Strategy"},
}
PROBLEM = {
    "kind": "problem",
    "externalId": "problem:cloudbursts",
    "city": "rotterdam",
    "title": "Cloudbursts overwhelm the sewers",
    "summary": "Short, intense rain exceeds sewer capacity in paved neighbourhoods.",
    "hazards": ["FLOOD"],
    "source": {"publisher": "Gemeente Rotterdam", "title": "Waterplan 2"},
}
SOLUTION = {
    "kind": "solution",
    "externalId": "solution:water-squares",
    "city": "rotterdam",
    "language": "en",
    "title": "Water squares",
    "summary": "Sunken squares that hold rain during a cloudburst and drain it slowly.",
    "problems": ["problem:cloudbursts"],
    "hazards": ["FLOOD"],
    "status": "SCALED",
    "cost": {"amount": 4_000_000, "currency": "EUR", "year": 2013},
    "evidence": {"level": 2, "links": [{"url": "https://www.rotterdam.nl/", "title": "City"}]},
    "source": {"publisher": "Gemeente Rotterdam", "title": "Benthemplein", "year": 2013},
}
ADAPTATION = {
    **SOLUTION,
    "externalId": "solution:water-plazas",
    "title": "Water plazas for the harbour district",
    "adaptedFrom": "solution:water-squares",
    "adaptationNotes": "Smaller basins, planted edges.",
}


def _lines(*records: dict[str, Any]) -> list[str]:
    return [json.dumps(r) for r in records]


def _file(tmp_path: Path, *lines: str) -> str:
    path = tmp_path / "library.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_the_packaged_library_reads_without_errors_in_dependency_order() -> None:
    records = library()
    kinds = [type(r).__name__ for r in records]
    assert kinds.count("CityRecord") >= 30
    assert kinds.count("SolutionRecord") >= 150
    placed: set[str] = set()
    for record in records:
        if isinstance(record, SolutionRecord) and record.adapted_from:
            assert record.adapted_from in placed, record.external_id
        placed.add(record.external_id)
    assert all(r.source.publisher and r.source.title for r in records)


def test_each_bad_record_is_named_by_line_and_field() -> None:
    bad = [
        "not json",
        json.dumps({**PROBLEM, "hazards": ["FLOD"]}),
        json.dumps({**PROBLEM, "externalId": "problem:x", "titel": "typo"}),
        json.dumps({**SOLUTION, "externalId": "solution:y", "cost": {"amount": "lots"}}),
        json.dumps({**SOLUTION, "externalId": "solution:z", "evidence": {"level": 6}}),
        json.dumps({**CITY, "externalId": "problem:rotterdam"}),
        json.dumps({k: v for k, v in PROBLEM.items() if k != "source"}),
        json.dumps([1, 2]),
        json.dumps(CITY),
        json.dumps(CITY),
        json.dumps({**SOLUTION, "externalId": "solution:w", "problems": ["solution:x"]}),
        json.dumps({**SOLUTION, "externalId": "solution:v", "adaptedFrom": "problem:x"}),
    ]
    records, errors = read(bad)
    messages = [str(e) for e in errors]
    assert len(records) == 1
    assert isinstance(records[0], CityRecord)
    assert messages[0].startswith("line 1: record: is not JSON")
    assert "line 2 (problem:cloudbursts): hazards.0: 'FLOD' is not a Hazard" in messages[1]
    assert "titel: is not a field of this record" in messages[2]
    assert "cost.amount: must be a number" in messages[3]
    assert "evidence.level: must be a whole number from 1 to 5" in messages[4]
    assert "externalId: must start with 'city:'" in messages[5]
    assert "source: is required" in messages[6]
    assert "record: must be a JSON object" in messages[7]
    assert messages[8] == "line 10 (city:rotterdam): appears more than once"
    assert "line 11 (solution:w): problems.0: must be the externalId of a problem" in messages[9]
    assert "(solution:v): adaptedFrom: must be the externalId of a solution" in messages[10]


def test_adaptations_are_placed_after_their_originals_whatever_the_file_order() -> None:
    records, errors = read(_lines(ADAPTATION, SOLUTION, PROBLEM, CITY))
    assert errors == []
    order = [r.external_id for r in in_order(records)]
    assert order == [
        "city:rotterdam",
        "problem:cloudbursts",
        "solution:water-squares",
        "solution:water-plazas",
    ]


def test_a_field_twice_and_a_ring_of_adaptations_are_refused() -> None:
    twice = json.dumps(CITY).replace('"slug": "rotterdam"', '"slug": "rotterdam", "slug": "x"')
    records, errors = read([twice])
    assert [str(e) for e in errors] == [
        "line 1 (city:rotterdam): slug: appears twice in one object"
    ]
    a = {**SOLUTION, "externalId": "solution:a", "adaptedFrom": "solution:b"}
    b = {**SOLUTION, "externalId": "solution:b", "adaptedFrom": "solution:a"}
    records, errors = read(_lines(CITY, a, b))
    with pytest.raises(AdaptationCycle, match="solution:a <- solution:b"):
        in_order(records)


async def test_a_record_of_a_city_that_is_not_a_member_fails_alone(api: Api) -> None:
    stray = {**PROBLEM, "externalId": "problem:atlantis", "city": "atlantis"}
    # A city record the use case refuses (a slug with upper case) makes no member either.
    refused = {**CITY, "externalId": "city:x", "slug": "Xanadu"}
    of_refused = {**PROBLEM, "externalId": "problem:xanadu", "city": "Xanadu"}
    records, _ = read(_lines(CITY, stray, PROBLEM, refused, of_refused))
    summary = await import_library(db=api.db, records=in_order(records))
    assert summary.imported == 2
    assert [str(e) for e in summary.errors] == [
        "line 4 (city:x): slug: must be 2-63 lower-case letters, digits or '-', starting with "
        "a letter",
        "line 2 (problem:atlantis): city 'atlantis' not found",
        "line 5 (problem:xanadu): city 'Xanadu' not found",
    ]


async def test_import_is_idempotent_and_resumes_where_it_stopped(api: Api) -> None:
    records, _ = read(_lines(CITY, PROBLEM, SOLUTION, ADAPTATION))
    ordered = in_order(records)
    first = await import_library(db=api.db, records=ordered[:2])  # "interrupted" after two
    assert (first.imported, first.skipped, first.errors) == (2, 0, [])
    seen: list[tuple[str, str]] = []
    second = await import_library(
        db=api.db,
        records=ordered,
        progress=lambda r, outcome: seen.append((r.external_id, outcome)),
    )
    assert (second.imported, second.skipped, second.errors) == (2, 2, [])
    assert seen[0] == ("city:rotterdam", "skipped")
    assert seen[-1][1] == "imported"
    again = await import_library(db=api.db, records=ordered)
    assert (again.imported, again.skipped) == (0, 4)
    assert await api.db.solutions.count_documents({}) == 2
    assert await api.db.problems.count_documents({}) == 1

    token = await api.token("rotterdam")
    data = await api.data(
        """{ solutions(orderBy: CREATED_AT_ASC) { edges { node {
             title evidence { level } cost { eur } adaptedFrom { title }
             city { coastal rivers incomeGroup } } } } }""",
        token=token,
    )
    first_node, second_node = (e["node"] for e in data["solutions"]["edges"])
    assert first_node["evidence"] == {"level": 2}
    assert first_node["cost"]["eur"] == 4_000_000
    assert first_node["city"] == {"coastal": True, "rivers": ["Nieuwe Maas"], "incomeGroup": "HIGH"}
    assert second_node["adaptedFrom"] == {"title": "Water squares"}


async def test_a_record_that_refers_to_nothing_fails_alone(api: Api) -> None:
    orphan = {**SOLUTION, "externalId": "solution:orphan", "problems": ["problem:missing"]}
    records, _ = read(_lines(CITY, orphan, PROBLEM))
    summary = await import_library(db=api.db, records=in_order(records))
    assert summary.imported == 2
    assert [str(e) for e in summary.errors] == [
        "line 2 (solution:orphan): record 'problem:missing' not found"
    ]


async def test_the_command_checks_everything_first_and_reports_progress(
    api: Api, tmp_path: Path
) -> None:
    invalid = _file(tmp_path, *_lines(CITY, {**PROBLEM, "urgency": "SOON"}))
    code, out, err = await run_cli(api, "import", invalid)
    assert code == 2, err
    assert "line 2 (problem:cloudbursts): urgency: must be one of ROUTINE" in err
    assert "nothing was imported" in err
    assert await api.db.cities.count_documents({}) == 0

    code, out, err = await run_cli(api, "import", "--keep-going", invalid)
    assert code == 0, err
    assert json.loads(out) == {"imported": 1, "skipped": 0, "failed": 0, "invalid": 1}
    assert "1/1  imported 1  skipped 0  failed 0" in err  # the progress line

    valid = _file(tmp_path, *_lines(CITY, PROBLEM, SOLUTION))
    code, out, err = await run_cli(api, "import", "--check", valid)
    assert (code, json.loads(out)) == (0, {"valid": 3, "invalid": 0})
    code, out, err = await run_cli(api, "import", valid)
    assert json.loads(out) == {"imported": 2, "skipped": 1, "failed": 0, "invalid": 0}
