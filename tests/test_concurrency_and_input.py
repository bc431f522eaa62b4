"""Concurrent writers, and inputs that must come back as BAD_USER_INPUT."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from cityexchange.app import create_app
from cityexchange.schema.relay import expect_global_id
from cityexchange.services import problems
from cityexchange.services.principal import Principal
from cityexchange.services.store.database import Database
from cityexchange.services.store.events import events_after, latest_seq
from cityexchange.services.taxonomy import Hazard
from cityexchange.services.visibility import SYSTEM_VIEWER
from cityexchange.settings import Settings
from tests.conftest import Api, add_city
from tests.queries import (
    ADD_COMMENT,
    PUBLISH_PROBLEM,
    PUBLISH_SOLUTION,
    UPDATE_PROBLEM,
    problem_input,
)

pytestmark = pytest.mark.usefixtures("two_cities")

CONCURRENT_WRITERS = 50
CONCURRENT_WRITES = 300


def local_id(global_id: str) -> str:
    return expect_global_id(global_id, ("Comment",), field="id")[1]


@pytest.fixture
async def roomy_api(settings: Settings, db: Database) -> AsyncIterator[Api]:
    """The app with rate limits above what the burst below spends (they are not its subject)."""
    roomy = dataclasses.replace(
        settings,
        rate_limit_points=10_000_000,
        comments_per_hour=10 * CONCURRENT_WRITES,
        # Fifty writers queue for the event counter: on a slow machine a write waits longer
        # than a request's usual budget. Whether any fails, not how fast, is the subject.
        operation_timeout_ms=30_000,
    )
    async with LifespanManager(create_app(roomy)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield Api(http=http, db=db, settings=roomy)


async def test_fifty_concurrent_writers_all_succeed_numbered_in_commit_order(
    roomy_api: Api,
) -> None:
    """Every write takes the event counter; at concurrency 50 none may be reported failed,
    and the change stream (commit order) must see the numbers consecutive and increasing."""
    token = await roomy_api.token("lagos", subject="lagos-cro")
    problem = (await roomy_api.data(PUBLISH_PROBLEM, {"input": problem_input()}, token=token))[
        "publishProblem"
    ]["problem"]
    first = await latest_seq(roomy_api.db) + 1
    committed: list[int] = []
    async with await roomy_api.db.events.watch([{"$match": {"operationType": "insert"}}]) as stream:

        async def follow() -> None:
            async for change in stream:
                committed.append(int(change["documentKey"]["_id"]))
                if len(committed) == CONCURRENT_WRITES:
                    return

        following = asyncio.create_task(follow())
        gate = asyncio.Semaphore(CONCURRENT_WRITERS)

        async def add(i: int) -> dict[str, object]:
            async with gate:
                body = await roomy_api.gql(
                    ADD_COMMENT,
                    {"input": {"subjectId": problem["id"], "body": f"#{i}"}},
                    token=token,
                )
            assert not body.get("errors"), body["errors"]
            comment: dict[str, object] = body["data"]["addComment"]["comment"]
            return comment

        added = await asyncio.gather(*(add(i) for i in range(CONCURRENT_WRITES)))
        async with asyncio.timeout(30):  # a bound on a hang, not a measurement
            await following
    assert committed == list(range(first, first + CONCURRENT_WRITES))  # no gap, no duplicate
    assert await roomy_api.db.comments.count_documents({}) == CONCURRENT_WRITES
    events = await events_after(
        roomy_api.db, {}, after=first - 1, limit=CONCURRENT_WRITES + 1, viewer=SYSTEM_VIEWER
    )
    assert [e.seq for e in events] == committed
    assert {e.subject_id for e in events} == {local_id(str(c["id"])) for c in added}


async def test_writers_of_two_processes_conflict_on_the_counter_and_all_succeed(
    settings: Settings, db: Database
) -> None:
    """Two clients stand for two API replicas: each queues its own writers, but the two
    conflict in the database and retry; none may fail, and the numbers stay consecutive."""
    assert settings.mongodb_uri is not None
    other = Database.connect(
        settings.mongodb_uri.value,
        settings.db_name,
        server_selection_timeout_ms=3000,
        timeout_ms=60_000,  # as the `db` fixture's: retries, not their speed, are the subject
    )
    writer = Principal("rotterdam", "cro", frozenset({"read", "publish"}), "tests")
    gate = asyncio.Semaphore(20)

    async def publish(client: Database, i: int) -> None:
        draft = problems.ProblemDraft(title=f"#{i}", summary="s", hazards=[Hazard.FLOOD])
        async with gate:
            await problems.publish(db=client, actor=writer, draft=draft)

    try:
        await asyncio.gather(*(publish((db, other)[i % 2], i) for i in range(80)))
    finally:
        await other.close()
    numbers = [doc["_id"] async for doc in db.events.find({}, {"_id": 1}).sort("_id")]
    assert numbers == list(range(1, 81))


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
