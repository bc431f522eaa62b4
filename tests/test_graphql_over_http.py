"""GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/): the media type
negotiated by Accept, the status codes of each, request errors without `data`, and
graphql-http's server audits against the live app."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from cityexchange.services import persisted_documents
from tests.conftest import Api
from tests.live_support import live_server

pytestmark = pytest.mark.usefixtures("two_cities")

GRAPHQL_RESPONSE = "application/graphql-response+json"
AUDIT = Path(__file__).parent / "http_audit"


async def post(
    api: Api, query: str, accept: str | None, token: str | None = None
) -> httpx.Response:
    headers = {"Accept": accept} if accept is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = api.http.build_request("POST", "/graphql", json={"query": query}, headers=headers)
    if accept is None:
        del request.headers["accept"]  # httpx sends */* unless told not to
    return await api.http.send(request)


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        ("application/json", "application/json"),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE}", "application/json"),
        (f"application/json;q=0.5, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.1, */*", "application/json"),
        (f"text/html, {GRAPHQL_RESPONSE};q=0.8, */*;q=0.1", GRAPHQL_RESPONSE),
        ("application/json;q=0, */*", GRAPHQL_RESPONSE),
    ],
)
async def test_the_media_type_follows_accept(api: Api, accept: str | None, media: str) -> None:
    response = await post(api, "{ __typename }", accept)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == f"{media}; charset=utf-8"
    assert response.json()["data"] == {"__typename": "Query"}


async def test_an_accept_without_either_type_is_406(api: Api) -> None:
    response = await post(api, "{ __typename }", "text/plain, application/xml")
    assert response.status_code == 406
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    (error,) = response.json()["errors"]
    assert error["extensions"] == {
        "code": "NOT_ACCEPTABLE",
        "requestId": response.headers["x-request-id"],
    }


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("{ viewer { subject }", "GRAPHQL_PARSE_FAILED"),
        ("{ nope }", "GRAPHQL_VALIDATION_FAILED"),
        ("query($n: Int!) { __typename }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ " + " ".join(f"a{i}: __typename" for i in range(16)) + " }", "QUERY_TOO_COMPLEX"),
    ],
    ids=["parse", "validation", "unused-variable", "too-complex"],
)
async def test_request_errors_have_no_data_and_400_with_graphql_response_json(
    api: Api, query: str, code: str
) -> None:
    token = await api.token("rotterdam")
    strict = await post(api, query, GRAPHQL_RESPONSE, token)
    assert strict.status_code == 400
    assert strict.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert "data" not in strict.json()
    assert strict.json()["errors"][0]["extensions"]["code"] == code
    # Legacy clients get 200 for every well-formed request, still without `data`.
    legacy = await post(api, query, "application/json", token)
    assert legacy.status_code == 200
    assert "data" not in legacy.json()
    assert legacy.json()["errors"][0]["extensions"]["code"] == code


async def test_variables_that_do_not_coerce_are_a_request_error(api: Api) -> None:
    token = await api.token("rotterdam")
    response = await api.http.post(
        "/graphql",
        json={
            "query": "query($n: Int) { problems(first: $n) { totalCount } }",
            "variables": {"n": "x"},
        },
        headers={"Accept": GRAPHQL_RESPONSE, "Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert "data" not in response.json()


async def test_field_errors_keep_data_and_200(api: Api) -> None:
    """Execution began: `data` is there (null where a field failed), whatever the media."""
    for accept in (GRAPHQL_RESPONSE, "application/json"):
        response = await post(api, "{ viewer { subject } }", accept)  # no token
        assert response.status_code == 200
        body = response.json()
        assert "data" in body
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert body["errors"][0]["path"] == ["viewer"]


async def test_refusals_are_json_with_the_request_id(api: Api) -> None:
    token = await api.token("rotterdam")
    headers = {"Authorization": f"Bearer {token}", "Accept": GRAPHQL_RESPONSE}
    mutation = 'mutation { addComment(input: {subjectId: "x", body: "y"}) { comment { id } } }'
    response = await api.http.get("/graphql", params={"query": mutation}, headers=headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]

    response = await api.http.post(
        "/graphql",
        content=json.dumps({"query": "{ __typename }"}),
        headers={**headers, "Content-Type": "text/plain"},
    )
    assert response.status_code == 415
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]

    response = await api.http.post(
        "/graphql", json={"query": "subscription { events { cursor } }"}, headers=headers
    )
    assert response.status_code == 400
    assert "WebSocket" in response.json()["errors"][0]["message"]

    response = await api.http.head("/graphql", headers=headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"

    # Media types are case-insensitive (RFC 9110 §8.3.1).
    response = await api.http.post(
        "/graphql",
        content=json.dumps({"query": "{ __typename }"}),
        headers={"Content-Type": "APPLICATION/JSON; charset=UTF-8"},
    )
    assert response.json()["data"] == {"__typename": "Query"}

    response = await api.http.post(
        "/graphql", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.json()["errors"][0]["extensions"]["code"]) == (
        400,
        "BAD_REQUEST",
    )


async def test_an_unexpected_failure_is_a_json_500_with_the_request_id(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(**_: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(persisted_documents, "find", broken)
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": "a" * 64}}
    response = await api.http.post("/graphql", json={"extensions": extensions})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/json")
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    assert "secret" not in response.text


async def test_graphql_http_server_audits_pass_without_warnings(api: Api) -> None:
    """graphql-http's serverAudits (tests/http_audit, installed by `./dev test` with npm ci)
    against the app served by uvicorn: no failure, no warning, no notice."""
    assert (AUDIT / "node_modules" / "graphql-http").is_dir(), (
        "tests/http_audit has no node_modules: run the suite with ./dev test (it runs npm ci)"
    )
    async with live_server(api.settings) as address:
        process = await asyncio.create_subprocess_exec(
            "node",
            str(AUDIT / "runner.mjs"),
            f"http://{address}/graphql",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    summary = lines[-1]
    failed = [
        f"{line['status']} {line['id']} {line['name']}: {line['reason']}" for line in lines[:-1]
    ]
    assert process.returncode == 0, "\n".join(failed) or err.decode()
    assert summary["summary"] == {"ok": summary["audits"], "notice": 0, "warn": 0, "error": 0}
    assert summary["audits"] >= 60
