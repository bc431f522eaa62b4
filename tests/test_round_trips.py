"""The N+1 gate: a nested query costs the same database round trips for 5 items as for 50."""

from __future__ import annotations

from cityexchange.services import cities, comments, problems, solutions
from cityexchange.services.models import Affiliation, Person
from cityexchange.services.principal import Principal
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Hazard, OrganisationKind, Role
from tests.conftest import Api, add_city, db_commands

NESTED = """
query Nested($first: Int!) {
  problems(first: $first) {
    edges { node {
      title city { name }
      solutions(first: 5) { edges { node {
        title city { name }
        comments(first: 5) { edges { node { body author { name } city { name } } } }
      } } }
    } }
  }
}"""
SCOPES = frozenset({"read", "publish", "comment"})


async def _seed(db: Database, count: int) -> None:
    for slug in ("rotterdam", "lagos", "chennai"):
        await add_city(db, slug)
    person = await cities.add_person(
        db=db,
        person=Person(
            id="",
            city="chennai",
            username="k.raman",
            name="Kavya Raman",
            role=Role.CRO,
            affiliation=Affiliation("Greater Chennai Corporation", OrganisationKind.CITY_AGENCY),
        ),
    )
    owner = Principal("rotterdam", "cro", SCOPES, "tests")
    helper = Principal("lagos", "cro", SCOPES, "tests")
    commenter = Principal("chennai", person.id, SCOPES, "tests")
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
            actor=commenter,
            subject_kind="Solution",
            subject_id=solution.id,
            parent_id=None,
            body=f"Comment {i}",
        )


async def _round_trips(api: Api, token: str, first: int) -> float:
    before = db_commands((await api.http.get("/metrics")).text)
    data = await api.data(NESTED, {"first": first}, token=token)
    after = db_commands((await api.http.get("/metrics")).text)
    edges = data["problems"]["edges"]
    assert len(edges) == first
    for edge in edges:
        solution = edge["node"]["solutions"]["edges"][0]["node"]
        assert solution["city"] == {"name": "Lagos"}
        comment = solution["comments"]["edges"][0]["node"]
        assert comment["author"] == {"name": "Kavya Raman"}
        assert comment["city"] == {"name": "Chennai"}
    return after - before


async def test_nested_query_round_trips_do_not_grow_with_page_size(api: Api) -> None:
    await _seed(api.db, 52)
    token = await api.token("rotterdam")
    await api.data("{ viewer { subject } }", token=token)  # warm the realm's key cache
    small = await _round_trips(api, token, 5)
    large = await _round_trips(api, token, 50)
    # One query per collection per level: problems, their cities, solutions, their cities,
    # comments, authors and the authors' cities (cached cities cost nothing).
    assert small == large
    assert large <= 7, large


async def test_nodes_of_one_kind_are_one_query(api: Api) -> None:
    await _seed(api.db, 10)
    token = await api.token("rotterdam")
    data = await api.data("{ problems(first: 10) { edges { node { id } } } }", token=token)
    ids = [edge["node"]["id"] for edge in data["problems"]["edges"]]
    before = db_commands((await api.http.get("/metrics")).text)
    nodes = await api.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids}, token=token
    )
    after = db_commands((await api.http.get("/metrics")).text)
    assert [node["id"] for node in nodes["nodes"]] == ids
    assert after - before == 1


async def test_city_relations_are_batched_across_cities(api: Api) -> None:
    await _seed(api.db, 6)
    for i in range(8):
        await add_city(api.db, f"extra-{i}")
    token = await api.token("rotterdam")
    query = """query($first: Int!) { cities(first: $first) { edges { node { slug
        problems(first: 2, filter: {hazards: [FLOOD]}) { totalCount edges { node { title } } }
        solutions(first: 2) { totalCount edges { node { title } } }
        people { totalCount edges { node { name } } } } } } }"""
    counts = []
    for first in (2, 11):
        await api.data("{ viewer { subject } }", token=token)
        before = db_commands((await api.http.get("/metrics")).text)
        data = await api.data(query, {"first": first}, token=token)
        counts.append(db_commands((await api.http.get("/metrics")).text) - before)
        assert len(data["cities"]["edges"]) == first
    assert counts[0] == counts[1] == 4  # cities, problems, solutions, people
    by_slug = {e["node"]["slug"]: e["node"] for e in data["cities"]["edges"]}
    assert by_slug["rotterdam"]["problems"]["totalCount"] == 6
    assert len(by_slug["rotterdam"]["problems"]["edges"]) == 2
    assert by_slug["lagos"]["solutions"]["totalCount"] == 6
    assert by_slug["chennai"]["people"]["edges"] == [{"node": {"name": "Kavya Raman"}}]
    assert by_slug["extra-0"]["problems"] == {"totalCount": 0, "edges": []}
