"""Adaptation lineage across cities, and threaded comments with edit, delete and hide."""

from __future__ import annotations

import pytest

from tests.conftest import Api, add_city
from tests.queries import ADD_COMMENT, PUBLISH_PROBLEM, PUBLISH_SOLUTION, problem_input

LINEAGE = """
query($id: ID!) {
  node(id: $id) {
    ... on Solution {
      title city { slug }
      adaptedFrom { title city { slug } adaptedFrom { title city { slug } adaptedFrom { id } } }
      adaptations { totalCount edges { node { title adaptations { edges { node { title } } } } } }
    }
  }
}"""


async def _solution(api: Api, token: str, title: str, **extra: object) -> dict[str, object]:
    data = await api.data(
        PUBLISH_SOLUTION,
        {"input": {"title": title, "summary": f"{title}.", "hazards": ["FLOOD"], **extra}},
        token=token,
    )
    payload = data["publishSolution"]
    assert payload["userErrors"] == [], payload
    solution: dict[str, object] = payload["solution"]
    return solution


async def test_an_adaptation_chain_walks_both_ways(api: Api) -> None:
    for slug in ("rotterdam", "new-orleans", "chennai"):
        await add_city(api.db, slug)
    a = await _solution(api, await api.token("rotterdam"), "Water squares")
    b = await _solution(
        api,
        await api.token("new-orleans"),
        "Gentilly district",
        adaptedFrom=a["id"],
        adaptationNotes="A district, not a square",
    )
    assert b["adaptedFrom"] == {"id": a["id"]}
    assert b["adaptationNotes"] == "A district, not a square"
    c = await _solution(api, await api.token("chennai"), "Sponge parks", adaptedFrom=b["id"])
    token = await api.token("chennai", scopes=("read",))

    up = (await api.data(LINEAGE, {"id": c["id"]}, token=token))["node"]
    assert up["adaptedFrom"]["title"] == "Gentilly district"
    assert up["adaptedFrom"]["city"] == {"slug": "new-orleans"}
    assert up["adaptedFrom"]["adaptedFrom"]["title"] == "Water squares"
    assert up["adaptedFrom"]["adaptedFrom"]["city"] == {"slug": "rotterdam"}
    assert up["adaptedFrom"]["adaptedFrom"]["adaptedFrom"] is None

    down = (await api.data(LINEAGE, {"id": a["id"]}, token=token))["node"]
    assert down["adaptations"]["totalCount"] == 1
    child = down["adaptations"]["edges"][0]["node"]
    assert child["title"] == "Gentilly district"
    assert child["adaptations"]["edges"] == [{"node": {"title": "Sponge parks"}}]


async def test_solutions_reference_existing_problems_and_originals(api: Api) -> None:
    await add_city(api.db, "rotterdam")
    token = await api.token("rotterdam")
    missing = "UHJvYmxlbTo2NTAwMDAwMDAwMDAwMDAwMDAwMDAwMDA"  # Problem:6500..., never stored
    data = await api.data(
        PUBLISH_SOLUTION,
        {"input": {"title": "t", "summary": "s", "hazards": ["FLOOD"], "problemIds": [missing]}},
        token=token,
    )
    assert data["publishSolution"]["userErrors"][0]["code"] == "NOT_FOUND"
    data = await api.data(
        PUBLISH_SOLUTION,
        {"input": {"title": "t", "summary": "s", "hazards": ["FLOOD"], "adaptedFrom": "nonsense"}},
        token=token,
    )
    assert data["publishSolution"]["userErrors"][0]["field"] == ["input", "adaptedFrom"]
    data = await api.data(
        PUBLISH_SOLUTION,
        {
            "input": {
                "title": "t",
                "summary": "s",
                "hazards": ["FLOOD"],
                "cost": {"amount": -1, "currency": "EUR", "year": 2020},
            }
        },
        token=token,
    )
    assert data["publishSolution"]["userErrors"][0]["field"] == ["input", "cost", "amount"]


async def test_updating_a_solution_merges_details(api: Api) -> None:
    await add_city(api.db, "rotterdam")
    token = await api.token("rotterdam")
    solution = await _solution(
        api,
        token,
        "Water squares",
        partners=["De Urbanisten"],
        cost={"amount": 4_000_000, "currency": "eur", "year": 2013},
    )
    data = await api.data(
        """mutation($input: UpdateSolutionInput!) { updateSolution(input: $input) {
        solution { version status partners cost { amount currency year } }
        userErrors { code } } }""",
        {"input": {"id": solution["id"], "version": 1, "status": "SCALED"}},
        token=token,
    )
    assert data["updateSolution"]["solution"] == {
        "version": 2,
        "status": "SCALED",
        "partners": ["De Urbanisten"],
        "cost": {"amount": 4_000_000.0, "currency": "EUR", "year": 2013},
    }


