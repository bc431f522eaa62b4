"""Keyset pagination: no repeats and no gaps while other problems are being inserted."""

from __future__ import annotations

import asyncio
import base64
import json

from cityexchange.services import problems
from cityexchange.services.principal import Principal
from cityexchange.services.taxonomy import Hazard
from tests.conftest import Api, add_city

PAGE = """
query Page($after: String) {
  problems(first: 7, after: $after) {
    totalCount
    edges { cursor node { id title } }
    pageInfo { hasNextPage endCursor hasPreviousPage startCursor }
  }
}"""
WRITER = Principal("rotterdam", "cro", frozenset({"read", "publish"}), "tests")


async def _publish(api: Api, title: str) -> str:
    problem = await problems.publish(
        db=api.db,
        actor=WRITER,
        draft=problems.ProblemDraft(title=title, summary="s", hazards=[Hazard.FLOOD]),
    )
    return problem.id


async def test_paging_while_others_insert_returns_each_existing_problem_once(api: Api) -> None:
    await add_city(api.db, "rotterdam")
    token = await api.token("rotterdam")
    existing = {await _publish(api, f"Existing {i}") for i in range(30)}
    seen: list[str] = []
    inserted = 0
    after = None
    while True:
        # Another city publishes between every two pages the client fetches.
        writer = asyncio.create_task(_publish(api, f"New {inserted}"))
        data = (await api.data(PAGE, {"after": after}, token=token))["problems"]
        await writer
        inserted += 1
        seen.extend(
            e["node"]["title"] for e in data["edges"] if e["node"]["title"].startswith("Existing")
        )
        assert data["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == len(existing)
    assert inserted >= 5


async def test_walking_backwards_mirrors_walking_forwards(api: Api) -> None:
    await add_city(api.db, "rotterdam")
    token = await api.token("rotterdam")
    for i in range(10):
        await _publish(api, f"P{i}")
    forward = await api.data(
        "{ problems(first: 10, orderBy: CREATED_AT_ASC) { edges { cursor node { title } } } }",
        token=token,
    )
    titles = [e["node"]["title"] for e in forward["problems"]["edges"]]
    assert titles == [f"P{i}" for i in range(10)]
    last_cursor = forward["problems"]["edges"][-1]["cursor"]
    backward = await api.data(
        "query($before: String) { problems(last: 3, before: $before, orderBy: CREATED_AT_ASC)"
        " { edges { node { title } } pageInfo { hasPreviousPage hasNextPage } } }",
        {"before": last_cursor},
        token=token,
    )
    page = backward["problems"]
    assert [e["node"]["title"] for e in page["edges"]] == ["P6", "P7", "P8"]
    assert page["pageInfo"] == {"hasPreviousPage": True, "hasNextPage": True}


async def test_a_cursor_from_another_list_is_bad_input(api: Api) -> None:
    await add_city(api.db, "rotterdam")
    token = await api.token("rotterdam")
    await _publish(api, "P")
    data = await api.data("{ problems { edges { cursor } } }", token=token)
    cursor = data["problems"]["edges"][0]["cursor"]
    for query, variables in (
        ("query($a: String) { solutions(after: $a) { totalCount } }", {"a": cursor}),
        ("query($a: String) { problems(after: $a) { totalCount } }", {"a": "garbage!"}),
        (
            "query($a: String) { problems(after: $a, orderBy: UPDATED_AT_DESC) { totalCount } }",
            {"a": cursor},
        ),
    ):
        body = await api.gql(query, variables, token=token)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body


def _held(text: str, *, padded: bool = False) -> str:
    """A cursor as clients already hold it: base64url of its position, unpadded."""
    encoded = base64.urlsafe_b64encode(text.encode()).decode()
    return encoded if padded else encoded.rstrip("=")


async def test_cursors_already_held_by_clients_still_page(api: Api) -> None:
    """Page cursors are base64url of [list.order, sort value, id]; event cursors of "ev:N"
    (mobile clients keep them for offline catch-up). Padded ones are accepted too."""
    await add_city(api.db, "rotterdam")
    token = await api.token("rotterdam")
    ids = [await _publish(api, f"P{i}") for i in range(3)]
    query = (
        "query($a: String) { problems(first: 1, after: $a, orderBy: CREATED_AT_ASC)"
        " { edges { cursor node { title } } } }"
    )
    data = await api.data(query, token=token)
    first = await problems.get(db=api.db, actor=WRITER, id=ids[0])
    millis = int(first.created_at.timestamp() * 1000)
    held = _held(json.dumps(["P.CREATED_AT_ASC", {"d": millis}, ids[0]], separators=(",", ":")))
    assert data["problems"]["edges"][0]["cursor"] == held
    for after in (held, held + "=" * (-len(held) % 4)):
        page = await api.data(query, {"a": after}, token=token)
        assert [e["node"]["title"] for e in page["problems"]["edges"]] == ["P1"]

    feed = "query($a: String) { feed(first: 1, after: $a) { edges { cursor node { id } } } }"
    events = await api.data(feed, token=token)
    assert events["feed"]["edges"][0]["cursor"] == _held("ev:1")
    for after in (_held("ev:1"), _held("ev:1", padded=True)):
        page = await api.data(feed, {"a": after}, token=token)
        (edge,) = page["feed"]["edges"]
        assert edge["cursor"] == _held("ev:2")
