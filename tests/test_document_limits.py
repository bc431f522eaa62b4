"""The document gate over HTTP: documents refused before validation, validation once per
document, a handful of errors at most, static cost, and the response size cap."""

from __future__ import annotations

import json
import re
import time

import pytest

from cityexchange.graphql_edge import MAX_RESPONSE_BYTES
from cityexchange.schema.context import Context
from cityexchange.schema.limits import MAX_COST
from cityexchange.schema.root import build_schema
from cityexchange.services.principal import Principal
from tests.conftest import Api
from tests.live_support import Subscriber, live_server
from tests.queries import PUBLISH_PROBLEM, problem_input

pytestmark = pytest.mark.usefixtures("two_cities")


def doubling_fragments(levels: int) -> str:
    """F_n spreads F_(n-1) twice: 2^levels fields once expanded, in a ~1 KB document."""
    fragments = ["fragment F0 on Query { __typename }"] + [
        f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)
    ]
    return f"query {{ ...F{levels} }}\n" + "\n".join(fragments)


async def metric(api: Api, name: str) -> float:
    text = (await api.http.get("/metrics")).text
    found = re.search(rf"^{name}_total (\S+)$", text, re.MULTILINE)
    assert found is not None, text
    return float(found.group(1))


@pytest.mark.parametrize("levels", [16, 30])
async def test_fragments_that_double_are_refused_without_a_token(api: Api, levels: int) -> None:
    body = await api.gql(doubling_fragments(levels))
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "field count after expanding fragments" in error["message"]
    assert (await api.http.get("/healthz")).status_code == 200


async def test_a_document_is_validated_once(api: Api) -> None:
    token = await api.token("rotterdam")
    query = "query Once { viewer { subject scopes } }"
    validated = await metric(api, "cityexchange_documents_validated")
    analysed = await metric(api, "cityexchange_documents_analysed")
    for _ in range(5):
        assert (await api.data(query, token=token))["viewer"]["subject"] == "tester"
    assert await metric(api, "cityexchange_documents_validated") == validated + 1
    assert await metric(api, "cityexchange_documents_analysed") == analysed + 1


