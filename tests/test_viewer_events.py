"""Follow-driven live events: what a person and their city follow (sectors included) and the
filters they saved select `viewer.feed` over HTTP and `viewerEvents` over the socket alike,
resuming by cursor, and never showing what the viewer may not see."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cityexchange.schema.relay import to_global_id
from cityexchange.services import problems
from cityexchange.services.principal import Principal
from cityexchange.services.taxonomy import Hazard, Sector, Urgency
from cityexchange.services.visibility import Visibility, VisibilityLevel
from tests.conftest import Api, add_city
from tests.live_support import Subscriber, live_server

FOLLOW = """mutation($input: FollowInput!) { follow(input: $input) {
  follows { kind value forCity } userErrors { code field message } } }"""
SAVE = """mutation($input: SaveFilterInput!) { saveFilter(input: $input) {
  savedFilter { name createdAt updatedAt filter { cities hazards sectors urgency thread } }
  userErrors { code field message } clientMutationId } }"""
DELETE = """mutation($name: String!) { deleteSavedFilter(input: {name: $name}) {
  deletedName userErrors { code field message } } }"""
SAVED = """{ viewer { savedFilters { name filter { cities urgency } } } }"""
FEED = """query($after: String) { viewer { feed(first: 20, after: $after) { totalCount
  edges { cursor node { type subject { ... on Problem { title } } } } } } }"""
LIVE = """subscription($after: String) { viewerEvents(after: $after) {
  cursor type subject { ... on Problem { title } } } }"""


def _writer(city: str) -> Principal:
    return Principal(city, "cro", frozenset({"read", "publish", "comment"}), "tests")


async def _publish(
    api: Api,
    city: str,
    title: str,
    *,
    hazard: Hazard = Hazard.HEAT_WAVE,
    sectors: list[Sector] | None = None,
    urgency: Urgency | None = None,
    visibility: Visibility | None = None,
) -> str:
    problem = await problems.publish(
        db=api.db,
        actor=_writer(city),
        draft=problems.ProblemDraft(
            title=title,
            summary="s",
            hazards=[hazard],
            sectors=sectors,
            urgency=urgency,
            visibility=visibility,
        ),
    )
    return problem.id


async def _choose(api: Api, token: str) -> None:
    """Lagos's CRO follows floods and the water sector, and saves "Pune's crises"."""
    for kind, value in (("HAZARD", "FLOOD"), ("SECTOR", "WATER")):
        data = await api.data(FOLLOW, {"input": {"kind": kind, "value": value}}, token=token)
        assert data["follow"]["userErrors"] == []
    crises = {"cities": ["pune"], "urgency": ["ACTIVE_CRISIS"]}
    data = await api.data(SAVE, {"input": {"name": "Pune's crises", "filter": crises}}, token=token)
    assert data["saveFilter"]["userErrors"] == []
    assert data["saveFilter"]["savedFilter"]["filter"] == {
        "cities": ["pune"],
        "hazards": [],
        "sectors": [],
        "urgency": ["ACTIVE_CRISIS"],
        "thread": None,
    }


async def _the_day(api: Api) -> None:
    """Five problems; Lagos's choices select three of them."""
    await _publish(api, "rotterdam", "Quay walls", hazard=Hazard.FLOOD)  # followed hazard
    await _publish(api, "pune", "Hot nights")  # Pune, but routine
    await _publish(api, "rotterdam", "Pumps", sectors=[Sector.WATER])  # followed sector
    await _publish(api, "lagos", "Markets in the heat")  # nothing Lagos chose
    await _publish(api, "pune", "Heat emergency", urgency=Urgency.ACTIVE_CRISIS)  # saved filter


CHOSEN = ["Quay walls", "Pumps", "Heat emergency"]


@pytest.fixture
async def address(api: Api) -> AsyncIterator[str]:
    for slug in ("rotterdam", "lagos", "pune"):
        await add_city(api.db, slug)
    async with live_server(api.settings) as address:
        yield address


async def _titles(socket: Subscriber, n: int) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for _ in range(n):
        message = await socket.next()
        assert message["type"] == "next", message
        event = message["payload"]["data"]["viewerEvents"]
        found.append((event["subject"]["title"], event["cursor"]))
    return found


