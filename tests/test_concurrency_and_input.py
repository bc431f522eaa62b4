"""Concurrent writers, and inputs that must come back as BAD_USER_INPUT."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import Api, add_city
from tests.queries import (
    ADD_COMMENT,
    PUBLISH_PROBLEM,
    PUBLISH_SOLUTION,
    UPDATE_PROBLEM,
    problem_input,
)

pytestmark = pytest.mark.usefixtures("two_cities")


async def test_concurrent_updates_from_one_version_let_exactly_one_win(api: Api) -> None:
    token = await api.token("rotterdam")
    problem = (await api.data(PUBLISH_PROBLEM, {"input": problem_input()}, token=token))[
        "publishProblem"
    ]["problem"]
    updates = [
        api.data(
            UPDATE_PROBLEM,
            {"input": {"id": problem["id"], "version": 1, "title": f"Edit {i}"}},
            token=token,
        )
        for i in range(6)
    ]
    payloads = [r["updateProblem"] for r in await asyncio.gather(*updates)]
    winners = [p for p in payloads if p["problem"] is not None]
    losers = [p for p in payloads if p["problem"] is None]
    assert len(winners) == 1
    assert {e["code"] for p in losers for e in p["userErrors"]} == {"CONFLICT"}
    assert winners[0]["problem"]["version"] == 2


async def test_concurrent_faces_too_are_each_recorded_once(api: Api) -> None:
    for slug in ("chennai", "semarang", "medellin"):
        await add_city(api.db, slug)
    owner = await api.token("rotterdam")
    problem = (await api.data(PUBLISH_PROBLEM, {"input": problem_input()}, token=owner))[
        "publishProblem"
    ]["problem"]
    face = """mutation($id: ID!) { faceProblemToo(input: {problemId: $id}) {
        problem { id } userErrors { code } } }"""
    cities = ["lagos", "chennai", "semarang", "medellin"] * 2
    tokens = [await api.token(city) for city in cities]
    await asyncio.gather(*(api.data(face, {"id": problem["id"]}, token=t) for t in tokens))
    data = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Problem { facedBy { city { slug } } } } }",
        {"id": problem["id"]},
        token=owner,
    )
    faced = sorted(f["city"]["slug"] for f in data["node"]["facedBy"])
    assert faced == ["chennai", "lagos", "medellin", "semarang"]


async def test_moderation_survives_a_concurrent_edit(api: Api) -> None:
    owner = await api.token("rotterdam")
    author = await api.token("lagos", subject="lagos-cro")
    problem = (await api.data(PUBLISH_PROBLEM, {"input": problem_input()}, token=owner))[
        "publishProblem"
    ]["problem"]
    comment = (
        await api.data(
            ADD_COMMENT, {"input": {"subjectId": problem["id"], "body": "First"}}, token=author
        )
    )["addComment"]["comment"]
    hide = """mutation($id: ID!) { hideComment(input: {id: $id, reason: "Spam"}) {
        comment { hidden } } }"""
    edit = """mutation($id: ID!, $b: String!) { editComment(input: {id: $id, body: $b}) {
        comment { hidden body } } }"""
    await asyncio.gather(
        api.data(hide, {"id": comment["id"]}, token=owner),
        *(api.data(edit, {"id": comment["id"], "b": f"Edit {i}"}, token=author) for i in range(4)),
    )
    data = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Comment { hidden body editedAt } } }",
        {"id": comment["id"]},
        token=owner,
    )
    assert data["node"]["hidden"] is True
    assert data["node"]["body"] is None
    assert data["node"]["editedAt"] is not None


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"contact": {"name": "x" * 201}}, ["input", "contact", "name"]),
        (
            {"outcomes": [{"metric": "m", "value": 1, "unit": "u" * 51}]},
            ["input", "outcomes", "0", "unit"],
        ),
        (
            {"links": [{"url": "https://x.org", "title": "t" * 201}]},
            ["input", "links", "0", "title"],
        ),
        ({"links": [{"url": "javascript:alert(1)"}]}, ["input", "links", "0", "url"]),
        (
            {"cost": {"amount": 10, "currency": "euros", "year": 2020}},
            ["input", "cost", "currency"],
        ),
        ({"adaptationNotes": "without an original"}, ["input", "adaptationNotes"]),
    ],
)
async def test_solution_detail_limits_name_the_field(
    api: Api, extra: dict[str, object], field: list[str]
) -> None:
    token = await api.token("rotterdam")
    data = await api.data(
        PUBLISH_SOLUTION,
        {"input": {"title": "t", "summary": "s", "hazards": ["FLOOD"], **extra}},
        token=token,
    )
    errors = data["publishSolution"]["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [("BAD_USER_INPUT", field)]


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (
            "query($f: ProblemFilter) { problems(filter: $f) { totalCount } }",
            {"f": {"createdAfter": "not-a-date"}},
        ),
        ("query($c: String) { problems(first: 2, before: $c) { totalCount } }", {"c": "x"}),
        ("query($c: String) { problems(last: 2, after: $c) { totalCount } }", {"c": "x"}),
        (
            "query($f: ProblemFilter) { problems(filter: $f) { totalCount } }",
            {"f": {"search": "x" * 201}},
        ),
    ],
)
async def test_bad_arguments_are_bad_user_input(
    api: Api, query: str, variables: dict[str, object]
) -> None:
    token = await api.token("rotterdam")
    body = await api.gql(query, variables, token=token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body


async def test_client_chosen_operation_names_do_not_grow_metrics(api: Api) -> None:
    for i in range(5):
        await api.gql(f"query Probe{i} {{ __typename }}")  # no token
    metrics = (await api.http.get("/metrics")).text
    assert "Probe" not in metrics
    assert 'operation="unauthenticated"' in metrics
