"""Persisted documents over HTTP: automatic persisted queries (Apollo's protocol), hash-only
GETs, the shared store with its TTL, the learning bound, trusted documents for listed clients,
and `cityexchange documents register` with Apollo and Relay manifests."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from cityexchange.app import create_app
from cityexchange.auth.realms import RealmRegistry
from cityexchange.auth.tokens import issue_access_token
from cityexchange.services.persisted_documents import DocumentCache, PersistedDocument
from cityexchange.settings import Settings
from tests.conftest import Api, on_configured_database, run_cli
from tests.live_support import Subscriber, live_server

pytestmark = pytest.mark.usefixtures("two_cities")

GRAPHQL_RESPONSE = "application/graphql-response+json"
VIEWER = "query Me { viewer { subject } }"
MOBILE = "rotterdam-mobile-app"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(text: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256(text)}}


async def token_of(api: Api, client_id: str) -> str:
    registry = RealmRegistry(api.db, api.settings.public_url)
    issued = await issue_access_token(
        registry,
        registry.realm("rotterdam"),
        subject="tester",
        scopes=("read", "comment"),
        client_id=client_id,
        audience=api.settings.audience,
        ttl_seconds=900,
    )
    return issued.access_token


async def send(
    api: Api, body: dict[str, Any], token: str | None, accept: str = "application/json"
) -> httpx.Response:
    headers = {"Accept": accept}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return await api.http.post("/graphql", json=body, headers=headers)


async def get(api: Api, params: dict[str, Any], token: str) -> httpx.Response:
    query = {key: json.dumps(value) for key, value in params.items()}
    return await api.http.get(
        "/graphql", params=query, headers={"Authorization": f"Bearer {token}"}
    )


@asynccontextmanager
async def replica(api: Api, **settings: Any) -> AsyncGenerator[Api]:
    """Another process of the service on the same database (its own, empty, cache)."""
    changed = dataclasses.replace(api.settings, **settings)
    async with LifespanManager(create_app(changed)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield Api(http=http, db=api.db, settings=changed)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert "data" not in body, body
    (error,) = body["errors"]
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    found: dict[str, Any] = error
    return found


async def test_an_unknown_hash_is_persisted_query_not_found(api: Api) -> None:
    token = await api.token("rotterdam")
    for accept, status in (("application/json", 200), (GRAPHQL_RESPONSE, 404)):
        response = await send(api, {"extensions": persisted(VIEWER)}, token, accept)
        assert response.status_code == status
        assert response.headers["cache-control"] == "no-store"
        error = error_of(response)
        assert error["message"] == "PersistedQueryNotFound"
        assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_a_text_that_is_not_its_hash_is_refused_and_not_stored(api: Api) -> None:
    token = await api.token("rotterdam")
    wrong = {"query": VIEWER, "extensions": persisted("{ __typename }")}
    response = await send(api, wrong, token)
    assert response.status_code == 400
    assert error_of(response)["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    assert await api.db.db["persisted_documents"].count_documents({}) == 0
    unsupported = {"query": VIEWER, "extensions": {"persistedQuery": {"version": 2}}}
    response = await send(api, unsupported, token)
    assert response.status_code == 400
    assert error_of(response)["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"


async def test_a_learned_document_serves_hash_only_gets_on_every_replica(api: Api) -> None:
    token = await api.token("rotterdam")
    query = "query Page($n: Int) { problems(first: $n) { totalCount } }"
    first = await send(
        api, {"query": query, "variables": {"n": 2}, "extensions": persisted(query)}, token
    )
    assert first.json()["data"]["problems"]["totalCount"] == 0
    # The text is gone from the request: the hash stands for it, in a GET a CDN can cache.
    hit = await get(api, {"extensions": persisted(query), "variables": {"n": 3}}, token)
    assert hit.status_code == 200, hit.text
    assert hit.json()["data"]["problems"]["totalCount"] == 0
    # A shared cache keys it by media type and token, and keeps no token's answer.
    assert hit.headers["vary"] == "Accept, Authorization"
    assert hit.headers["cache-control"] == "private, no-cache"
    anonymous = await api.http.get("/graphql", params={"query": "{ __typename }"})
    assert anonymous.json()["data"] == {"__typename": "Query"}
    assert anonymous.headers["vary"] == "Accept, Authorization"
    assert "cache-control" not in anonymous.headers
    async with replica(api) as other:  # from the database, not this process's cache
        hit = await get(other, {"extensions": persisted(query), "variables": {"n": 3}}, token)
        assert hit.json()["data"]["problems"]["totalCount"] == 0
    stored = await api.db.db["persisted_documents"].find_one({"_id": sha256(query)})
    assert stored is not None
    assert (stored["text"], stored["registered"]) == (query, False)
    assert stored["lastUsedAt"] > datetime.now(UTC) - timedelta(minutes=1)


async def test_a_learned_mutation_is_still_post_only(api: Api) -> None:
    token = await api.token("rotterdam")
    mutation = (
        'mutation { addComment(input: {subjectId: "nope", body: "Same here."}) '
        "{ comment { id } userErrors { code } } }"
    )
    body = {"query": mutation, "extensions": persisted(mutation)}
    learned = await send(api, body, token)
    assert learned.json()["data"]["addComment"]["userErrors"]  # it ran: a payload error
    response = await get(api, {"extensions": persisted(mutation)}, token)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert error_of(response)["extensions"]["code"] == "METHOD_NOT_ALLOWED"


async def test_only_documents_that_validate_are_learned(api: Api) -> None:
    token = await api.token("rotterdam")
    for query in ("{ viewer { nope } }", "{ viewer { subject }", "{ " + "a: viewer " * 2 + "}"):
        response = await send(api, {"query": query, "extensions": persisted(query)}, token)
        assert "data" not in response.json()
        missing = await send(api, {"extensions": persisted(query)}, token)
        assert error_of(missing)["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert await api.db.db["persisted_documents"].count_documents({}) == 0


async def test_learned_documents_expire_unused_and_uses_are_written_once_a_day(
    api: Api,
) -> None:
    indexes = await api.db.db["persisted_documents"].index_information()
    assert indexes["unused"]["key"] == [("lastUsedAt", 1)]
    assert indexes["unused"]["expireAfterSeconds"] == 30 * 86_400
    token = await api.token("rotterdam")
    stale, fresh = "query Stale { viewer { subject } }", "query Fresh { viewer { subject } }"
    for query in (stale, fresh):
        await send(api, {"query": query, "extensions": persisted(query)}, token)
    documents = api.db.db["persisted_documents"]
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    await documents.update_one({"_id": sha256(stale)}, {"$set": {"lastUsedAt": two_days_ago}})
    await documents.update_one({"_id": sha256(fresh)}, {"$set": {"lastUsedAt": an_hour_ago}})
    async with replica(api) as other:
        for query in (stale, fresh):
            hit = await send(other, {"extensions": persisted(query)}, token)
            assert hit.json()["data"]["viewer"]["subject"] == "tester"
    moved = await documents.find_one({"_id": sha256(stale)})
    kept = await documents.find_one({"_id": sha256(fresh)})
    assert moved is not None
    assert kept is not None
    assert moved["lastUsedAt"] > datetime.now(UTC) - timedelta(minutes=1)
    assert kept["lastUsedAt"] == an_hour_ago  # used within the day: no write


async def test_a_client_makes_the_server_store_a_bounded_number_an_hour(api: Api) -> None:
    async with replica(api, persisted_per_hour=2) as bounded:
        token = await bounded.token("rotterdam")
        queries = [f"query Q{i} {{ viewer {{ subject }} }}" for i in range(3)]
        for query in queries:
            ran = await send(bounded, {"query": query, "extensions": persisted(query)}, token)
            assert ran.json()["data"]["viewer"]["subject"] == "tester"  # runs either way
        found = [
            "data" in (await send(bounded, {"extensions": persisted(q)}, token)).json()
            for q in queries
        ]
        assert found == [True, True, False]
        # Another client has its own allowance.
        other = await token_of(bounded, "another-client")
        query = "query Other { viewer { subject } }"
        await send(bounded, {"query": query, "extensions": persisted(query)}, other)
        assert "data" in (await send(bounded, {"extensions": persisted(query)}, other)).json()


def apollo_manifest(*bodies: str) -> dict[str, Any]:
    return {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": sha256(body), "name": f"Op{i}", "type": "query", "body": body}
            for i, body in enumerate(bodies)
        ],
    }


async def register(api: Api, tmp_path: Path, manifest: object) -> dict[str, Any]:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    return await on_configured_database(api, "documents", "register", str(path))


async def test_trusted_clients_run_registered_documents_only(api: Api, tmp_path: Path) -> None:
    registered = "query Mine { viewer { subject scopes } }"
    report = await register(api, tmp_path, apollo_manifest(registered))
    assert report["operations"] == [{"id": sha256(registered), "name": "Op0", "outcome": "added"}]
    async with replica(api, trusted_documents=(MOBILE,)) as prod:
        mobile = await token_of(prod, MOBILE)
        # Registered: by its hash alone, or with its text.
        hit = await send(prod, {"extensions": persisted(registered)}, mobile, GRAPHQL_RESPONSE)
        assert hit.status_code == 200
        assert hit.json()["data"]["viewer"]["subject"] == "tester"
        full = await send(prod, {"query": registered}, mobile)
        assert full.json()["data"]["viewer"]["subject"] == "tester"
        # Anything else is refused, and never learned.
        for body in ({"query": VIEWER}, {"query": VIEWER, "extensions": persisted(VIEWER)}):
            refused = await send(prod, body, mobile, GRAPHQL_RESPONSE)
            assert refused.status_code == 403
            assert error_of(refused)["extensions"]["code"] == "TRUSTED_DOCUMENT_REQUIRED"
        assert await api.db.db["persisted_documents"].count_documents({}) == 1
        # A client off the list runs what it likes.
        portal = await token_of(prod, "rotterdam-portal")
        assert (await send(prod, {"query": VIEWER}, portal)).json()["data"]["viewer"]


async def test_a_learned_document_is_not_trusted_until_registered(api: Api, tmp_path: Path) -> None:
    async with replica(api, trusted_documents=(MOBILE,)) as prod:
        portal, mobile = await token_of(prod, "portal"), await token_of(prod, MOBILE)
        await send(prod, {"query": VIEWER, "extensions": persisted(VIEWER)}, portal)
        refused = await send(prod, {"extensions": persisted(VIEWER)}, mobile)
        assert error_of(refused)["extensions"]["code"] == "TRUSTED_DOCUMENT_REQUIRED"
        await register(api, tmp_path, apollo_manifest(VIEWER))
        # The process's cache held it as learned: a trusted request looks it up again.
        hit = await send(prod, {"extensions": persisted(VIEWER)}, mobile)
        assert hit.json()["data"]["viewer"]["subject"] == "tester"
    stored = await api.db.db["persisted_documents"].find_one({"_id": sha256(VIEWER)})
    assert stored is not None
    assert stored["registered"] is True
    assert "lastUsedAt" not in stored  # registered documents do not expire


async def test_relay_manifests_register_by_their_own_ids(api: Api, tmp_path: Path) -> None:
    text = "query RelayViewer { viewer { subject } }"
    relay_id = hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - relay-compiler's default id
    report = await register(api, tmp_path, {relay_id: text, sha256(VIEWER): VIEWER})
    assert {op["id"]: op["outcome"] for op in report["operations"]} == {
        relay_id: "added",
        sha256(VIEWER): "added",
    }
    again = await register(api, tmp_path, {relay_id: text, sha256(VIEWER): VIEWER})
    assert {op["outcome"] for op in again["operations"]} == {"unchanged"}
    async with replica(api, trusted_documents=(MOBILE,)) as prod:
        mobile = await token_of(prod, MOBILE)
        for document_id in (relay_id, f"sha256:{sha256(VIEWER)}"):
            hit = await send(prod, {"documentId": document_id}, mobile)
            assert hit.json()["data"]["viewer"]["subject"] == "tester", hit.text
        unknown = await send(prod, {"documentId": "no-such-id"}, mobile)
        assert error_of(unknown)["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_a_bad_manifest_is_refused_whole_with_its_errors(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "persisted-query-manifest.json"
    path.write_text("{not json")
    code, _, err = await run_cli(api, "documents", "register", str(path))
    assert code != 0
    assert "is not a persisted-query manifest" in err

    manifest = apollo_manifest(VIEWER, "{ viewer { nope } }", "{ viewer {")
    manifest["operations"][0]["id"] = sha256("something else")
    path.write_text(json.dumps(manifest))
    code, out, err = await run_cli(api, "documents", "register", str(path))
    assert code != 0
    assert "3 of 3 operations have errors" in err
    errors = {e["name"]: e["errors"] for e in json.loads(out)["errors"]}
    assert "is not the SHA-256 of the body" in errors["Op0"][0]
    assert "Cannot query field 'nope'" in errors["Op1"][0]
    assert "Syntax Error" in errors["Op2"][0]
    assert await api.db.db["persisted_documents"].count_documents({}) == 0


async def test_requests_without_a_token_learn_by_their_address(api: Api) -> None:
    query = "query Anonymous { __typename }"
    ran = await send(api, {"query": query, "extensions": persisted(query)}, None)
    assert ran.json()["data"] == {"__typename": "Query"}
    stored = await api.db.db["persisted_documents"].find_one({"_id": sha256(query)})
    assert stored is not None
    assert stored["learnedBy"].startswith("address:")


def test_trusted_clients_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "CITYEXCHANGE_TRUSTED_DOCUMENTS": "ios-app, android-app,",
            "CITYEXCHANGE_PERSISTED_PER_HOUR": "7",
        }
    )
    assert settings.trusted_documents == ("ios-app", "android-app")
    assert settings.persisted_per_hour == 7


async def test_the_learned_size_cap_counts_utf8_bytes(api: Api) -> None:
    token = await api.token("rotterdam")
    # Under 64 Ki characters, but four bytes each: over 64 KiB of UTF-8.
    query = "{ __typename } #" + "\U0001f600" * 20_000
    ran = await send(api, {"query": query, "extensions": persisted(query)}, token)
    assert ran.json()["data"] == {"__typename": "Query"}  # it runs ...
    again = await send(api, {"extensions": persisted(query)}, token)
    assert error_of(again)["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"  # ... unstored


async def test_only_the_integer_1_is_a_supported_version(api: Api) -> None:
    token = await api.token("rotterdam")
    for version in (True, 1.0, "1", 2):
        extensions = {"persistedQuery": {"version": version, "sha256Hash": sha256(VIEWER)}}
        response = await send(api, {"query": VIEWER, "extensions": extensions}, token)
        assert error_of(response)["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"


def test_the_process_cache_forgets_a_document_after_a_minute() -> None:
    clock = [0.0]
    cache = DocumentCache(seconds=60, clock=lambda: clock[0])
    cache.keep(PersistedDocument("id", "{ a }", registered=True, last_used=None))
    assert cache.get("id") is not None
    clock[0] = 59.9
    assert cache.get("id") is not None
    clock[0] = 60.0  # re-registered elsewhere meanwhile? read it again
    assert cache.get("id") is None


async def test_trusted_clients_run_registered_documents_only_on_the_socket_too(
    api: Api, tmp_path: Path
) -> None:
    registered = "query Mine { viewer { subject } }"
    await register(api, tmp_path, apollo_manifest(registered))
    prod = dataclasses.replace(api.settings, trusted_documents=(MOBILE,))
    async with live_server(prod) as address:
        mobile = await token_of(api, MOBILE)
        async with Subscriber.connect(address, mobile) as socket:
            await socket.acknowledged()
            await socket.subscribe("mutation { __typename }")  # not registered
            refused = await socket.next()
            assert refused["type"] == "error"
            assert refused["payload"][0]["extensions"]["code"] == "TRUSTED_DOCUMENT_REQUIRED"
            for payload in ({"query": registered}, {"extensions": persisted(registered)}):
                await socket.ws.send(
                    json.dumps({"id": "p", "type": "subscribe", "payload": payload})
                )
                answer = await socket.next()
                assert answer["type"] == "next", answer
                assert answer["payload"]["data"]["viewer"]["subject"] == "tester"
                assert (await socket.next())["type"] == "complete"


async def test_a_malformed_subscribe_is_bad_request_not_a_server_error(api: Api) -> None:
    async with live_server(api.settings) as address:
        token = await token_of(api, "rotterdam-portal")
        async with Subscriber.connect(address, token) as socket:
            await socket.acknowledged()
            for payload in (
                {"query": ""},
                {"query": "  "},
                {"query": "{ __typename }", "operationName": 5},
            ):
                await socket.ws.send(
                    json.dumps({"id": "x", "type": "subscribe", "payload": payload})
                )
                refused = await socket.next()
                assert refused["type"] == "error", refused
                assert refused["payload"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_document_ids_the_database_cannot_hold_are_bad_requests(api: Api) -> None:
    token = await api.token("rotterdam")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for body in (
        '{"documentId": "\\ud800"}',  # a lone surrogate, escaped: valid UTF-8 JSON
        '{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "\\ud800"}}}',
        json.dumps({"documentId": "x" * 10_000}),
    ):
        response = await api.http.post("/graphql", content=body, headers=headers)
        assert response.status_code == 400, response.text
        assert error_of(response)["extensions"]["code"] == "BAD_REQUEST"


async def test_the_socket_runs_persisted_documents_and_refuses_what_http_refuses(
    api: Api,
) -> None:
    token = await api.token("rotterdam")
    learned = "query Learned { viewer { subject } }"
    await send(api, {"query": learned, "extensions": persisted(learned)}, token)
    async with live_server(api.settings) as address, Subscriber.connect(address, token) as socket:
        await socket.acknowledged()
        await socket.ws.send(
            json.dumps(
                {"id": "h", "type": "subscribe", "payload": {"extensions": persisted(learned)}}
            )
        )
        answer = await socket.next()
        assert answer["type"] == "next", answer
        assert answer["payload"]["data"]["viewer"]["subject"] == "tester"
        assert (await socket.next())["type"] == "complete"
        for payload, code in (
            ({"extensions": persisted("{ unknown }")}, "PERSISTED_QUERY_NOT_FOUND"),
            ({"query": "{ __typename }", "extensions": "x"}, "BAD_REQUEST"),
            ({"query": "subscription { events { id } }", "operationName": "X"}, "BAD_REQUEST"),
        ):
            await socket.ws.send(json.dumps({"id": "r", "type": "subscribe", "payload": payload}))
            refused = await socket.next()
            assert refused["type"] == "error", refused
            assert refused["payload"][0]["extensions"]["code"] == code
        assert refused["payload"][0]["message"] == 'Unknown operation named "X".'
