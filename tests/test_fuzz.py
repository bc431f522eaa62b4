"""Generated documents against the whole schema, over HTTP (hypothesis-graphql): valid
documents and documents with one violation, queries and mutations. No answer is a 5xx or an
INTERNAL_SERVER_ERROR, every error carries a code, and no mutation reaches another city."""

from __future__ import annotations

from typing import Any

import graphql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, queries

from cityexchange.schema.root import build_schema
from tests.conftest import Api
from tests.queries import PUBLISH_PROBLEM, problem_input

pytestmark = pytest.mark.usefixtures("two_cities")

SCHEMA = build_schema(production=False)._schema  # pyright: ignore[reportPrivateUsage]


def strings(*texts: str) -> st.SearchStrategy[graphql.StringValueNode]:
    return st.sampled_from(texts).map(lambda text: graphql.StringValueNode(value=text))


VALID_SCALARS = {
    "DateTime": strings("2026-01-01T00:00:00Z", "1999-12-31T23:59:59+05:30"),
    "Date": strings("2026-01-01", "1999-12-31"),
}
ANY_SCALARS = {
    "DateTime": strings("2026-01-01T00:00:00Z", "not a date", "9999-99-99", ""),
    "Date": strings("2026-01-01", "0000-00-00", "", "2026-02-30"),
}
CODES_FOR_VALID = {"GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED"}
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same documents on every run: a failure reproduces
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def documents(mode: Mode) -> st.SearchStrategy[Any]:
    scalars = VALID_SCALARS if mode is Mode.POSITIVE else ANY_SCALARS
    return st.one_of(
        queries(SCHEMA, custom_scalars=scalars, mode=mode),
        mutations(SCHEMA, custom_scalars=scalars, mode=mode),
    )


async def answer(api: Api, query: str, token: str) -> dict[str, Any]:
    response = await api.http.post(
        "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code < 500 or response.status_code == 503, response.text
    body: dict[str, Any] = response.json()
    for error in body.get("errors", []):
        code = error.get("extensions", {}).get("code")
        assert code is not None, error
        assert code != "INTERNAL_SERVER_ERROR", (query, error)
    return body


@pytest.fixture
async def lagos_problem(api: Api) -> tuple[str, str]:
    token = await api.token("lagos")
    data = await api.data(PUBLISH_PROBLEM, {"input": problem_input("Lagos floods")}, token=token)
    return data["publishProblem"]["problem"]["id"], token


@FUZZ
@given(document=documents(Mode.POSITIVE))
async def test_valid_documents(api: Api, lagos_problem: tuple[str, str], document: str) -> None:
    token = await api.token("rotterdam")
    body = await answer(api, document, token)
    for error in body.get("errors", []):
        assert error["extensions"]["code"] not in CODES_FOR_VALID, (document, error)
    await lagos_unchanged(api, lagos_problem)


@FUZZ
@given(document=documents(Mode.NEGATIVE))
async def test_documents_with_a_violation(
    api: Api, lagos_problem: tuple[str, str], document: str
) -> None:
    token = await api.token("rotterdam")
    body = await answer(api, document, token)
    assert body.get("errors"), document
    await lagos_unchanged(api, lagos_problem)


async def lagos_unchanged(api: Api, lagos_problem: tuple[str, str]) -> None:
    problem_id, token = lagos_problem
    data = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Problem { title version } } }",
        {"id": problem_id},
        token=token,
    )
    assert data["node"] == {"title": "Lagos floods", "version": 1}
