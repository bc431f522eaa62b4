"""Visibility levels, enforced on every read path: the leak matrix.

One city (Rotterdam) publishes a problem and a solution at each level; five viewers read them
through every path a client has (lists and their counts, node and nodes, relations, lineage,
search, the feed, comments, adoptions, mutations that name an id, the live socket and a
webhook). Each must see exactly the levels it may, and a hidden item answers as a missing one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from cityexchange.app import create_app
from cityexchange.auth.realms import RealmRegistry
from cityexchange.auth.tokens import issue_access_token
from cityexchange.schema.relay import to_global_id
from cityexchange.services import (
    access,
    adoptions,
    audiences,
    comments,
    organisations,
    problems,
    solutions,
)
from cityexchange.services.clock import now
from cityexchange.services.events import event_cursor
from cityexchange.services.models import AdoptionStage, OrganisationDraft, Problem
from cityexchange.services.principal import Principal
from cityexchange.services.store import problems as problem_store
from cityexchange.services.store.events import latest_seq
from cityexchange.services.taxonomy import Hazard, OrganisationKind, ProblemStatus, Urgency
from cityexchange.services.visibility import TeamRole, Visibility, VisibilityLevel
from cityexchange.settings import Settings
from tests import test_federation
from tests.conftest import Api, add_city, db_commands
from tests.live_support import Subscriber, live_server
from tests.test_federation import IdentityProvider
from tests.test_webhooks import Receiver, receiving

idp = test_federation.idp  # the trusted identity provider, for the federated viewer

LEVELS = ("DRAFT", "CITY", "SHARED", "PUBLIC")
WORD = "zanzibarish"  # in every title: what the search finds

AUTHOR = Principal("rotterdam", "cro", frozenset({"read", "publish", "comment"}), "tests")
LAGOS = Principal("lagos", "lagos-cro", frozenset({"read", "publish", "comment"}), "tests")

# Who may see which level: the author leads each item's team; the admin sees the city's
# drafts; another actor of the city sees CITY and wider; Lagos is named by SHARED; a client
# bound to Pune's water utility, an observer on every team, sees what its team does.
SEES = {
    "author": {"DRAFT", "CITY", "SHARED", "PUBLIC"},
    "admin": {"DRAFT", "CITY", "SHARED", "PUBLIC"},
    "agency": {"CITY", "SHARED", "PUBLIC"},
    "lagos": {"SHARED", "PUBLIC"},
    "pune": {"PUBLIC"},
    "utility": {"DRAFT", "CITY", "SHARED", "PUBLIC"},
}
LIVE = ("author", "admin", "agency", "lagos", "pune")  # viewers of the socket and webhook tests


def _visibility(level: str) -> Visibility:
    if level == "SHARED":
        return Visibility(VisibilityLevel.SHARED, cities=("lagos",))
    return Visibility(VisibilityLevel(level))


@dataclass
class World:
    api: Api
    problems: dict[str, str]  # level -> global id
    solutions: dict[str, str]
    comments: dict[str, str]
    adoptions: dict[str, str]  # level -> Lagos's adoption of that level's solution
    tokens: dict[str, str]

    def level_of(self, id: str) -> str:
        for kind in (self.problems, self.solutions, self.comments, self.adoptions):
            for level, known in kind.items():
                if known == id:
                    return level
        raise AssertionError(f"an id the world did not write: {id}")

    def levels(self, ids: list[str]) -> set[str]:
        return {self.level_of(id) for id in ids}

    async def data(self, viewer: str, query: str, variables: dict[str, Any] | None = None) -> Any:
        return await self.api.data(query, variables, token=self.tokens[viewer])


async def _world(api: Api) -> World:
    for slug in ("rotterdam", "lagos", "pune"):
        await add_city(api.db, slug)
    db = api.db
    utility = await organisations.add_organisation(
        db=db, draft=OrganisationDraft("pune", "Pune Water", OrganisationKind.UTILITY)
    )
    observer = access.MemberRef("Organisation", utility.id)
    found: dict[str, dict[str, str]] = {"P": {}, "S": {}, "C": {}, "A": {}}
    public_problem = await problems.publish(
        db=db,
        actor=AUTHOR,
        draft=problems.ProblemDraft(f"{WORD} public problem", "s", [Hazard.FLOOD]),
    )
    public_solution = await solutions.publish(
        db=db,
        actor=AUTHOR,
        draft=solutions.SolutionDraft(
            f"{WORD} public solution", "s", [Hazard.FLOOD], problem_ids=[public_problem.id]
        ),
    )
    for level in LEVELS:
        problem = public_problem
        solution = public_solution
        if level != "PUBLIC":
            problem = await problems.publish(
                db=db,
                actor=AUTHOR,
                draft=problems.ProblemDraft(
                    f"{WORD} {level} problem", "s", [Hazard.FLOOD], visibility=_visibility(level)
                ),
            )
            solution = await solutions.publish(
                db=db,
                actor=AUTHOR,
                draft=solutions.SolutionDraft(
                    f"{WORD} {level} solution",
                    "s",
                    [Hazard.FLOOD],
                    problem_ids=[public_problem.id],
                    adapted_from=public_solution.id,
                    visibility=_visibility(level),
                ),
            )
            items: tuple[tuple[access.Kind, str, int], ...] = (
                ("Problem", problem.id, problem.version),
                ("Solution", solution.id, solution.version),
            )
            for kind, id, version in items:
                await access.add_team_member(
                    db=db,
                    actor=AUTHOR,
                    kind=kind,
                    id=id,
                    version=version,
                    member=observer,
                    role=TeamRole.OBSERVER,
                )
        comment = await comments.add(
            db=db,
            actor=AUTHOR,
            subject_kind="Problem",
            subject_id=problem.id,
            parent_id=None,
            body=f"{WORD} note on the {level} problem",
        )
        found["P"][level] = to_global_id("Problem", problem.id)
        found["S"][level] = to_global_id("Solution", solution.id)
        found["C"][level] = to_global_id("Comment", comment.id)
        if level in SEES["lagos"]:
            adoption = await adoptions.adopt(
                db=db, actor=LAGOS, solution_id=solution.id, stage=AdoptionStage.PLANNING
            )
            found["A"][level] = to_global_id("Adoption", adoption.id)
    registry = RealmRegistry(db, api.settings.public_url)
    tokens = {
        "author": await api.token("rotterdam", subject="cro"),
        "admin": await api.token("rotterdam", subject="admin"),
        "agency": await api.token("rotterdam", ("read", "publish", "comment"), subject="agency"),
        "lagos": await api.token("lagos", ("read", "publish", "comment"), subject="lagos-cro"),
        "pune": await api.token("pune", ("read", "publish", "comment"), subject="pune-cro"),
        "utility": (
            await issue_access_token(
                registry,
                registry.realm("pune"),
                subject="water-portal",
                scopes=("read",),
                client_id="pune-water-portal",
                audience=api.settings.audience,
                ttl_seconds=900,
                organisation=utility.id,
            )
        ).access_token,
    }
    return World(api, found["P"], found["S"], found["C"], found["A"], tokens)


@pytest.fixture
async def world(api: Api) -> World:
    return await _world(api)


def _ids(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in connection["edges"]]


LISTS = """query($word: String!) {
  problems(first: 50, filter: {search: $word}) { totalCount edges { node { id } } }
  solutions(first: 50) { totalCount edges { node { id } } }
  city(slug: "rotterdam") {
    problems(first: 50) { totalCount edges { node { id } } }
    solutions(first: 50) { totalCount edges { node { id } } }
  }
}"""


async def test_lists_and_their_counts_show_only_what_the_viewer_may_see(world: World) -> None:
    for viewer in sorted(SEES):
        data = await world.data(viewer, LISTS, {"word": WORD})
        expected = SEES[viewer]
        for connection in (data["problems"], data["city"]["problems"]):
            assert world.levels(_ids(connection)) == expected, viewer
            assert connection["totalCount"] == len(expected), viewer
        # The non-public solutions are adaptations of the public one: one per level.
        for connection in (data["solutions"], data["city"]["solutions"]):
            assert world.levels(_ids(connection)) == expected, viewer
            assert connection["totalCount"] == len(expected), viewer


RELATIONS = """query($problem: ID!, $solution: ID!) {
  problem: node(id: $problem) { ... on Problem {
    solutions(first: 50) { totalCount edges { node { id } } }
    answeredBy { id }
  } }
  solution: node(id: $solution) { ... on Solution {
    adaptations(first: 50) { totalCount edges { node { id } } }
    lineage(depth: 2) { descendants { solution { id } } }
    adoptions(first: 50) { totalCount edges { node { id } } }
  } }
}"""


async def test_relations_lineage_and_children_follow_the_same_rule(world: World) -> None:
    for viewer in sorted(SEES):
        data = await world.data(
            viewer,
            RELATIONS,
            {"problem": world.problems["PUBLIC"], "solution": world.solutions["PUBLIC"]},
        )
        expected = SEES[viewer]
        addressing = data["problem"]["solutions"]
        assert world.levels(_ids(addressing)) == expected, viewer
        assert addressing["totalCount"] == len(expected), viewer
        adaptations = data["solution"]["adaptations"]
        assert world.levels(_ids(adaptations)) == expected - {"PUBLIC"}, viewer
        assert adaptations["totalCount"] == len(expected - {"PUBLIC"}), viewer
        lineage = data["solution"]["lineage"]["descendants"]
        assert world.levels([d["solution"]["id"] for d in lineage]) == expected - {"PUBLIC"}, viewer
        # Lagos adopted the PUBLIC solution; its adoptions of the others hang off those.
        assert world.levels(_ids(data["solution"]["adoptions"])) == {"PUBLIC"}, viewer


NODES = """query($ids: [ID!]!) { nodes(ids: $ids) { id } }"""
NODE = """query($id: ID!) { node(id: $id) { id } }"""
ADOPTIONS_OF = """query($id: ID!) { node(id: $id) { ... on Solution {
  adoptions(first: 5) { totalCount edges { node { id } } } } } }"""


async def test_node_and_nodes_answer_a_hidden_item_as_a_missing_one(world: World) -> None:
    for viewer in sorted(SEES):
        every = [
            *world.problems.values(),
            *world.solutions.values(),
            *world.comments.values(),
            *world.adoptions.values(),
        ]
        data = await world.data(viewer, NODES, {"ids": every})
        shown = [node["id"] for node in data["nodes"] if node is not None]
        assert world.levels(shown) == SEES[viewer], viewer
        for level in set(LEVELS) - SEES[viewer]:
            assert (await world.data(viewer, NODE, {"id": world.problems[level]}))["node"] is None
        for level, solution in world.solutions.items():
            if level in SEES["lagos"] and level in SEES[viewer]:
                found = (await world.data(viewer, ADOPTIONS_OF, {"id": solution}))["node"]
                assert found["adoptions"]["totalCount"] == 1, viewer


SEARCH = """query($word: String!) { search(query: $word, first: 50) {
  totalCount edges { node { __typename ... on Node { id } } } } }"""


async def test_search_finds_only_what_the_viewer_may_see(world: World) -> None:
    for viewer in sorted(SEES):
        data = await world.data(viewer, SEARCH, {"word": WORD})
        found = _ids(data["search"])
        assert world.levels(found) == SEES[viewer], viewer
        # Each visible level has its problem, solution and comment (PUBLIC's once each).
        assert data["search"]["totalCount"] == 3 * len(SEES[viewer]), viewer


FEED = """query { feed(first: 100) { totalCount edges { node {
  type subject { __typename ... on Node { id } } } } } }"""


async def test_the_feed_carries_only_events_about_what_the_viewer_may_see(world: World) -> None:
    for viewer in sorted(SEES):
        data = await world.data(viewer, FEED)
        subjects = [edge["node"]["subject"] for edge in data["feed"]["edges"]]
        assert None not in subjects  # no event whose subject the viewer cannot load
        assert world.levels([s["id"] for s in subjects]) == SEES[viewer], viewer
        assert data["feed"]["totalCount"] == len(subjects), viewer


COMMENT = """mutation($input: AddCommentInput!) { addComment(input: $input) {
  comment { id } userErrors { code field message } } }"""
FACE = """mutation($id: ID!) { faceProblemToo(input: {problemId: $id}) {
  problem { id } userErrors { code field message } } }"""


async def test_acting_on_a_hidden_item_is_not_found_like_a_missing_one(world: World) -> None:
    missing = to_global_id("Problem", "0" * 24)

    def comment(id: str) -> dict[str, Any]:
        return {"input": {"subjectId": id, "body": "hello"}}

    def face(id: str) -> dict[str, Any]:
        return {"id": id}

    for query, variables in ((COMMENT, comment), (FACE, face)):
        hidden = await world.data("pune", query, variables(world.problems["SHARED"]))
        absent = await world.data("pune", query, variables(missing))
        (hidden_payload,) = hidden.values()
        (absent_payload,) = absent.values()
        codes = [e["code"] for e in hidden_payload["userErrors"]]
        assert codes == ["NOT_FOUND"]
        assert [e["code"] for e in absent_payload["userErrors"]] == codes
        # The message names the id asked for and nothing about the item.
        quoted = re.compile(r"'[^']*'")
        assert quoted.sub("X", hidden_payload["userErrors"][0]["message"]) == quoted.sub(
            "X", absent_payload["userErrors"][0]["message"]
        )
    allowed = await world.data("lagos", FACE, {"id": world.problems["SHARED"]})
    assert allowed["faceProblemToo"]["userErrors"] == []


PUBLISH = """mutation($input: PublishProblemInput!) { publishProblem(input: $input) {
  problem { id visibility { level cities networks } } userErrors { code field message } } }"""


async def test_publishing_with_a_visibility_checks_what_it_names(world: World) -> None:
    base = {"title": "t", "summary": "s", "hazards": ["FLOOD"]}
    cases = [
        ({"level": "SHARED"}, "cities"),
        ({"level": "SHARED", "cities": ["atlantis"]}, "cities"),
        ({"level": "SHARED", "networks": ["no-such-network"]}, "networks"),
        ({"level": "CITY", "cities": ["lagos"]}, "level"),
        ({"level": "SHARED", "cities": ["lagos"] * 1 + [f"c{i}" for i in range(200)]}, None),
    ]
    for visibility, field in cases:
        data = await world.data("author", PUBLISH, {"input": {**base, "visibility": visibility}})
        errors = data["publishProblem"]["userErrors"]
        assert data["publishProblem"]["problem"] is None, visibility
        assert [e["code"] for e in errors] == ["BAD_USER_INPUT"], errors
        if field:
            assert errors[0]["field"] == ["input", "visibility", field], errors
    data = await world.data(
        "author",
        PUBLISH,
        {"input": {**base, "visibility": {"level": "SHARED", "cities": ["lagos", "lagos"]}}},
    )
    shown = data["publishProblem"]["problem"]["visibility"]
    assert shown == {"level": "SHARED", "cities": ["lagos"], "networks": []}


EVENTS = """subscription($after: String) { events(after: $after) {
  cursor type subject { __typename ... on Node { id } } } }"""


@pytest.fixture
async def address(api: Api) -> AsyncIterator[str]:
    async with live_server(api.settings) as address:
        yield address


async def test_a_live_subscriber_gets_only_events_it_may_see(world: World, address: str) -> None:
    """Each viewer watches twice on one socket: a subscription of its own, and one with a
    cursor, which shares a group's execution with the identical ones of its city."""
    seen: dict[str, dict[str, list[tuple[str, str]]]] = {}
    cursor = event_cursor(await latest_seq(world.api.db))

    async def watch(viewer: str, ready: asyncio.Event) -> None:
        async with Subscriber.connect(address, world.tokens[viewer]) as socket:
            await socket.acknowledged()
            own = await socket.subscribe(EVENTS)
            shared = await socket.subscribe(EVENTS, {"after": cursor})
            ready.set()
            got: dict[str, list[tuple[str, str]]] = {own: [], shared: []}
            while sum(map(len, got.values())) < 2 * 2 * len(SEES[viewer]):
                message = await socket.next()
                event = message["payload"]["data"]["events"]
                got[message["id"]].append((event["type"], event["subject"]["id"]))
            seen[viewer] = got
            assert await socket.silent(0.3)  # nothing more: not the hidden levels' events

    readies = {viewer: asyncio.Event() for viewer in LIVE}
    tasks = [asyncio.create_task(watch(viewer, readies[viewer])) for viewer in LIVE]
    async with asyncio.timeout(30):
        for ready in readies.values():
            await ready.wait()
        await asyncio.sleep(0.3)  # the subscriptions are live
        published: dict[str, str] = {}
        for level in LEVELS:
            problem = await problems.publish(
                db=world.api.db,
                actor=AUTHOR,
                draft=problems.ProblemDraft(
                    f"live {level}", "s", [Hazard.FLOOD], visibility=_visibility(level)
                ),
            )
            comment = await comments.add(
                db=world.api.db,
                actor=AUTHOR,
                subject_kind="Problem",
                subject_id=problem.id,
                parent_id=None,
                body=f"on the {level} problem",
            )
            published[to_global_id("Problem", problem.id)] = level
            published[to_global_id("Comment", comment.id)] = level
        await asyncio.gather(*tasks)
    for viewer, subscriptions in seen.items():
        expected = [
            (kind, level)
            for level in LEVELS
            if level in SEES[viewer]
            for kind in ("PROBLEM_PUBLISHED", "COMMENT_ADDED")
        ]
        for got in subscriptions.values():
            assert [(kind, published[id]) for kind, id in got] == expected, viewer