async def test_a_cost_depending_on_variables_is_measured_per_page_size(api: Api) -> None:
    token = await api.token("rotterdam")
    query = """query Pages($n: Int, $m: Int) {
      problems(first: $n) { edges { node { solutions(first: $m) { edges { node { id } } } } } }
    }"""
    body = await api.gql(query, {"n": 5, "m": 5}, token=token)
    # 5 problems, each with 5 solutions: 5 x (1 + 5).
    assert body["extensions"]["cost"]["requested"] == 30
    body = await api.gql(query, {"n": 100, "m": 100}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert body["errors"][0]["extensions"]["cost"] > MAX_COST
    assert body["errors"][0]["extensions"]["limit"] == MAX_COST


async def test_deep_nested_pages_are_refused_before_execution(api: Api) -> None:
    token = await api.token("rotterdam")
    page = (
        "problems(first: 100) { edges { node { solutions(first: 100) { edges { node { "
        "comments(first: 100) { edges { node { id } } } } } } } } }"
    )
    query = "{ " + " ".join(f"a{i}: {page}" for i in range(15)) + " }"
    body = await api.gql(query, token=token)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert f"over the limit of {MAX_COST}" in error["message"]
    assert "data" not in body or body["data"] is None


async def test_long_texts_weigh_on_the_cost(api: Api) -> None:
    token = await api.token("rotterdam")
    one_page = "problems(first: 100) { edges { node { body } } }"
    body = await api.gql("{ " + one_page + " }", token=token)
    assert "errors" not in body
    assert body["extensions"]["cost"]["requested"] == 100 * (1 + 20)  # a body: 50,000 / 2,500
    pages = "{ " + " ".join(f"p{i}: {one_page}" for i in range(5)) + " }"
    body = await api.gql(pages, token=token)
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_every_result_carries_its_cost(api: Api) -> None:
    token = await api.token("rotterdam")
    await api.data(PUBLISH_PROBLEM, {"input": problem_input()}, token=token)
    body = await api.gql("{ problems(first: 10) { edges { node { id title } } } }", token=token)
    # requested: the 10 items a page may hold; actual: the one there is.
    assert body["extensions"]["cost"] == {"requested": 10, "actual": 1}


async def test_hundreds_of_mistakes_give_a_few_errors(api: Api) -> None:
    token = await api.token("rotterdam")
    fields = " ".join(f"nope{i}" for i in range(40))
    body = await api.gql("{ viewer { " + fields + " } }", token=token)
    errors = body["errors"]
    assert len(errors) == 5
    assert errors[-1]["extensions"] == {
        "code": "GRAPHQL_VALIDATION_FAILED",
        "requestId": errors[0]["extensions"]["requestId"],
        "omitted": 36,
    }
    directives = " ".join(f"@d{i}" for i in range(900))
    body = await api.gql("{ viewer " + directives + " { subject } }")
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_syntax_errors_are_parse_failures(api: Api) -> None:
    body = await api.gql("{ viewer { subject }")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_a_response_over_the_cap_is_refused_whole(api: Api) -> None:
    token = await api.token("rotterdam")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    # Three bytes each in UTF-8: 60 bodies of 50,000 make 9 MB, within the cost limit.
    body_text = "界" * 50_000
    for i in range(60):
        variables = {"input": problem_input(f"Problem {i}", body=body_text)}
        content = json.dumps({"query": PUBLISH_PROBLEM, "variables": variables}, ensure_ascii=False)
        response = await api.http.post("/graphql", content=content.encode(), headers=headers)
        assert response.json()["data"]["publishProblem"]["userErrors"] == []
    response = await api.http.post(
        "/graphql",
        json={"query": "{ problems(first: 60) { edges { node { body } } } }"},
        headers=headers,
    )
    assert len(response.content) < 1_000
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "RESPONSE_TOO_LARGE"
    assert error["extensions"]["limit"] == MAX_RESPONSE_BYTES
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    assert "data" not in response.json()
    small = await api.data("{ problems(first: 5) { edges { node { body } } } }", token=token)
    assert [edge["node"]["body"] for edge in small["problems"]["edges"]] == [body_text] * 5

    # The same over a socket: a `next` with the error instead, and the socket goes on.
    async with live_server(api.settings) as address, Subscriber.connect(address, token) as ws:
        await ws.acknowledged()
        big = await ws.subscribe("{ problems(first: 60) { edges { node { body } } } }")
        message = await ws.next()
        assert (message["id"], message["type"]) == (big, "next")
        assert message["payload"]["data"] is None
        assert message["payload"]["errors"][0]["extensions"]["code"] == "RESPONSE_TOO_LARGE"
        fine = await ws.subscribe("{ problems(first: 1) { edges { node { title } } } }")
        message = await ws.next()
        while message["id"] != fine:
            message = await ws.next()
        assert message["payload"]["data"]["problems"]["edges"][0]["node"]["title"]


async def test_fields_repeated_under_one_name_are_refused(api: Api) -> None:
    """Validation compares every pair of fields under one response name: hundreds of them
    would take seconds of it, so more than a few are refused first, with or without a token."""
    repeated = "{ viewer { " + " ".join(["subject"] * 11) + " } }"
    for token in (None, await api.token("rotterdam")):
        body = await api.gql(repeated, token=token)
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert "under one response name" in error["message"]
    through_fragments = (
        "{ viewer { ...A ...B } } fragment A on Viewer { subject subject subject subject "
        "subject subject } fragment B on Viewer { subject subject subject subject subject }"
    )
    body = await api.gql(through_fragments, token=await api.token("rotterdam"))
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_refused_and_invalid_documents_cost_a_point(api: Api) -> None:
    token = await api.token("rotterdam")
    headers = {"Authorization": f"Bearer {token}"}

    async def used(query: str) -> int:
        response = await api.http.post("/graphql", json={"query": query}, headers=headers)
        return int(response.headers["x-ratelimit-used"])

    start = await used("{ viewer { subject } }")
    assert await used("{ viewer { nope } }") == start + 1  # invalid
    assert await used("{ " + " ".join(f"a{i}: viewer {{ subject }}" for i in range(16)) + " }") == (
        start + 2
    )  # refused by the gate
    assert await used("{ problems(first: 100) { edges { node { id } } } }") == start + 3


async def test_lists_of_long_texts_weigh_on_the_cost(api: Api) -> None:
    token = await api.token("rotterdam")
    body = await api.gql(
        "{ solutions(first: 100) { edges { node { successFactors } } } }", token=token
    )
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["cost"] == 100 * (1 + 100)  # 50 notes of 5,000 characters
    body = await api.gql("{ solutions(first: 50) { edges { node { tags } } } }", token=token)
    assert body["extensions"]["cost"]["requested"] == 50 * (1 + 4)


async def test_fields_that_rank_cost_a_surcharge_each_time_they_run(api: Api) -> None:
    token = await api.token("rotterdam")
    query = (
        "query($n: Int) { problems(first: $n) { edges { node {"
        " suggestedSolutions(first: 5) { edges { score } } } } } }"
    )
    # A suggestion list's `related` search runs per parent: ten lists of five do not fit in
    # MAX_COST, nine do.
    body = await api.gql(query, {"n": 10}, token=token)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["cost"] == 10 * (1 + 1_000 + 5 * 1) == 10_060
    body = await api.gql(query, {"n": 9}, token=token)
    assert "errors" not in body, body
    assert body["extensions"]["cost"]["requested"] == 9 * (1 + 1_000 + 5 * 1) == 9_054
    body = await api.gql('{ search(query: "flood") { edges { score } } }', token=token)
    assert body["extensions"]["cost"]["requested"] == 100 + 20


async def test_introspection_counts_its_aliases_and_fields(api: Api) -> None:
    aliases = " ".join(f"a{i}: types {{ name }}" for i in range(16))
    body = await api.gql("{ __schema { " + aliases + " } }", token=await api.token("rotterdam"))
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_page_sizes_sent_as_floats_cost_what_they_ask(api: Api) -> None:
    token = await api.token("rotterdam")
    query = "query($n: Int) { problems(first: $n) { edges { node { id } } } }"
    as_int = await api.gql(query, {"n": 100}, token=token)
    as_float = await api.gql(query, {"n": 100.0}, token=token)
    assert as_float["extensions"]["cost"] == as_int["extensions"]["cost"]
    assert as_int["extensions"]["cost"]["requested"] == 100


async def test_an_operation_past_its_time_budget_starts_no_more_work(api: Api) -> None:
    """Every resolver asks the context for the caller; past the deadline the answer is
    OPERATION_TIMED_OUT, so an operation stops starting work (and a mutation writes nothing)."""
    schema = build_schema(production=False)
    principal = Principal("rotterdam", "tester", frozenset({"read", "publish"}), "tests")
    late = Context(
        db=api.db,
        request_id="late",
        principal=principal,
        auth_error=None,
        deadline=time.monotonic() - 1,
    )
    result = await schema.execute(
        PUBLISH_PROBLEM, {"input": problem_input("Too late")}, context_value=late
    )
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "OPERATION_TIMED_OUT", "requestId": "late"}
    assert await api.db.problems.count_documents({}) == 0
