"""Problems over HTTP: publishing, editing with versions, and who may do what."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.queries import (
    MARK_ANSWERED,
    PROBLEM,
    PUBLISH_PROBLEM,
    PUBLISH_SOLUTION,
    UPDATE_PROBLEM,
    problem_input,
)

pytestmark = pytest.mark.usefixtures("two_cities")


async def publish(api: Api, token: str, **extra: object) -> dict[str, object]:
    data = await api.data(PUBLISH_PROBLEM, {"input": problem_input(**extra)}, token=token)
    payload = data["publishProblem"]
    assert payload["userErrors"] == []
    problem: dict[str, object] = payload["problem"]
    return problem


async def test_a_city_publishes_and_edits_its_problem(api: Api) -> None:
    token = await api.token("rotterdam")
    data = await api.data(
        PUBLISH_PROBLEM, {"input": problem_input(clientMutationId="m1")}, token=token
    )
    payload = data["publishProblem"]
    assert payload["clientMutationId"] == "m1"
    problem = payload["problem"]
    assert problem["city"] == {"slug": "rotterdam"}
    assert (problem["version"], problem["status"]) == (1, "OPEN")

    data = await api.data(
        UPDATE_PROBLEM,
        {"input": {"id": problem["id"], "version": 1, "title": "Cloudbursts", "status": "CLOSED"}},
        token=token,
    )
    updated = data["updateProblem"]["problem"]
    assert (updated["title"], updated["version"], updated["status"]) == ("Cloudbursts", 2, "CLOSED")


async def test_a_stale_version_gets_conflict_and_changes_nothing(api: Api) -> None:
    token = await api.token("rotterdam")
    problem = await publish(api, token)
    first = {"id": problem["id"], "version": 1, "title": "First edit"}
    await api.data(UPDATE_PROBLEM, {"input": first}, token=token)
    stale = {"id": problem["id"], "version": 1, "title": "Lost update"}
    payload = (await api.data(UPDATE_PROBLEM, {"input": stale}, token=token))["updateProblem"]
    assert payload["problem"] is None
    assert payload["userErrors"][0]["code"] == "CONFLICT"
    assert payload["userErrors"][0]["field"] == ["input", "version"]
    current = (await api.data(PROBLEM, {"id": problem["id"]}, token=token))["node"]
    assert (current["title"], current["version"]) == ("First edit", 2)


@pytest.mark.parametrize(
    ("mutation", "make_input"),
    [
        (UPDATE_PROBLEM, lambda pid, sid: {"id": pid, "version": 1, "title": "Hijacked"}),
        (UPDATE_PROBLEM, lambda pid, sid: {"id": pid, "version": 1, "status": "CLOSED"}),
        (MARK_ANSWERED, lambda pid, sid: {"problemId": pid, "version": 1, "solutionIds": [sid]}),
    ],
    ids=["update", "close", "mark-answered"],
)
async def test_another_city_cannot_change_a_problem(
    api: Api, mutation: str, make_input: object
) -> None:
    owner = await api.token("rotterdam")
    other = await api.token("lagos")
    problem = await publish(api, owner)
    solution = (
        await api.data(
            PUBLISH_SOLUTION,
            {
                "input": {
                    "title": "Drain clearing",
                    "summary": "Clear drains before the rains.",
                    "hazards": ["FLOOD"],
                }
            },
            token=other,
        )
    )["publishSolution"]["solution"]

    body = await api.gql(
        mutation,
        {"input": make_input(problem["id"], solution["id"])},  # type: ignore[operator]
        token=other,
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    current = (await api.data(PROBLEM, {"id": problem["id"]}, token=owner))["node"]
    assert current == {
        "id": problem["id"],
        "title": problem["title"],
        "version": 1,
        "status": "OPEN",
        "answeredBy": [],
    }


async def test_publishing_needs_the_publish_scope(api: Api) -> None:
    reader = await api.token("rotterdam", scopes=("read", "comment"))
    body = await api.gql(PUBLISH_PROBLEM, {"input": problem_input()}, token=reader)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    owner = await api.token("rotterdam")
    listed = await api.data("{ problems { totalCount } }", token=owner)
    assert listed["problems"]["totalCount"] == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("title", "x" * 201), ("summary", "x" * 1001), ("body", "x" * 50_001)],
)
async def test_over_long_fields_are_bad_input_naming_the_field(
    api: Api, field: str, value: str
) -> None:
    token = await api.token("rotterdam")
    data = await api.data(PUBLISH_PROBLEM, {"input": problem_input(**{field: value})}, token=token)
    payload = data["publishProblem"]
    assert payload["problem"] is None
    assert payload["userErrors"] == [
        {
            "code": "BAD_USER_INPUT",
            "field": ["input", field],
            "message": payload["userErrors"][0]["message"],
        }
    ]


async def test_lists_over_fifty_items_are_bad_input(api: Api) -> None:
    token = await api.token("rotterdam")
    tags = [f"tag{i}" for i in range(51)]
    data = await api.data(PUBLISH_PROBLEM, {"input": problem_input(tags=tags)}, token=token)
    assert data["publishProblem"]["userErrors"][0]["field"] == ["input", "tags"]


async def test_mark_answered_and_face_too(api: Api) -> None:
    owner = await api.token("rotterdam")
    other = await api.token("lagos")
    problem = await publish(api, owner)
    solution = (
        await api.data(
            PUBLISH_SOLUTION,
            {
                "input": {
                    "title": "Water squares",
                    "summary": "Squares that store rain.",
                    "hazards": ["FLOOD"],
                    "problemIds": [problem["id"]],
                }
            },
            token=owner,
        )
    )["publishSolution"]["solution"]
    marked = (
        await api.data(
            MARK_ANSWERED,
            {"input": {"problemId": problem["id"], "version": 1, "solutionIds": [solution["id"]]}},
            token=owner,
        )
    )["markProblemAnswered"]["problem"]
    assert marked["status"] == "ADDRESSED"
    assert marked["answeredBy"] == [{"id": solution["id"]}]

    face = """mutation($id: ID!) { faceProblemToo(input: {problemId: $id}) {
        problem { facedBy { city { slug } } } userErrors { code field } } }"""
    for _ in range(2):  # saying it twice counts once
        data = await api.data(face, {"id": problem["id"]}, token=other)
        assert data["faceProblemToo"]["problem"]["facedBy"] == [{"city": {"slug": "lagos"}}]
    own = await api.data(face, {"id": problem["id"]}, token=owner)
    assert own["faceProblemToo"]["userErrors"][0]["code"] == "BAD_USER_INPUT"


async def test_filters_and_search_treat_input_as_text(api: Api) -> None:
    token = await api.token("rotterdam")
    await publish(
        api, token, title="Heat islands in Medellín", hazards=["HEAT_WAVE"], tags=["urban-heat"]
    )
    await publish(api, token, title="Cloudbursts flood the centre", urgency="ACTIVE_CRISIS")
    literal = await publish(api, token, title='Odd title {"$gt": ""}')
    query = """query($f: ProblemFilter) { problems(filter: $f) { totalCount
        edges { node { title } } } }"""

    async def titles(filter: dict[str, object]) -> list[str]:
        data = await api.data(query, {"f": filter}, token=token)
        return [e["node"]["title"] for e in data["problems"]["edges"]]

    assert await titles({"hazards": ["HEAT_WAVE"]}) == ["Heat islands in Medellín"]
    assert await titles({"urgency": ["ACTIVE_CRISIS"]}) == ["Cloudbursts flood the centre"]
    assert await titles({"tags": ["URBAN-HEAT"]}) == ["Heat islands in Medellín"]
    assert await titles({"search": "medellin heat"}) == ["Heat islands in Medellín"]
    assert await titles({"search": "cloudb"}) == ["Cloudbursts flood the centre"]
    assert await titles({"search": '{"$gt": ""}'}) == [literal["title"]]
    assert await titles({"search": ".*"}) == []
    assert await titles({"cities": ["lagos"]}) == []
    assert await titles({"search": "$where"}) == []