HOOK = """mutation($input: RegisterWebhookInput!) { registerWebhook(input: $input) {
  webhook { id } userErrors { code message } } }"""


async def test_a_webhook_delivers_only_what_its_city_may_see(api: Api, settings: Settings) -> None:
    for slug in ("rotterdam", "lagos", "pune"):
        await add_city(api.db, slug)
    lagos, pune = Receiver(), Receiver()
    app = create_app(dataclasses.replace(settings, webhook_retry_seconds=0.1))
    async with (
        receiving(lagos),
        receiving(pune),
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://test"
        ) as http,
    ):
        service = Api(http=http, db=api.db, settings=settings)
        for city, receiver in (("lagos", lagos), ("pune", pune)):
            token = await service.token(city)
            data = await service.data(HOOK, {"input": {"url": receiver.url}}, token=token)
            assert data["registerWebhook"]["userErrors"] == []
        published: dict[str, str] = {}
        for level in LEVELS:
            problem = await problems.publish(
                db=api.db,
                actor=AUTHOR,
                draft=problems.ProblemDraft(
                    f"hooked {level}", "s", [Hazard.FLOOD], visibility=_visibility(level)
                ),
            )
            comment = await comments.add(
                db=api.db,
                actor=AUTHOR,
                subject_kind="Problem",
                subject_id=problem.id,
                parent_id=None,
                body=f"on the {level} problem",
            )
            published[to_global_id("Problem", problem.id)] = level
            published[to_global_id("Comment", comment.id)] = level
        async with asyncio.timeout(15):
            while len(lagos.received) < 4 or len(pune.received) < 2:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # anything else would have arrived by now
    for receiver, city in ((lagos, "lagos"), (pune, "pune")):
        got = sorted(
            (event["type"], published[event["subject"]["id"]])
            for event in (json.loads(body) for _, body in receiver.received)
        )
        assert got == sorted(
            (kind, level)
            for level in LEVELS
            if level in SEES[city]
            for kind in ("PROBLEM_PUBLISHED", "COMMENT_ADDED")
        ), city