async def test_follows_and_saved_filters_select_the_feed(api: Api) -> None:
    for slug in ("rotterdam", "lagos", "pune"):
        await add_city(api.db, slug)
    token = await api.token("lagos", ("read",), subject="ada")
    await _choose(api, token)
    await _the_day(api)
    feed = (await api.data(FEED, token=token))["viewer"]["feed"]
    assert [e["node"]["subject"]["title"] for e in feed["edges"]] == CHOSEN
    assert feed["totalCount"] == 3
    saved = (await api.data(SAVED, token=token))["viewer"]["savedFilters"]
    assert saved == [
        {"name": "Pune's crises", "filter": {"cities": ["pune"], "urgency": ["ACTIVE_CRISIS"]}}
    ]
    # Someone else in Lagos has chosen nothing: their feed is empty.
    other = await api.token("lagos", ("read",), subject="bola")
    assert (await api.data(FEED, token=other))["viewer"]["feed"]["edges"] == []


async def test_viewer_events_are_the_feed_live_and_resume_by_cursor(api: Api, address: str) -> None:
    token = await api.token("lagos", ("read",), subject="ada")
    await _choose(api, token)
    async with Subscriber.connect(address, token) as socket:
        await socket.acknowledged()
        await socket.subscribe(LIVE)
        await asyncio.sleep(0.3)  # the subscription listens before anything happens
        await _the_day(api)
        live = await _titles(socket, 3)
        assert [title for title, _ in live] == CHOSEN
        assert await socket.silent(0.3)
    # A reconnection after the first event gets the two after it, once, from the log.
    async with Subscriber.connect(address, token) as socket:
        await socket.acknowledged()
        await socket.subscribe(LIVE, {"after": live[0][1]})
        assert await _titles(socket, 2) == live[1:]
        await _publish(api, "rotterdam", "Dunes", hazard=Hazard.FLOOD)
        assert [title for title, _ in await _titles(socket, 1)] == ["Dunes"]
        assert await socket.silent(0.3)
    feed = (await api.data(FEED, token=token))["viewer"]["feed"]
    assert [e["node"]["subject"]["title"] for e in feed["edges"]] == [*CHOSEN, "Dunes"]


async def test_viewer_events_show_only_what_the_viewer_may_see(api: Api, address: str) -> None:
    token = await api.token("lagos", ("read",), subject="ada")
    await _choose(api, token)
    async with Subscriber.connect(address, token) as socket:
        await socket.acknowledged()
        await socket.subscribe(LIVE)
        await asyncio.sleep(0.3)
        own = Visibility(VisibilityLevel.CITY)
        await _publish(api, "rotterdam", "Rotterdam's own", hazard=Hazard.FLOOD, visibility=own)
        await _publish(api, "rotterdam", "For everyone", hazard=Hazard.FLOOD)
        assert [title for title, _ in await _titles(socket, 1)] == ["For everyone"]
        assert await socket.silent(0.3)
    feed = (await api.data(FEED, token=token))["viewer"]["feed"]
    assert [e["node"]["subject"]["title"] for e in feed["edges"]] == ["For everyone"]
    assert feed["totalCount"] == 1


