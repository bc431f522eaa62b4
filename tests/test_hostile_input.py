"""Inputs an attacker sends: each gets a 4xx or a coded error with the request id, never a
500 or an unmasked error."""

from __future__ import annotations

import base64
import json

import pytest

from tests.conftest import Api
from tests.queries import PUBLISH_PROBLEM, problem_input

pytestmark = pytest.mark.usefixtures("two_cities")


def request_error(response_json: dict[str, object]) -> dict[str, object]:
    assert "data" not in response_json
    (error,) = response_json["errors"]  # type: ignore[misc]
    extensions: dict[str, object] = error["extensions"]
    return extensions


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (
            b'{"query": "{ viewer { subject } }", "x": "\xff\xfe"}',
            "application/json",
            400,
            "BAD_REQUEST",
        ),
        (b"{not json", "application/json", 400, "BAD_REQUEST"),
        (b'[{"query": "{ viewer { subject } }"}]', "application/json", 400, "BAD_REQUEST"),
        (b'{"query": 5}', "application/json", 400, "BAD_REQUEST"),
        (
            b'{"query": "{ viewer { subject } }", "variables": []}',
            "application/json",
            400,
            "BAD_REQUEST",
        ),
        (b"query=%7B%7D", "application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b"{ viewer { subject } }", "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b"{}", "application/json", 400, "BAD_REQUEST"),
    ],
    ids=[
        "not-utf8",
        "not-json",
        "batch",
        "query-not-string",
        "variables-not-object",
        "form",
        "text",
        "no-query",
    ],
)
async def test_malformed_requests_are_json_request_errors(
    api: Api, content: bytes, content_type: str, status: int, code: str
) -> None:
    response = await api.http.post(
        "/graphql", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    extensions = request_error(response.json())
    assert extensions["code"] == code
    assert extensions["requestId"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    "title",
    [
        "nul \x00 inside",
        "right-to-left \u202e override",
        "zero\u200bwidth",
        "line\nbreak",
        "bom \ufeff",
    ],
    ids=["nul", "bidi-override", "zero-width", "newline", "bom"],
)
async def test_refused_characters_are_user_errors(api: Api, title: str) -> None:
    token = await api.token("rotterdam")
    content = json.dumps(
        {"query": PUBLISH_PROBLEM, "variables": {"input": problem_input(title)}}
    ).encode()
    response = await api.http.post(
        "/graphql",
        content=content,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    payload = response.json()["data"]["publishProblem"]
    (error,) = payload["userErrors"]
    assert error["code"] == "BAD_USER_INPUT"
    assert error["field"] == ["input", "title"]
    assert "must not contain the character U+" in error["message"]
    assert payload["problem"] is None


async def test_joiners_that_scripts_need_are_kept(api: Api) -> None:
    token = await api.token("rotterdam")
    # "I want" in Persian needs a ZWNJ; a family emoji is a ZWJ sequence.
    title = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \U0001f469\u200d\U0001f467"
    data = await api.data(PUBLISH_PROBLEM, {"input": problem_input(title)}, token=token)
    assert data["publishProblem"]["problem"]["title"] == title


def cursor(value: object) -> str:
    raw = json.dumps(["CREATED_AT_DESC", value, "5f0000000000000000000000"]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "after",
    [
        cursor({"d": 10**30}),
        cursor(10**30),
        cursor({"d": -(10**20)}),
        cursor([1]),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "!!!",
    ],
    ids=["huge-date", "huge-int", "negative-date", "list", "not-utf8", "not-base64"],
)
async def test_forged_cursors_are_bad_input(api: Api, after: str) -> None:
    token = await api.token("rotterdam")
    body = await api.gql(
        "query($after: String) { problems(after: $after) { totalCount } }",
        {"after": after},
        token=token,
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_forged_event_cursors_are_bad_input(api: Api) -> None:
    token = await api.token("rotterdam")
    for position in ("²", "9" * 40, "-1"):
        after = base64.urlsafe_b64encode(f"ev:{position}".encode()).decode()
        body = await api.gql(
            "query($after: String) { feed(after: $after) { edges { cursor } } }",
            {"after": after},
            token=token,
        )
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body


async def test_lone_surrogates_are_refused_before_they_run(api: Api) -> None:
    """JSON can carry a lone surrogate (the escape \\ud800), UTF-8 and so the database
    cannot: in any variable, or in the document, it is refused before anything runs."""
    token = await api.token("rotterdam")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for document, variables, code in (
        (PUBLISH_PROBLEM, {"input": problem_input("\ud800 lone surrogate")}, "BAD_USER_INPUT"),
        (
            "query($t: [String!]) { problems(filter: {tags: $t}) { totalCount } }",
            {"t": ["\udfff"]},
            "BAD_USER_INPUT",
        ),
        ('{ city(slug: "\ud800") { name } }', {}, "GRAPHQL_PARSE_FAILED"),  # the parser's own
    ):
        content = json.dumps({"query": document, "variables": variables}).encode()
        response = await api.http.post("/graphql", content=content, headers=headers)
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == code, error
        assert response.json().get("data") is None


@pytest.mark.parametrize(
    "content",
    [b"null", b'"x"', b"1", b"true", b"[" * 5000 + b"]" * 5000, "{}".encode("utf-16")],
    ids=["null", "string", "number", "boolean", "nested-5000", "utf-16"],
)
async def test_bodies_that_are_not_a_json_object_are_bad_requests(api: Api, content: bytes) -> None:
    response = await api.http.post(
        "/graphql", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert request_error(response.json())["code"] == "BAD_REQUEST"


async def test_deeply_nested_variables_over_get_are_bad_requests(api: Api) -> None:
    response = await api.http.get(
        "/graphql",
        params={"query": "{ viewer { subject } }", "variables": "[" * 3000 + "]" * 3000},
    )
    assert response.status_code == 400, response.text
    assert request_error(response.json())["code"] == "BAD_REQUEST"


async def test_a_token_nested_to_death_is_unauthenticated(api: Api) -> None:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    token = part(b'{"alg":"ES256","typ":"at+jwt"}') + "." + part(b"[" * 3000 + b"]" * 3000)
    response = await api.http.post(
        "/graphql",
        json={"query": "{ viewer { subject } }"},
        headers={"Authorization": f"Bearer {token}.c2ln"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_cursors_and_dates_that_overflow_are_bad_input(api: Api) -> None:
    token = await api.token("rotterdam")
    nested = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode()
    for query, variables in (
        ("query($a: String) { problems(after: $a) { totalCount } }", {"a": nested}),
        (
            "query($d: DateTime) { problems(filter: {createdAfter: $d}) { totalCount } }",
            {"d": "9999-12-31T23:59:59-23:59"},
        ),
    ):
        body = await api.gql(query, variables, token=token)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
