"""Retries with the same clientMutationId: the first result, and nothing written twice."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from graphql import GraphQLError

from cityexchange.auth.realms import RealmRegistry
from cityexchange.auth.tokens import issue_access_token
from cityexchange.schema.errors import coded_errors
from cityexchange.services.errors import OutcomeUnknown, Unavailable
from tests.conftest import Api
from tests.queries import PUBLISH_PROBLEM, PUBLISH_SOLUTION, problem_input

pytestmark = pytest.mark.usefixtures("two_cities")

PUBLISH_SOLUTION_ECHO = """
mutation Publish($input: PublishSolutionInput!) {
  publishSolution(input: $input) {
    solution { id title version }
    userErrors { code field message }
    clientMutationId
  }
}"""

ADD_COMMENT_ECHO = """
mutation Add($input: AddCommentInput!) {
  addComment(input: $input) {
    comment { id body }
    userErrors { code field message }
    clientMutationId
  }
}"""

MUTATION_SHAPES = """
{
  __schema {
    mutationType { fields { name args { name type { ofType { name } } } type { ofType { name } } } }
    types { name inputFields { name type { name } } fields { name type { name } } }
  }
}"""


async def _publish(api: Api, token: str, **extra: object) -> dict[str, Any]:
    data = await api.data(PUBLISH_PROBLEM, {"input": {**problem_input(), **extra}}, token=token)
    payload: dict[str, Any] = data["publishProblem"]
    return payload


async def _count(api: Api, collection: str, query: dict[str, Any]) -> int:
    return await api.db.db[collection].count_documents(query)


async def _token_of_client(api: Api, city: str, client_id: str) -> str:
    registry = RealmRegistry(api.db, api.settings.public_url)
    issued = await issue_access_token(
        registry,
        registry.realm(city),
        subject="tester",
        scopes=("read", "publish", "comment"),
        client_id=client_id,
        audience=api.settings.audience,
        ttl_seconds=900,
    )
    return issued.access_token


async def test_a_retry_returns_the_first_problem_and_writes_nothing(api: Api) -> None:
    token = await api.token("rotterdam")
    first = await _publish(api, token, clientMutationId="publish-1")
    again = await _publish(api, token, clientMutationId="publish-1")

    assert first["userErrors"] == []
    assert again["userErrors"] == []
    assert (first["clientMutationId"], again["clientMutationId"]) == ("publish-1", "publish-1")
    assert again["problem"] == first["problem"]
    assert await _count(api, "problems", {}) == 1
    assert await _count(api, "events", {"type": "PROBLEM_PUBLISHED"}) == 1


async def test_a_retry_reads_the_first_result_fresh(api: Api) -> None:
    token = await api.token("rotterdam")
    first = await _publish(api, token, clientMutationId="publish-1")
    edit = {"id": first["problem"]["id"], "version": 1, "title": "Edited since"}
    update = (
        "mutation($input: UpdateProblemInput!) { updateProblem(input: $input) { problem { id } } }"
    )
    await api.data(update, {"input": edit}, token=token)

    again = await _publish(api, token, clientMutationId="publish-1")

    assert again["problem"]["id"] == first["problem"]["id"]
    assert (again["problem"]["title"], again["problem"]["version"]) == ("Edited since", 2)


async def test_different_keys_are_different_mutations(api: Api) -> None:
    token = await api.token("rotterdam")
    first = await _publish(api, token, clientMutationId="publish-1")
    second = await _publish(api, token, clientMutationId="publish-2")
    unkeyed = await _publish(api, token)

    ids = {first["problem"]["id"], second["problem"]["id"], unkeyed["problem"]["id"]}
    assert len(ids) == 3
    assert unkeyed["clientMutationId"] is None
    assert await _count(api, "events", {"type": "PROBLEM_PUBLISHED"}) == 3


async def test_a_key_reused_with_other_input_is_a_conflict(api: Api) -> None:
    token = await api.token("rotterdam")
    first = await _publish(api, token, clientMutationId="publish-1")
    other = await _publish(api, token, title="Another problem", clientMutationId="publish-1")

    assert other["problem"] is None
    assert other["clientMutationId"] == "publish-1"
    [error] = other["userErrors"]
    assert (error["code"], error["field"]) == ("CONFLICT", ["input", "clientMutationId"])
    assert await _count(api, "problems", {}) == 1
    assert first["problem"] is not None


async def test_keys_are_scoped_to_city_and_client(api: Api) -> None:
    rotterdam = await api.token("rotterdam")
    lagos = await api.token("lagos")
    other_client = await _token_of_client(api, "rotterdam", "another-app")

    ids = {
        (await _publish(api, token, clientMutationId="shared-key"))["problem"]["id"]
        for token in (rotterdam, lagos, other_client)
    }

    assert len(ids) == 3
    assert await _count(api, "problems", {"city": "rotterdam"}) == 2
    assert await _count(api, "problems", {"city": "lagos"}) == 1


async def test_another_person_of_the_same_client_never_gets_your_result(api: Api) -> None:
    mine = await api.token("rotterdam", subject="tester")
    theirs = await api.token("rotterdam", subject="colleague")
    await _publish(api, mine, clientMutationId="portal-1")

    other = await _publish(api, theirs, clientMutationId="portal-1")

    assert other["problem"] is None
    assert other["userErrors"][0]["code"] == "CONFLICT"
    assert await _count(api, "problems", {}) == 1


async def test_keys_are_scoped_to_the_mutation(api: Api) -> None:
    token = await api.token("rotterdam")
    problem = await _publish(api, token, clientMutationId="same-key")
    comment = (
        await api.data(
            ADD_COMMENT_ECHO,
            {
                "input": {
                    "subjectId": problem["problem"]["id"],
                    "body": "Us too.",
                    "clientMutationId": "same-key",
                }
            },
            token=token,
        )
    )["addComment"]
    assert comment["userErrors"] == []
    assert comment["comment"] is not None


async def test_concurrent_identical_retries_write_once(api: Api) -> None:
    token = await api.token("rotterdam")
    payloads = await asyncio.gather(
        *(_publish(api, token, clientMutationId="burst") for _ in range(5))
    )

    assert all(p["userErrors"] == [] for p in payloads), payloads
    assert len({p["problem"]["id"] for p in payloads}) == 1
    assert await _count(api, "problems", {}) == 1
    assert await _count(api, "events", {"type": "PROBLEM_PUBLISHED"}) == 1


async def test_a_failed_attempt_is_not_recorded(api: Api) -> None:
    token = await api.token("rotterdam")
    failed = await _publish(api, token, hazards=[], clientMutationId="publish-1")
    assert failed["userErrors"][0]["code"] == "BAD_USER_INPUT"

    fixed = await _publish(api, token, clientMutationId="publish-1", hazards=["FLOOD"])

    assert fixed["userErrors"] == []
    assert fixed["problem"] is not None


@pytest.mark.parametrize("key", ["", "x" * 101, "line\nbreak"])
async def test_a_malformed_key_is_bad_input(api: Api, key: str) -> None:
    token = await api.token("rotterdam")
    payload = await _publish(api, token, clientMutationId=key)

    [error] = payload["userErrors"]
    assert (error["code"], error["field"]) == ("BAD_USER_INPUT", ["input", "clientMutationId"])
    assert await _count(api, "problems", {}) == 0


async def test_add_comment_and_publish_solution_retries(api: Api) -> None:
    token = await api.token("rotterdam")
    problem = (await _publish(api, token))["problem"]["id"]
    comment = {"subjectId": problem, "body": "We saw this too.", "clientMutationId": "c-1"}
    solution = {
        "title": "Water squares",
        "summary": "Squares that hold rain.",
        "hazards": ["FLOOD"],
        "problemIds": [problem],
        "clientMutationId": "s-1",
    }

    comments = [
        (await api.data(ADD_COMMENT_ECHO, {"input": comment}, token=token))["addComment"]
        for _ in range(2)
    ]
    solutions = [
        (await api.data(PUBLISH_SOLUTION_ECHO, {"input": solution}, token=token))["publishSolution"]
        for _ in range(2)
    ]

    assert comments[0] == comments[1]
    assert comments[0]["clientMutationId"] == "c-1"
    assert solutions[0] == solutions[1]
    assert solutions[0]["clientMutationId"] == "s-1"
    assert await _count(api, "comments", {}) == 1
    assert await _count(api, "solutions", {}) == 1
    assert (
        await _count(api, "events", {"type": {"$in": ["COMMENT_ADDED", "SOLUTION_PUBLISHED"]}}) == 2
    )


async def test_a_retried_update_is_not_a_stale_version(api: Api) -> None:
    token = await api.token("rotterdam")
    problem = (await _publish(api, token))["problem"]
    update = """
    mutation($input: UpdateProblemInput!) {
      updateProblem(input: $input) { problem { version title } userErrors { code } }
    }"""
    edit = {"id": problem["id"], "version": 1, "title": "Edited", "clientMutationId": "u-1"}

    first = (await api.data(update, {"input": edit}, token=token))["updateProblem"]
    again = (await api.data(update, {"input": edit}, token=token))["updateProblem"]

    assert first == again == {"problem": {"version": 2, "title": "Edited"}, "userErrors": []}
    assert await _count(api, "events", {"type": "PROBLEM_UPDATED"}) == 1


async def test_every_mutation_takes_and_echoes_a_client_mutation_id(api: Api) -> None:
    token = await api.token("rotterdam")
    shapes = (await api.data(MUTATION_SHAPES, token=token))["__schema"]
    types = {t["name"]: t for t in shapes["types"]}
    mutations = shapes["mutationType"]["fields"]
    assert len(mutations) > 10

    for mutation in mutations:
        [arg] = mutation["args"]
        input_type = types[arg["type"]["ofType"]["name"]]
        payload_type = types[mutation["type"]["ofType"]["name"]]
        inputs = {f["name"]: f["type"]["name"] for f in input_type["inputFields"]}
        outputs = {f["name"]: f["type"]["name"] for f in payload_type["fields"]}
        assert inputs.get("clientMutationId") == "String", mutation["name"]
        assert outputs.get("clientMutationId") == "String", mutation["name"]


async def test_follow_retries_and_a_plain_publish_solution_still_works(api: Api) -> None:
    token = await api.token("rotterdam")
    follow = """
    mutation($input: FollowInput!) {
      follow(input: $input) { follows { kind value } userErrors { code } clientMutationId }
    }"""
    given = {"kind": "HAZARD", "value": "FLOOD", "clientMutationId": "f-1"}

    first = (await api.data(follow, {"input": given}, token=token))["follow"]
    again = (await api.data(follow, {"input": given}, token=token))["follow"]

    assert first == again
    assert first["follows"] == [{"kind": "HAZARD", "value": "FLOOD"}]
    plain = {"title": "T", "summary": "S", "hazards": ["FLOOD"]}
    published = (await api.data(PUBLISH_SOLUTION, {"input": plain}, token=token))["publishSolution"]
    assert published["userErrors"] == []


def test_an_unknown_outcome_has_its_own_code_and_says_how_to_find_out() -> None:
    cut = GraphQLError("cut", path=["publishProblem"], original_error=OutcomeUnknown())
    unreachable = GraphQLError("down", path=["problems"], original_error=Unavailable())
    statuses: list[str] = []

    coded = coded_errors(
        [cut, unreachable],
        request_id="r-1",
        hide_suggestions=False,
        on_unavailable=lambda: statuses.append("503"),
    )

    [unknown, down] = [(e.extensions or {}).get("code") for e in coded]
    assert (unknown, down) == ("OUTCOME_UNKNOWN", "SERVICE_UNAVAILABLE")
    assert "same clientMutationId" in coded[0].message
    assert statuses == ["503", "503"]  # both are worth retrying later


async def test_a_retried_client_registration_registers_one_and_shows_its_secret_once(
    api: Api,
) -> None:
    # A write outside the event log's transactions: recorded just after it succeeded.
    token = await api.token("rotterdam")
    register = """
    mutation($input: RegisterClientInput!) {
      registerClient(input: $input) {
        client { clientId name } clientSecret userErrors { code } clientMutationId
      }
    }"""
    given = {
        "name": "Open data portal",
        "type": "CONFIDENTIAL",
        "grants": ["client_credentials"],
        "scope": "read",
        "clientMutationId": "register-1",
    }

    first = (await api.data(register, {"input": given}, token=token))["registerClient"]
    again = (await api.data(register, {"input": given}, token=token))["registerClient"]

    assert first["clientSecret"]
    assert again["clientSecret"] is None  # only its hash is kept
    assert again["client"] == first["client"]
    assert again["clientMutationId"] == "register-1"
    listed = (await api.data("{ oauthClients { clientId } }", token=token))["oauthClients"]
    web_app = {"clientId": "rotterdam-web"}  # registered by the service (docs/web-app.md)
    assert [c for c in listed if c != web_app] == [{"clientId": first["client"]["clientId"]}]