LIST_PAGE = """query($after: String) { problems(first: 4, after: $after) {
  totalCount edges { node { id } } pageInfo { hasNextPage endCursor } } }"""


async def _pages(api: Api, token: str) -> tuple[list[str], int, float]:
    """Every problem the token lists, page by page; the total; the first page's round trips."""
    ids: list[str] = []
    after: str | None = None
    trips = 0.0
    while True:
        before = db_commands((await api.http.get("/metrics")).text)
        page = (await api.data(LIST_PAGE, {"after": after}, token=token))["problems"]
        if after is None:
            trips = db_commands((await api.http.get("/metrics")).text) - before
        ids += _ids(page)
        if not page["pageInfo"]["hasNextPage"]:
            return ids, page["totalCount"], trips
        after = page["pageInfo"]["endCursor"]


async def test_a_thousand_drafts_beside_ten_public_problems(api: Api) -> None:
    for slug in ("rotterdam", "pune"):
        await add_city(api.db, slug)
    public = [
        await problems.publish(
            db=api.db, actor=AUTHOR, draft=problems.ProblemDraft(f"public {i}", "s", [Hazard.FLOOD])
        )
        for i in range(10)
    ]
    pune = await api.token("pune", ("read",), subject="p")
    await api.data("{ viewer { subject } }", token=pune)  # warm the realm's key cache
    _, _, alone = await _pages(api, pune)
    draft = problems.ProblemDraft(
        "d", "s", [Hazard.FLOOD], visibility=Visibility(VisibilityLevel.DRAFT)
    )
    async with api.db.client.start_session() as session:
        for i in range(1000):
            await problem_store.insert_problem(
                api.db, await _draft_problem(api, draft, i), session=session
            )
    ids, total, crowded = await _pages(api, pune)
    assert sorted(ids) == sorted(to_global_id("Problem", p.id) for p in public)
    assert total == 10
    assert crowded == alone  # the drafts cost no round trip
    author = await api.token("rotterdam", ("read",), subject="cro")
    data = await api.data("{ problems(first: 1) { totalCount } }", token=author)
    assert data["problems"]["totalCount"] == 1010