@pytest.fixture
async def discussed(api: Api) -> dict[str, str]:
    await add_city(api.db, "rotterdam")
    await add_city(api.db, "semarang")
    owner = await api.token("rotterdam", subject="rotterdam-cro")
    problem = await api.data(PUBLISH_PROBLEM, {"input": problem_input()}, token=owner)
    return {
        "problem": problem["publishProblem"]["problem"]["id"],
        "owner": owner,
        "guest": await api.token("semarang", subject="semarang-cro"),
    }


async def test_comments_thread_one_level_and_keep_their_shape(
    api: Api, discussed: dict[str, str]
) -> None:
    guest, owner, problem = discussed["guest"], discussed["owner"], discussed["problem"]
    first = (
        await api.data(ADD_COMMENT, {"input": {"subjectId": problem, "body": "How?"}}, token=guest)
    )["addComment"]["comment"]
    assert first["city"] == {"slug": "semarang"}
    reply = (
        await api.data(
            ADD_COMMENT,
            {"input": {"subjectId": problem, "parentId": first["id"], "body": "Like this."}},
            token=owner,
        )
    )["addComment"]["comment"]
    deeper = (
        await api.data(
            ADD_COMMENT,
            {"input": {"subjectId": problem, "parentId": reply["id"], "body": "Too deep"}},
            token=guest,
        )
    )["addComment"]
    assert deeper["userErrors"][0]["field"] == ["input", "parentId"]

    edit = """mutation($id: ID!, $body: String!) { editComment(input: {id: $id, body: $body}) {
        comment { body editedAt } userErrors { code } } }"""
    forbidden = await api.gql(edit, {"id": first["id"], "body": "Hijack"}, token=owner)
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    edited = (await api.data(edit, {"id": first["id"], "body": "How, exactly?"}, token=guest))[
        "editComment"
    ]["comment"]
    assert edited["body"] == "How, exactly?"
    assert edited["editedAt"] is not None

    delete = """mutation($id: ID!) { deleteComment(input: {id: $id}) {
        comment { body deletedAt } } }"""
    deleted = (await api.data(delete, {"id": first["id"]}, token=guest))["deleteComment"]
    assert deleted["comment"]["body"] is None

    thread = """query($id: ID!) { node(id: $id) { ... on Problem { comments { totalCount
        edges { node { body deletedAt replies { edges { node { body subject {
        ... on Problem { id } } } } } } } } } } }"""
    data = (await api.data(thread, {"id": problem}, token=owner))["node"]["comments"]
    assert data["totalCount"] == 1
    tombstone = data["edges"][0]["node"]
    assert tombstone["body"] is None
    assert tombstone["deletedAt"] is not None
    assert tombstone["replies"]["edges"] == [
        {"node": {"body": "Like this.", "subject": {"id": problem}}}
    ]


async def test_only_the_subjects_city_admin_may_hide(api: Api, discussed: dict[str, str]) -> None:
    problem = discussed["problem"]
    comment = (
        await api.data(
            ADD_COMMENT, {"input": {"subjectId": problem, "body": "Spam"}}, token=discussed["guest"]
        )
    )["addComment"]["comment"]
    hide = """mutation($id: ID!) { hideComment(input: {id: $id, reason: "Off topic"}) {
        comment { body hidden hiddenReason } } }"""
    guest_admin = await api.token("semarang")
    body = await api.gql(hide, {"id": comment["id"]}, token=guest_admin)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    no_admin = await api.token("rotterdam", scopes=("read", "publish", "comment"))
    body = await api.gql(hide, {"id": comment["id"]}, token=no_admin)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    hidden = (await api.data(hide, {"id": comment["id"]}, token=await api.token("rotterdam")))[
        "hideComment"
    ]["comment"]
    assert hidden == {"body": None, "hidden": True, "hiddenReason": "Off topic"}


async def test_commenting_needs_the_comment_scope_and_a_real_subject(
    api: Api, discussed: dict[str, str]
) -> None:
    reader = await api.token("semarang", scopes=("read",))
    body = await api.gql(
        ADD_COMMENT, {"input": {"subjectId": discussed["problem"], "body": "Hi"}}, token=reader
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    data = await api.data(
        ADD_COMMENT, {"input": {"subjectId": "bad", "body": "Hi"}}, token=discussed["guest"]
    )
    assert data["addComment"]["userErrors"][0]["field"] == ["input", "subjectId"]
    data = await api.data(
        ADD_COMMENT,
        {"input": {"subjectId": discussed["problem"], "body": "x" * 10_001}},
        token=discussed["guest"],
    )
    assert data["addComment"]["userErrors"][0]["field"] == ["input", "body"]
