"""The HTTP edge: body cap, health, metrics, request ids, limits, masking, prod mode."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from bson import ObjectId

from cityexchange.app import create_app
from cityexchange.schema.relay import to_global_id
from cityexchange.services.clock import now
from cityexchange.settings import Settings
from tests.conftest import Api

pytestmark = pytest.mark.usefixtures("two_cities")


async def test_a_300_kib_body_gets_413(api: Api) -> None:
    token = await api.token("rotterdam")
    padding = "x" * (300 * 1024)
    response = await api.http.post(
        "/graphql",
        json={"query": "{ viewer { subject } }", "variables": {"p": padding}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 413
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "REQUEST_TOO_LARGE"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: streamed
        for _ in range(30):
            yield b" " * (10 * 1024)

    response = await api.http.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_health_readiness_and_metrics(api: Api) -> None:
    assert (await api.http.get("/healthz")).json() == {"status": "ok"}
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    token = await api.token("rotterdam")
    await api.data("query Mine { viewer { subject } }", token=token)
    await api.gql("{ viewer { subject } }")
    metrics = (await api.http.get("/metrics")).text
    assert 'cityexchange_db_commands_total{command="ping",origin="request"}' in metrics
    assert (
        'cityexchange_graphql_operations_total{operation="Mine",outcome="ok",type="query"} 1.0'
    ) in metrics
    assert 'operation="anonymous",outcome="UNAUTHENTICATED"' in metrics
    assert "cityexchange_graphql_operation_seconds_bucket" in metrics


async def test_every_response_carries_a_request_id(api: Api) -> None:
    response = await api.http.get("/healthz", headers={"X-Request-ID": "my-request-0001"})
    assert response.headers["x-request-id"] == "my-request-0001"
    response = await api.http.get("/healthz", headers={"X-Request-ID": "bad id\n"})
    assert len(response.headers["x-request-id"]) == 16


async def test_unexpected_errors_are_masked_and_logged_with_the_request_id(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    # A document no code path can produce (an unknown status) makes the mapper fail.
    oid = ObjectId()
    await api.db.problems.insert_one(
        {
            "_id": oid,
            "city": "rotterdam",
            "title": "t",
            "summary": "s",
            "hazards": ["FLOOD"],
            "status": "ON_FIRE",
            "urgency": "ROUTINE",
            "version": 1,
            "createdAt": now(),
            "updatedAt": now(),
        }
    )
    token = await api.token("rotterdam")
    with caplog.at_level(logging.ERROR, logger="cityexchange.graphql"):
        response = await api.http.post(
            "/graphql",
            json={
                "query": "query($id: ID!) { node(id: $id) { id } }",
                "variables": {"id": to_global_id("Problem", str(oid))},
            },
            headers={"Authorization": f"Bearer {token}"},
        )
    error = response.json()["errors"][0]
    request_id = response.headers["x-request-id"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    assert "ON_FIRE" not in error["message"]
    assert request_id in error["message"]
    assert any(request_id in record.getMessage() for record in caplog.records)


def _nested(fields: list[str]) -> str:
    return "{ " + " { ".join(fields) + " { id" + " }" * (len(fields) + 1)


@pytest.mark.parametrize(
    "query",
    [
        _nested(
            [
                "problems",
                "edges",
                "node",
                "comments",
                "edges",
                "node",
                "replies",
                "edges",
                "node",
                "replies",
                "edges",
                "node",
            ]
        ),
        "{ " + " ".join(f"a{i}: viewer {{ subject }}" for i in range(16)) + " }",
        "{ viewer { " + " ".join(["subject"] * 2100) + " } }",
    ],
    ids=["depth", "aliases", "tokens"],
)
async def test_oversized_queries_are_too_complex(api: Api, query: str) -> None:
    token = await api.token("rotterdam")
    body = await api.gql(query, token=token)
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_page_sizes_are_capped(api: Api) -> None:
    token = await api.token("rotterdam")
    body = await api.gql("{ problems(first: 101) { totalCount } }", token=token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["field"] == ["first"]


async def test_get_serves_queries_but_not_mutations(api: Api) -> None:
    token = await api.token("rotterdam")
    headers = {"Authorization": f"Bearer {token}"}
    response = await api.http.get(
        "/graphql", params={"query": "{ viewer { subject } }"}, headers=headers
    )
    assert response.json()["data"]["viewer"]["subject"] == "tester"
    mutation = 'mutation { addComment(input: {subjectId: "x", body: "y"}) { comment { id } } }'
    response = await api.http.get("/graphql", params={"query": mutation}, headers=headers)
    assert response.status_code == 405  # GraphQL over HTTP: mutations are POST only
    assert response.headers["allow"] == "POST"
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    assert "data" not in response.json()


async def test_development_mode_has_graphiql_and_introspection(api: Api) -> None:
    page = await api.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    token = await api.token("rotterdam")
    data = await api.data("{ __schema { queryType { name } } }", token=token)
    assert data["__schema"]["queryType"]["name"] == "Query"


@pytest.fixture
async def prod_api(settings: Settings, api: Api) -> AsyncIterator[Api]:
    prod = dataclasses.replace(settings, env="prod", public_url="https://x.example.org")
    app = create_app(prod)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield Api(http=http, db=api.db, settings=prod)


async def test_production_hides_graphiql_introspection_and_suggestions(prod_api: Api) -> None:
    page = await prod_api.http.get("/graphql", headers={"Accept": "text/html"})
    assert "graphiql" not in page.text.lower()
    token = await prod_api.token("rotterdam")
    body = await prod_api.gql("{ __schema { queryType { name } } }", token=token)
    assert body["errors"]
    for query in (
        "{ viewr { subject } }",
        "{ problems(fitler: {}) { totalCount } }",
        "{ problems(filter: {hazards: [FLOD]}) { totalCount } }",
    ):
        body = await prod_api.gql(query, token=token)
        message = body["errors"][0]["message"]
        assert "Did you mean" not in message, message