async def _draft_problem(api: Api, draft: problems.ProblemDraft, i: int) -> Problem:
    """A DRAFT of the author's as publishing writes it, without its event and index entries."""
    moment = now()
    team = (problems.lead_of(AUTHOR, moment),)
    visibility = draft.visibility or Visibility()
    audience = await audiences.resolve(api.db, owner="rotterdam", visibility=visibility, team=team)
    return Problem(
        id="",
        city="rotterdam",
        title=f"draft {i}",
        summary="s",
        body=None,
        hazards=(Hazard.FLOOD,),
        sectors=(),
        tags=(),
        status=ProblemStatus.OPEN,
        urgency=Urgency.ROUTINE,
        stakeholders=(),
        affected_population=None,
        answered_by=(),
        faced_by=(),
        version=1,
        created_at=moment,
        updated_at=moment,
        visibility=visibility,
        team=team,
        audience=audience,
    )


async def test_a_federated_token_of_the_owning_city_sees_what_its_city_may(
    idp: tuple[IdentityProvider, Api],
) -> None:
    provider, api = idp
    await add_city(api.db, "pune")
    ids = {}
    for level in LEVELS:
        problem = await problems.publish(
            db=api.db,
            actor=AUTHOR,
            draft=problems.ProblemDraft(
                f"{WORD} {level}", "s", [Hazard.FLOOD], visibility=_visibility(level)
            ),
        )
        ids[to_global_id("Problem", problem.id)] = level
    data = await api.data(
        """{ problems(first: 10) { totalCount edges { node { id } } } }""", token=provider.token()
    )
    assert {ids[id] for id in _ids(data["problems"])} == SEES["agency"]
    assert data["problems"]["totalCount"] == len(SEES["agency"])