async def test_saving_again_replaces_and_bad_input_changes_nothing(api: Api) -> None:
    await add_city(api.db, "lagos")
    token = await api.token("lagos", ("read",), subject="ada")

    async def save(name: str, filter: dict[str, Any]) -> dict[str, Any]:
        payload: dict[str, Any] = (
            await api.data(SAVE, {"input": {"name": name, "filter": filter}}, token=token)
        )["saveFilter"]
        return payload

    first = await save("Floods", {"hazards": ["FLOOD"]})
    again = await save(" Floods ", {"hazards": ["FLOOD", "COASTAL_FLOOD"]})
    assert again["savedFilter"]["name"] == "Floods"
    assert again["savedFilter"]["createdAt"] == first["savedFilter"]["createdAt"]
    assert again["savedFilter"]["filter"]["hazards"] == ["FLOOD", "COASTAL_FLOOD"]
    for name in ("", "x" * 101, "line\nbreak"):
        refused = await save(name, {"hazards": ["FLOOD"]})
        assert refused["savedFilter"] is None
        assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
            ("BAD_USER_INPUT", ["input", "name"])
        ]
    too_many = await save("Tags", {"tags": [f"t{i}" for i in range(1000)]})
    assert too_many["userErrors"][0]["code"] == "BAD_USER_INPUT"
    bad_thread = await save("Thread", {"thread": "not-an-id"})
    assert bad_thread["userErrors"][0]["code"] == "BAD_USER_INPUT"
    # Every value is bounded and checked, not only how many there are.
    for refused_filter, field in [
        ({"tags": ["x" * 200_000]}, "tags"),
        ({"tags": ["flood\u202e"]}, "tags"),
        ({"cities": ["lagos\u0000"]}, "cities"),
        ({"cities": ["x" * 200_000]}, "cities"),
        ({"thread": to_global_id("Problem", "junk" * 1000)}, "thread"),
    ]:
        refused = await save("Bounded", refused_filter)
        assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
            ("BAD_USER_INPUT", ["input", "filter", field])
        ], refused_filter
    for i in range(19):
        assert (await save(f"Filter {i:02}", {}))["userErrors"] == []
    over = await save("One more", {})
    assert over["userErrors"][0]["message"] == "you have 20 saved filters already"
    assert (await save("Floods", {"hazards": ["FLOOD"]}))["userErrors"] == []  # a replacement
    saved = (await api.data(SAVED, token=token))["viewer"]["savedFilters"]
    assert len(saved) == 20

    gone = await api.data(DELETE, {"name": "Floods"}, token=token)
    assert gone["deleteSavedFilter"] == {"deletedName": "Floods", "userErrors": []}
    missing = await api.data(DELETE, {"name": "Floods"}, token=token)
    assert missing["deleteSavedFilter"]["userErrors"][0]["code"] == "NOT_FOUND"
    # Another person's filters are theirs: Bola neither sees nor deletes Ada's.
    bola = await api.token("lagos", ("read",), subject="bola")
    assert (await api.data(SAVED, token=bola))["viewer"]["savedFilters"] == []
    theirs = await api.data(DELETE, {"name": "Filter 00"}, token=bola)
    assert theirs["deleteSavedFilter"]["userErrors"][0]["code"] == "NOT_FOUND"

    bad = await api.data(FOLLOW, {"input": {"kind": "SECTOR", "value": "LAVA"}}, token=token)
    assert [(e["code"], e["field"]) for e in bad["follow"]["userErrors"]] == [
        ("BAD_USER_INPUT", ["input", "value"])
    ]


async def test_a_saved_filter_keeps_its_thread(api: Api) -> None:
    await add_city(api.db, "rotterdam")
    problem = await _publish(api, "rotterdam", "Quay walls")
    token = await api.token("rotterdam", ("read",), subject="ada")
    thread = to_global_id("Problem", problem)
    saved = await api.data(
        SAVE, {"input": {"name": "Quay", "filter": {"thread": thread}}}, token=token
    )
    assert saved["saveFilter"]["savedFilter"]["filter"]["thread"] == thread
    feed = (await api.data(FEED, token=token))["viewer"]["feed"]
    assert [e["node"]["subject"]["title"] for e in feed["edges"]] == ["Quay walls"]


async def test_concurrent_saves_stop_at_the_cap(api: Api) -> None:
    """Counting and saving race; the cap is held by the write: of 30 new names saved at once,
    exactly 20 are kept."""
    await add_city(api.db, "lagos")
    token = await api.token("lagos", ("read",), subject="ada")

    async def save(i: int) -> list[dict[str, Any]]:
        input = {"name": f"Filter {i:02}", "filter": {"hazards": ["FLOOD"]}}
        errors: list[dict[str, Any]] = (await api.data(SAVE, {"input": input}, token=token))[
            "saveFilter"
        ]["userErrors"]
        return errors

    results = await asyncio.gather(*(save(i) for i in range(30)))
    assert sum(bool(errors) for errors in results) == 10
    assert len((await api.data(SAVED, token=token))["viewer"]["savedFilters"]) == 20
