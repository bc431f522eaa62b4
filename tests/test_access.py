"""Changing who may see a problem: visibility, teams and embargoes, as clients see it happen.

Narrowing while a subscriber watches tells it WITHDRAWN; widening tells the newcomers it was
published; a team brings a person or an organisation of any city in; an embargoed draft
publishes itself, also when its time came while no service ran.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from cityexchange.auth.realms import RealmRegistry
from cityexchange.auth.tokens import issue_access_token
from cityexchange.schema.relay import to_global_id
from cityexchange.services import comments, embargoes, organisations, problems
from cityexchange.services.clock import now
from cityexchange.services.models import Affiliation, OrganisationDraft, Person
from cityexchange.services.principal import Principal
from cityexchange.services.store import people as people_store
from cityexchange.services.taxonomy import Hazard, OrganisationKind, Role
from cityexchange.services.visibility import Embargo, Visibility, VisibilityLevel
from cityexchange.settings import Settings
from tests.conftest import Api, add_city
from tests.live_support import Subscriber, live_server

AUTHOR = Principal("rotterdam", "cro", frozenset({"read", "publish", "comment"}), "tests")

SET = """mutation($input: SetVisibilityInput!) { setVisibility(input: $input) {
  problem { id version visibility { level cities networks embargoUntil publishAs } }
  userErrors { code field message } } }"""
ADD = """mutation($input: AddTeamMemberInput!) { addTeamMember(input: $input) {
  problem { id version team { role person { id } organisation { id } } }
  userErrors { code field message } } }"""
REMOVE = """mutation($input: RemoveTeamMemberInput!) { removeTeamMember(input: $input) {
  problem { id version team { role } } userErrors { code field message } } }"""
NODE = """query($id: ID!) { node(id: $id) { ... on Problem { id title version
  comments(first: 5) { totalCount } } } }"""
UPDATE = """mutation($input: UpdateProblemInput!) { updateProblem(input: $input) {
  problem { id version } userErrors { code message } } }"""
EVENTS = """subscription { events { type subjectId subject { __typename } } }"""
FEED = """query { feed(first: 50) { edges { node { type subjectId } } } }"""


async def _cities(api: Api) -> None:
    for slug in ("rotterdam", "lagos", "pune"):
        await add_city(api.db, slug)


async def _problem(api: Api, visibility: Visibility) -> tuple[str, int]:
    problem = await problems.publish(
        db=api.db,
        actor=AUTHOR,
        draft=problems.ProblemDraft("Dike", "s", [Hazard.FLOOD], visibility=visibility),
    )
    await comments.add(
        db=api.db,
        actor=AUTHOR,
        subject_kind="Problem",
        subject_id=problem.id,
        parent_id=None,
        body="a note",
    )
    return to_global_id("Problem", problem.id), problem.version


async def _person(api: Api, city: str, username: str) -> Person:
    return await people_store.insert_person(
        api.db,
        Person(
            "",
            city,
            username,
            username.title(),
            Role.MEMBER,
            Affiliation("x", OrganisationKind.NGO),
        ),
    )


@pytest.fixture
async def address(api: Api) -> AsyncIterator[str]:
    await _cities(api)
    async with live_server(api.settings) as address:
        yield address


async def _next_types(socket: Subscriber, n: int) -> list[tuple[str, str, Any]]:
    found: list[tuple[str, str, Any]] = []
    for _ in range(n):
        message = await socket.next()
        event = message["payload"]["data"]["events"]
        found.append((event["type"], event["subjectId"], event["subject"]))
    return found


async def test_narrowing_while_watching_withdraws_it_from_those_who_lose_it(
    api: Api, address: str
) -> None:
    problem, version = await _problem(api, Visibility())
    author = await api.token("rotterdam", subject="cro")
    tokens = {
        "lagos": await api.token("lagos", ("read",), subject="l"),
        "pune": await api.token("pune", ("read",), subject="p"),
    }
    async with (
        Subscriber.connect(address, tokens["lagos"]) as lagos,
        Subscriber.connect(address, tokens["pune"]) as pune,
    ):
        for socket in (lagos, pune):
            await socket.acknowledged()
            await socket.subscribe(EVENTS)
        await asyncio.sleep(0.3)
        shared = {"level": "SHARED", "cities": ["lagos"]}
        data = await api.data(
            SET,
            {"input": {"subjectId": problem, "version": version, "visibility": shared}},
            token=author,
        )
        assert data["setVisibility"]["userErrors"] == []
        assert data["setVisibility"]["problem"]["visibility"]["cities"] == ["lagos"]
        assert await _next_types(lagos, 1) == [
            ("PROBLEM_UPDATED", problem, {"__typename": "Problem"})
        ]
        # Pune is told, by id; what it was is no longer Pune's to read.
        assert await _next_types(pune, 1) == [("WITHDRAWN", problem, None)]
        assert await lagos.silent(0.3)
        assert await pune.silent(0.3)
    assert (await api.data(NODE, {"id": problem}, token=tokens["pune"]))["node"] is None
    seen = (await api.data(NODE, {"id": problem}, token=tokens["lagos"]))["node"]
    assert seen["comments"]["totalCount"] == 1  # its comment went with it
    # Pune's feed keeps only the withdrawal: the problem's own events went with it.
    feed = (await api.data(FEED, token=tokens["pune"]))["feed"]["edges"]
    assert [e["node"]["type"] for e in feed] == ["WITHDRAWN"]
    lagos_feed = (await api.data(FEED, token=tokens["lagos"]))["feed"]["edges"]
    assert [e["node"]["type"] for e in lagos_feed] == [
        "PROBLEM_PUBLISHED",
        "COMMENT_ADDED",
        "PROBLEM_UPDATED",
    ]


async def test_widening_tells_the_newcomers_it_was_published(api: Api, address: str) -> None:
    problem, version = await _problem(api, Visibility(VisibilityLevel.DRAFT))
    author = await api.token("rotterdam", subject="cro")
    agency = await api.token("rotterdam", ("read",), subject="agency")
    assert (await api.data(NODE, {"id": problem}, token=agency))["node"] is None
    async with (
        Subscriber.connect(address, agency) as watching,
        Subscriber.connect(address, author) as own,
    ):
        for socket in (watching, own):
            await socket.acknowledged()
            await socket.subscribe(EVENTS)
        await asyncio.sleep(0.3)
        data = await api.data(
            SET,
            {"input": {"subjectId": problem, "version": version, "visibility": {"level": "CITY"}}},
            token=author,
        )
        assert data["setVisibility"]["userErrors"] == []
        assert await _next_types(watching, 1) == [
            ("PROBLEM_PUBLISHED", problem, {"__typename": "Problem"})
        ]
        assert await _next_types(own, 1) == [
            ("PROBLEM_UPDATED", problem, {"__typename": "Problem"})
        ]
    seen = (await api.data(NODE, {"id": problem}, token=agency))["node"]
    assert seen["comments"]["totalCount"] == 1
    # A stale version is a conflict, and only the lead or an admin changes it.
    stale = await api.data(
        SET,
        {"input": {"subjectId": problem, "version": version, "visibility": {"level": "PUBLIC"}}},
        token=author,
    )
    assert [e["code"] for e in stale["setVisibility"]["userErrors"]] == ["CONFLICT"]
    other = await api.gql(
        SET,
        {
            "input": {
                "subjectId": problem,
                "version": version + 1,
                "visibility": {"level": "PUBLIC"},
            }
        },
        token=await api.token("rotterdam", ("read", "publish"), subject="agency"),
    )
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN", other


async def test_a_team_brings_people_and_organisations_of_any_city_in(api: Api) -> None:
    await _cities(api)
    problem, version = await _problem(api, Visibility(VisibilityLevel.DRAFT))
    author = await api.token("rotterdam", subject="cro")
    engineer = await _person(api, "lagos", "engineer")
    engineer_token = await api.token("lagos", ("read", "publish"), subject=engineer.id)
    assert (await api.data(NODE, {"id": problem}, token=engineer_token))["node"] is None
    data = await api.data(
        ADD,
        {
            "input": {
                "subjectId": problem,
                "version": version,
                "memberId": to_global_id("Person", engineer.id),
                "role": "CONTRIBUTOR",
            }
        },
        token=author,
    )
    assert data["addTeamMember"]["userErrors"] == []
    version = data["addTeamMember"]["problem"]["version"]
    roles = [m["role"] for m in data["addTeamMember"]["problem"]["team"]]
    assert roles == ["LEAD", "CONTRIBUTOR"]
    # The contributor of another city reads and edits it; their city's others do not see it.
    seen = (await api.data(NODE, {"id": problem}, token=engineer_token))["node"]
    assert seen["title"] == "Dike"
    edit = await api.data(
        UPDATE,
        {"input": {"id": problem, "version": version, "title": "Dike, revised"}},
        token=engineer_token,
    )
    assert edit["updateProblem"]["userErrors"] == []
    version = edit["updateProblem"]["problem"]["version"]
    colleague = await api.token("lagos", ("read",), subject="someone-else")
    assert (await api.data(NODE, {"id": problem}, token=colleague))["node"] is None

    # An organisation on the team: every token acting for it reads the draft.
    utility = await organisations.add_organisation(
        db=api.db,
        draft=OrganisationDraft("pune", "Pune Water", OrganisationKind.UTILITY),
    )
    data = await api.data(
        ADD,
        {
            "input": {
                "subjectId": problem,
                "version": version,
                "memberId": to_global_id("Organisation", utility.id),
                "role": "OBSERVER",
            }
        },
        token=author,
    )
    assert data["addTeamMember"]["userErrors"] == []
    version = data["addTeamMember"]["problem"]["version"]
    registry = RealmRegistry(api.db, api.settings.public_url)
    issued = await issue_access_token(
        registry,
        registry.realm("pune"),
        subject="portal",
        scopes=("read", "publish"),
        client_id="utility-portal",
        audience=api.settings.audience,
        ttl_seconds=300,
        organisation=utility.id,
    )
    seen = (await api.data(NODE, {"id": problem}, token=issued.access_token))["node"]
    assert seen["title"] == "Dike, revised"
    observed = await api.gql(
        UPDATE,
        {"input": {"id": problem, "version": version, "title": "no"}},
        token=issued.access_token,
    )
    assert observed["errors"][0]["extensions"]["code"] == "FORBIDDEN"  # an observer reads

    # Removing: the person loses it at once; the last lead stays.
    data = await api.data(
        REMOVE,
        {
            "input": {
                "subjectId": problem,
                "version": version,
                "memberId": to_global_id("Person", engineer.id),
            }
        },
        token=author,
    )
    assert data["removeTeamMember"]["userErrors"] == []
    version = data["removeTeamMember"]["problem"]["version"]
    assert (await api.data(NODE, {"id": problem}, token=engineer_token))["node"] is None
    feed = (await api.data(FEED, token=engineer_token))["feed"]["edges"]
    assert [e["node"]["type"] for e in feed][-1:] == ["WITHDRAWN"]
    lead = await api.data(
        REMOVE,
        {
            "input": {
                "subjectId": problem,
                "version": version,
                "memberId": to_global_id("Person", "cro"),
            }
        },
        token=author,
    )
    assert [e["code"] for e in lead["removeTeamMember"]["userErrors"]] == ["BAD_USER_INPUT"]
    missing = await api.data(
        ADD,
        {
            "input": {
                "subjectId": problem,
                "version": version,
                "memberId": to_global_id("Person", "0" * 24),
                "role": "OBSERVER",
            }
        },
        token=author,
    )
    assert [e["code"] for e in missing["addTeamMember"]["userErrors"]] == ["NOT_FOUND"]
    # A role that does not exist is refused before anything runs, with a code (never a 500).
    captain = await api.gql(
        ADD,
        {
            "input": {
                "subjectId": problem,
                "version": version,
                "memberId": to_global_id("Person", engineer.id),
                "role": "CAPTAIN",
            }
        },
        token=author,
    )
    assert captain["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", captain


async def test_an_embargoed_draft_publishes_itself_when_its_time_comes(
    api: Api, settings: Settings
) -> None:
    await _cities(api)
    author = await api.token("rotterdam", subject="cro")
    pune = await api.token("pune", ("read",), subject="p")
    until = (now() + timedelta(seconds=1)).isoformat()
    publish = """mutation($input: PublishProblemInput!) { publishProblem(input: $input) {
      problem { id visibility { level embargoUntil publishAs } } userErrors { code field } } }"""
    base = {"title": "Barrier opens", "summary": "s", "hazards": ["FLOOD"]}
    bad = await api.data(
        publish,
        {
            "input": {
                **base,
                "visibility": {"level": "CITY", "embargoUntil": until, "publishAs": "PUBLIC"},
            }
        },
        token=author,
    )
    assert [e["code"] for e in bad["publishProblem"]["userErrors"]] == ["BAD_USER_INPUT"]
    half = await api.data(
        publish,
        {"input": {**base, "visibility": {"level": "DRAFT", "embargoUntil": until}}},
        token=author,
    )
    assert [e["code"] for e in half["publishProblem"]["userErrors"]] == ["BAD_USER_INPUT"]
    data = await api.data(
        publish,
        {
            "input": {
                **base,
                "visibility": {"level": "DRAFT", "embargoUntil": until, "publishAs": "PUBLIC"},
            }
        },
        token=author,
    )
    problem = data["publishProblem"]["problem"]
    assert problem["visibility"]["level"] == "DRAFT"
    assert problem["visibility"]["publishAs"] == "PUBLIC"
    assert (await api.data(NODE, {"id": problem["id"]}, token=pune))["node"] is None
    fast = dataclasses.replace(settings, embargo_poll_seconds=0.1)
    async with live_server(fast) as address, Subscriber.connect(address, pune) as socket:
        await socket.acknowledged()
        await socket.subscribe(EVENTS)
        assert await _next_types(socket, 1) == [
            ("PROBLEM_PUBLISHED", problem["id"], {"__typename": "Problem"})
        ]
    assert (await api.data(NODE, {"id": problem["id"]}, token=pune))["node"][
        "title"
    ] == "Barrier opens"


async def test_an_embargo_that_ended_while_nothing_ran_publishes_at_the_next_poll(
    api: Api,
) -> None:
    await _cities(api)
    until = now() + timedelta(hours=1)
    embargoed = Visibility(
        VisibilityLevel.DRAFT,
        cities=("lagos",),
        embargo=Embargo(until=until, level=VisibilityLevel.SHARED),
    )
    problem, _ = await _problem(api, embargoed)
    lagos = await api.token("lagos", ("read",), subject="l")
    assert await embargoes.publish_due(api.db) == 0  # not yet due
    # The service was "stopped" past the end: the first poll after it publishes, once.
    later = until + timedelta(minutes=5)
    assert await embargoes.publish_due(api.db, at=later) == 1
    assert await embargoes.publish_due(api.db, at=later) == 0
    seen = (await api.data(NODE, {"id": problem}, token=lagos))["node"]
    assert seen["comments"]["totalCount"] == 1
    pune = await api.token("pune", ("read",), subject="p")
    assert (await api.data(NODE, {"id": problem}, token=pune))["node"] is None


async def test_narrowing_again_takes_back_the_events_of_the_widening(api: Api) -> None:
    await _cities(api)
    problem, version = await _problem(api, Visibility(VisibilityLevel.DRAFT))
    author = await api.token("rotterdam", subject="cro")
    pune = await api.token("pune", ("read",), subject="p")
    for level in ("PUBLIC", "DRAFT"):
        data = await api.data(
            SET,
            {"input": {"subjectId": problem, "version": version, "visibility": {"level": level}}},
            token=author,
        )
        assert data["setVisibility"]["userErrors"] == []
        version = data["setVisibility"]["problem"]["version"]
    # What Pune was told when it gained the draft went back with it: only the withdrawal is left.
    feed = (await api.data(FEED, token=pune))["feed"]["edges"]
    assert [(e["node"]["type"], e["node"]["subjectId"]) for e in feed] == [("WITHDRAWN", problem)]
