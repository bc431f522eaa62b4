"""Suggestions over HTTP: similar problems, suggested and similar solutions, with reasons."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from cityexchange.app import create_app
from cityexchange.resources import open_database
from cityexchange.services import adoptions, cities, endorsements, problems, search, solutions
from cityexchange.services.clock import now
from cityexchange.services.ids import global_id
from cityexchange.services.models import (
    AdoptionStage,
    City,
    EndorsementKind,
    Evidence,
    Outcome,
    ResilienceProfile,
    SolutionDetails,
)
from cityexchange.services.principal import Principal
from cityexchange.services.store.database import Database
from cityexchange.services.store.indexes import ensure_indexes
from cityexchange.services.taxonomy import Hazard as H
from cityexchange.services.taxonomy import IncomeGroup, SolutionStatus
from cityexchange.services.text import Language
from cityexchange.settings import Secret, Settings
from tests.conftest import Api

SCOPES = frozenset({"read", "publish", "comment"})
EDGES = "edges { score factors { relevance fit evidence freshness } reasons { code text } node"
SUGGESTED = f"""
query Suggested($id: ID!, $first: Int) {{
  node(id: $id) {{ ... on Problem {{
    suggestedSolutions(first: $first) {{ {EDGES} {{ id title city {{ slug }} }} }} }}
  }} }}
}}"""
SIMILAR_PROBLEMS = f"""
query Similar($id: ID!, $first: Int) {{
  node(id: $id) {{ ... on Problem {{
    similarProblems(first: $first) {{ {EDGES} {{ id city {{ slug }} }} }} }}
  }} }}
}}"""
SIMILAR_SOLUTIONS = f"""
query Similar($id: ID!, $first: Int) {{
  node(id: $id) {{ ... on Solution {{
    similarSolutions(first: $first) {{ {EDGES} {{ id city {{ slug }} }} }} }}
  }} }}
}}"""

DELTA: dict[str, Any] = {
    "hazards": (H.FLOOD, H.COASTAL_FLOOD, H.SEA_LEVEL_RISE),
    "climate_zone": "Af",
    "population": 1_600_000,
    "coastal": True,
    "region": "Asia",
    "income_group": IncomeGroup.UPPER_MIDDLE,
    "languages": ("en",),
}
DESERT: dict[str, Any] = {
    "hazards": (H.DROUGHT, H.HEAT_WAVE),
    "climate_zone": "BWh",
    "population": 90_000,
    "coastal": False,
    "region": "Middle East",
    "income_group": IncomeGroup.HIGH,
    "languages": ("ar",),
}
TITLE = "Tidal barrier, pumping stations and retention ponds"
SUMMARY = (
    "A tidal barrier, pumping stations and retention ponds keep high tides and heavy rain "
    "out of the harbour districts; the drainage canals are dredged every year."
)


def _city(slug: str, attributes: dict[str, Any]) -> City:
    hazards = attributes.get("hazards", ())
    rest = {k: v for k, v in attributes.items() if k != "hazards"}
    return City(
        slug=slug,
        name=slug.title(),
        country="ID",
        created_at=now(),
        profile=ResilienceProfile(hazards=hazards),
        **rest,
    )


def _actor(city: str) -> Principal:
    return Principal(city, f"cro-{city}", SCOPES, "tests")


async def _problem(db: Database, city: str, title: str) -> str:
    draft = problems.ProblemDraft(
        title=title,
        summary="High tides and land subsidence flood the streets and homes of the harbour "
        "districts; the drainage canals overflow.",
        hazards=[H.FLOOD, H.COASTAL_FLOOD],
        language=Language.EN,
    )
    return (await problems.publish(db=db, actor=_actor(city), draft=draft)).id


async def _solution(
    db: Database, city: str, details: SolutionDetails, problem_ids: tuple[str, ...] = ()
) -> str:
    draft = solutions.SolutionDraft(
        title=TITLE,
        summary=SUMMARY,
        hazards=[H.FLOOD, H.COASTAL_FLOOD],
        problem_ids=problem_ids,
        details=details,
        language=Language.EN,
    )
    return (await solutions.publish(db=db, actor=_actor(city), draft=draft)).id


@dataclasses.dataclass(frozen=True)
class Corpus:
    api: Api
    token: str
    ids: dict[str, str]  # global ids by name


async def _seed(db: Database) -> dict[str, str]:
    for slug, attributes in (
        ("asker", DELTA),
        ("twin", DELTA),
        ("desert", DESERT),
        ("helper", {}),
        ("quitter", {}),
    ):
        await cities.add_city(db=db, city=_city(slug, attributes))
    problem = await _problem(db, "asker", "Tidal flooding of the harbour districts")
    own_problem = await _problem(db, "asker", "Tidal flooding of the old harbour")
    twin_problem = await _problem(db, "twin", "Tidal flooding of the coastal districts")
    helper_problem = await _problem(db, "helper", "Tidal flooding of the river districts")
    proven = await _solution(
        db,
        "twin",
        SolutionDetails(
            status=SolutionStatus.SCALED,
            started_on=date(2018, 1, 1),
            completed_on=date(2022, 6, 1),
            outcomes=(
                Outcome("pump capacity added", 60.0, "m3/s"),
                Outcome("dykes raised", 12.0, "km"),
            ),
            evidence=Evidence(level=4),
        ),
        problem_ids=(helper_problem,),
    )
    unproven = await _solution(db, "desert", SolutionDetails(status=SolutionStatus.IDEA))
    own = await _solution(db, "asker", SolutionDetails(status=SolutionStatus.SCALED))
    dropped = await _solution(db, "helper", SolutionDetails(status=SolutionStatus.IMPLEMENTED))
    await problems.mark_answered(
        db=db, actor=_actor("helper"), id=helper_problem, version=1, solution_ids=[proven]
    )
    await adoptions.adopt(
        db=db, actor=_actor("helper"), solution_id=proven, stage=AdoptionStage.ADOPTED
    )
    await endorsements.endorse(
        db=db, actor=_actor("helper"), solution_id=proven, kind=EndorsementKind.VALIDATED
    )
    await adoptions.adopt(
        db=db,
        actor=_actor("quitter"),
        solution_id=dropped,
        stage=AdoptionStage.ABANDONED,
        note="the pumps cost more to run than we could pay",
    )
    return {
        "problem": global_id("Problem", problem),
        "own_problem": global_id("Problem", own_problem),
        "twin_problem": global_id("Problem", twin_problem),
        "helper_problem": global_id("Problem", helper_problem),
        "proven": global_id("Solution", proven),
        "unproven": global_id("Solution", unproven),
        "own": global_id("Solution", own),
        "dropped": global_id("Solution", dropped),
    }


@pytest.fixture(scope="module")
async def corpus(mongodb_uri: str) -> AsyncIterator[Corpus]:
    """One app and database for the module, with the small corpus above."""
    settings = Settings(mongodb_uri=Secret(mongodb_uri), db_name=f"cx_sugg_{uuid.uuid4().hex[:12]}")
    async with open_database(dataclasses.replace(settings, operation_timeout_ms=30_000)) as db:
        await ensure_indexes(db)
        ids = await _seed(db)
        app = create_app(settings)
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                api = Api(http=http, db=db, settings=settings)
                yield Corpus(api, await api.token("asker"), ids)
        await db.client.drop_database(settings.db_name)


async def _edges(corpus: Corpus, query: str, subject: str, **variables: Any) -> list[Any]:
    variables = {"id": corpus.ids[subject], **variables}
    data = await corpus.api.data(query, variables, token=corpus.token)
    node = data["node"]
    field = next(iter(node))
    edges: list[Any] = node[field]["edges"]
    return edges


def _codes(edge: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for reason in edge["reasons"]:
        found.setdefault(reason["code"], []).append(reason["text"])
    return found


async def test_a_proven_solution_from_a_peer_city_outranks_an_idea_from_an_unlike_one(
    corpus: Corpus,
) -> None:
    edges = await _edges(corpus, SUGGESTED, "problem")
    ranked = [edge["node"]["id"] for edge in edges]
    assert ranked.index(corpus.ids["proven"]) < ranked.index(corpus.ids["unproven"])
    by_id = {edge["node"]["id"]: edge for edge in edges}
    proven, unproven = by_id[corpus.ids["proven"]], by_id[corpus.ids["unproven"]]
    # The same words: relevance alike, the city and the evidence make the difference.
    assert proven["factors"]["relevance"] == pytest.approx(
        unproven["factors"]["relevance"], rel=0.1
    )
    assert proven["factors"]["fit"] > unproven["factors"]["fit"]
    assert proven["factors"]["evidence"] > unproven["factors"]["evidence"]
    for edge in edges:
        factors = edge["factors"]
        assert all(0 < value <= 1 for value in factors.values())
        product = factors["relevance"] * factors["fit"] * factors["evidence"]
        assert edge["score"] == pytest.approx(product * factors["freshness"], abs=1e-5)
    assert [edge["score"] for edge in edges] == sorted((e["score"] for e in edges), reverse=True)


async def test_a_citys_own_solutions_are_never_suggested(corpus: Corpus) -> None:
    edges = await _edges(corpus, SUGGESTED, "problem", first=50)
    assert edges
    assert all(edge["node"]["city"]["slug"] != "asker" for edge in edges)
    assert corpus.ids["own"] not in {edge["node"]["id"] for edge in edges}


async def test_suggestions_say_why(corpus: Corpus) -> None:
    edges = await _edges(corpus, SUGGESTED, "problem")
    by_id = {edge["node"]["id"]: edge for edge in edges}
    proven = _codes(by_id[corpus.ids["proven"]])
    assert edges[0]["reasons"][0]["code"] == "MATCHED_TERMS"
    assert re.match(r"matches .*tidal", proven["MATCHED_TERMS"][0])
    assert proven["SHARED_HAZARDS"] == ["shares FLOOD, COASTAL_FLOOD and SEA_LEVEL_RISE"]
    assert proven["SAME_CLIMATE_ZONE"] == ["same Köppen zone Af"]
    assert proven["STATUS"] == ["scaled up"]
    assert proven["EVIDENCE_LEVEL"] == ["Nesta evidence level 4 of 5"]
    assert proven["STATED_OUTCOMES"] == ["2 stated outcomes"]
    assert proven["ADOPTIONS"] == ["piloted or adopted by 1 city"]
    assert proven["ENDORSEMENTS"] == ["endorsed by 1 city"]
    assert proven["ANSWERED"] == ["marked as the answer to 1 problem"]
    assert re.fullmatch(r"completed 2022 \(\d+ years? ago\)", proven["FRESHNESS"][0])
    unproven = _codes(by_id[corpus.ids["unproven"]])
    assert unproven["STATUS"] == ["an idea, not tried yet"]
    assert "SHARED_HAZARDS" not in unproven
    assert _codes(by_id[corpus.ids["dropped"]])["ABANDONED"] == ["abandoned by 1 city"]


async def test_the_page_size_is_bounded(corpus: Corpus) -> None:
    assert len(await _edges(corpus, SUGGESTED, "problem", first=1)) == 1
    assert await _edges(corpus, SUGGESTED, "problem", first=0) == []
    for first in (51, -1):
        body = await corpus.api.gql(
            SUGGESTED, {"id": corpus.ids["problem"], "first": first}, token=corpus.token
        )
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body


async def test_similar_problems_are_other_cities_problems(corpus: Corpus) -> None:
    edges = await _edges(corpus, SIMILAR_PROBLEMS, "problem")
    found = {edge["node"]["id"] for edge in edges}
    assert {corpus.ids["twin_problem"], corpus.ids["helper_problem"]} <= found
    assert not found & {corpus.ids["problem"], corpus.ids["own_problem"]}
    # The twin city's problem first: the same words, and a city alike in every way.
    assert edges[0]["node"]["id"] == corpus.ids["twin_problem"]
    assert "SHARED_HAZARDS" in _codes(edges[0])


async def test_similar_solutions_are_other_cities_and_never_itself(corpus: Corpus) -> None:
    edges = await _edges(corpus, SIMILAR_SOLUTIONS, "proven")
    found = [edge["node"]["id"] for edge in edges]
    assert corpus.ids["proven"] not in found
    assert {corpus.ids["own"], corpus.ids["unproven"], corpus.ids["dropped"]} <= set(found)
    assert all(edge["node"]["city"]["slug"] != "twin" for edge in edges)


def _commands(metrics: str) -> float:
    pattern = r'^cityexchange_db_commands_total\{[^}]*origin="request"[^}]*\} (\S+)$'
    return sum(float(v) for v in re.findall(pattern, metrics, re.MULTILINE))


async def _round_trips(api: Api, token: str, query: str, **variables: Any) -> tuple[float, Any]:
    await api.data("{ viewer { subject } }", token=token)  # the realm's keys are cached
    before = _commands((await api.http.get("/metrics")).text)
    data = await api.data(query, variables, token=token)
    return _commands((await api.http.get("/metrics")).text) - before, data


# Two documents: the surcharges of four problems' and four solutions' lists together are
# over the cost limit.
BATCHED = (
    """{ problems(first: 4) { edges { node { id
      suggestedSolutions { edges { score node { id } } }
      similarProblems { edges { score node { id } } } } } } }""",
    """{ solutions(first: 4) { edges { node { id
      similarSolutions { edges { score node { id } } } } } } }""",
)
ALONE = """
query Alone($id: ID!) { node(id: $id) {
  ... on Problem {
    suggestedSolutions { edges { score node { id } } }
    similarProblems { edges { score node { id } } }
  }
  ... on Solution { similarSolutions { edges { score node { id } } } }
} }"""


async def test_batched_suggestions_are_each_parents_own(corpus: Corpus) -> None:
    for query in BATCHED:
        ((_, found),) = (await corpus.api.data(query, token=corpus.token)).items()
        parents = [edge["node"] for edge in found["edges"]]
        assert len(parents) == 4
        for parent in parents:
            variables = {"id": parent["id"]}
            alone = (await corpus.api.data(ALONE, variables, token=corpus.token))["node"]
            assert parent == {"id": parent["id"], **alone}
        # Each parent's lists are its own: they differ from parent to parent.
        for field in set(parents[0]) - {"id"}:
            assert len({repr(parent[field]) for parent in parents}) > 1, field


# A corpus where every solution matches: `related` fills a pool of 60 candidates for
# first: 20 and one of 30 for first: 1.
CROWD_SOLUTIONS = 66
PER_PARENT = """
query PerParent($n: Int!) {
  problems(first: $n, filter: {cities: ["asker"]}) { edges { node {
    FIELD(first: 3) { edges { score node { id } } } } } }
}"""


@pytest.fixture(scope="module")
async def crowd(mongodb_uri: str) -> AsyncIterator[Corpus]:
    """Five problems of one city and three of others, written alike, and 66 other cities'
    solutions to them."""
    name = f"cx_crowd_{uuid.uuid4().hex[:12]}"
    settings = Settings(mongodb_uri=Secret(mongodb_uri), db_name=name)
    async with open_database(dataclasses.replace(settings, operation_timeout_ms=30_000)) as db:
        await ensure_indexes(db)
        helpers = ("twin", "desert", "helper")
        for slug, attributes in (("asker", DELTA), ("twin", DELTA), ("desert", DESERT)):
            await cities.add_city(db=db, city=_city(slug, attributes))
        await cities.add_city(db=db, city=_city("helper", {}))
        for _ in range(5):
            await _problem(db, "asker", "Tidal flooding of the harbour districts")
        for slug in helpers:
            await _problem(db, slug, "Tidal flooding of the harbour districts")
        statuses = list(SolutionStatus)
        for i in range(CROWD_SOLUTIONS):
            status = statuses[i % len(statuses)]
            await _solution(db, helpers[i % 3], SolutionDetails(status=status))
        app = create_app(settings)
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                api = Api(http=http, db=db, settings=settings)
                yield Corpus(api, await api.token("asker"), {})
        await db.client.drop_database(name)


async def test_round_trips_do_not_grow_with_the_candidate_pool(crowd: Corpus) -> None:
    # first: 1 re-ranks 30 candidates, first: 20 re-ranks 60: a query per candidate (or per
    # candidate's city or track record) would show as a difference.
    counts: list[float] = []
    for first in (1, 20):
        count, data = await _round_trips(
            crowd.api,
            crowd.token,
            'query($first: Int) { problems(first: 1, filter: {cities: ["asker"]}) { edges {'
            " node { suggestedSolutions(first: $first) { edges { node { id } } } } } } }",
            first=first,
        )
        (problem,) = data["problems"]["edges"]
        assert len(problem["node"]["suggestedSolutions"]["edges"]) == first
        counts.append(count)
    assert counts[0] == counts[1], counts


# Read once per level whatever the number of parents: the candidates, their cities and, for
# solutions, their track records (counters, adoptions' stages, answered-marks).
ONCE = {"suggestedSolutions": 1 + 1 + 3, "similarProblems": 1 + 1, "similarSolutions": 1 + 1 + 3}


async def test_only_the_related_search_runs_per_parent(crowd: Corpus) -> None:
    per_parent: dict[str, float] = {}
    for field, once in ONCE.items():
        query = PER_PARENT.replace("FIELD", field)
        parents = "solutions" if field == "similarSolutions" else "problems"
        if parents == "solutions":
            query = query.replace(
                'problems(first: $n, filter: {cities: ["asker"]})', "solutions(first: $n)"
            )
        counts: list[float] = []
        for n in (1, 5):
            count, data = await _round_trips(crowd.api, crowd.token, query, n=n)
            edges = data[parents]["edges"]
            assert len(edges) == n
            assert all(len(edge["node"][field]["edges"]) == 3 for edge in edges)
            counts.append(count)
        # c(n) = the parents' list + `once` + n x (one `related` search: the term statistics
        # and a read of postings per chosen term, at most RELATED_TERMS).
        per_parent[field] = (counts[1] - counts[0]) / 4
        assert counts[0] - per_parent[field] == 1 + once, (field, counts)
        assert 2 <= per_parent[field] <= 1 + search.RELATED_TERMS, (field, counts)
    # The same problems, so the same search terms: nothing else runs per parent.
    assert per_parent["suggestedSolutions"] == per_parent["similarProblems"], per_parent