LINKED = """mutation($input: PublishProblemInput!) { publishProblem(input: $input) {
  problem { id stakeholderOrganisations { name } } userErrors { code field message } } }"""
LINKED_SOLUTION = """mutation($input: PublishSolutionInput!) { publishSolution(input: $input) {
  solution { id partnerOrganisations { name } } userErrors { code field message } } }"""
INVOLVED = """query($id: ID!) { node(id: $id) { ... on Organisation {
  problems(first: 10) { totalCount edges { node { id } } }
  solutions(first: 10) { totalCount edges { node { id } } } } } }"""


async def test_what_an_organisation_is_involved_in_follows_the_same_rule(api: Api) -> None:
    for slug in ("rotterdam", "pune"):
        await add_city(api.db, slug)
    port = await organisations.add_organisation(
        db=api.db,
        draft=OrganisationDraft("rotterdam", "Port of Rotterdam", OrganisationKind.BUSINESS),
    )
    port_id = to_global_id("Organisation", port.id)
    author = await api.token("rotterdam", subject="cro")
    pune = await api.token("pune", ("read",), subject="p")
    base = {"summary": "s", "hazards": ["FLOOD"], "stakeholderIds": [port_id]}
    shown: dict[str, str] = {}
    for level in ("PUBLIC", "DRAFT"):
        data = await api.data(
            LINKED,
            {"input": {**base, "title": f"quay {level}", "visibility": {"level": level}}},
            token=author,
        )
        problem = data["publishProblem"]["problem"]
        assert problem["stakeholderOrganisations"] == [{"name": "Port of Rotterdam"}]
        shown[problem["id"]] = level
    data = await api.data(
        LINKED_SOLUTION,
        {
            "input": {
                "title": "Floating quay",
                "summary": "s",
                "hazards": ["FLOOD"],
                "partnerIds": [port_id],
            }
        },
        token=author,
    )
    assert data["publishSolution"]["solution"]["partnerOrganisations"] == [
        {"name": "Port of Rotterdam"}
    ]
    for token, levels in ((author, {"PUBLIC", "DRAFT"}), (pune, {"PUBLIC"})):
        found = (await api.data(INVOLVED, {"id": port_id}, token=token))["node"]
        assert {shown[id] for id in _ids(found["problems"])} == levels
        assert found["problems"]["totalCount"] == len(levels)
        assert found["solutions"]["totalCount"] == 1
    # Naming an organisation there is none of, or an id of another kind, changes nothing.
    for ids, code in (
        ([to_global_id("Organisation", "0" * 24)], "NOT_FOUND"),
        ([to_global_id("City", "rotterdam")], "BAD_USER_INPUT"),
    ):
        data = await api.data(
            LINKED, {"input": {**base, "title": "t", "stakeholderIds": ids}}, token=author
        )
        assert [e["code"] for e in data["publishProblem"]["userErrors"]] == [code]
        assert data["publishProblem"]["problem"] is None
