"""Adoption, outcomes over time, endorsement, lineage and their events, over HTTP against the
real database. One seeded world per module; each test works on its own solutions."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from bson import ObjectId

from cityexchange.app import create_app
from cityexchange.resources import open_database
from cityexchange.services import problems, solutions
from cityexchange.services.events import event_cursor
from cityexchange.services.ids import global_id
from cityexchange.services.models import Solution
from cityexchange.services.principal import Principal
from cityexchange.services.store.indexes import ensure_indexes
from cityexchange.services.taxonomy import Hazard, Urgency
from cityexchange.settings import Secret, Settings
from tests.conftest import Api, add_city
from tests.live_support import Subscriber, live_server

CITIES = ("rotterdam", "lagos", "jakarta", "chennai", "surabaya")
SCOPES = frozenset({"read", "publish", "comment"})

ADOPT = """
mutation($input: AdoptSolutionInput!) {
  adoptSolution(input: $input) {
    adoption { id stage city { slug } adaptedSolution { id } stages { stage note } }
    userErrors { code field message }
    clientMutationId
  }
}"""
REPORT = """
mutation($input: ReportOutcomeInput!) {
  reportOutcome(input: $input) {
    outcomeReport { metric value measuredOn city { slug } }
    userErrors { code field message }
  }
}"""
ENDORSE = """
mutation($input: EndorseSolutionInput!) {
  endorseSolution(input: $input) {
    endorsement { kind note city { slug } }
    userErrors { code field message }
  }
}"""
TAKE_UP = """
query($id: ID!) {
  node(id: $id) {
    ... on Solution {
      adoptions { totalCount edges { node { id stage city { slug } stages { stage note } } } }
      outcomeReports { edges { node { value measuredOn } } }
      endorsements { totalCount edges { node { kind city { slug } } } }
      adoptionSummary {
        adoptionCount improvingCities text stages { stage count } adoptingCities { slug }
      }
    }
  }
}"""
LINEAGE = """
query($id: ID!, $depth: Int!) {
  node(id: $id) {
    ... on Solution {
      lineage(depth: $depth) {
        truncated
        ancestors { depth solution { id city { slug } } }
        descendants { depth adaptationNotes adaptedFromId solution { id city { slug } } }
      }
    }
  }
}"""


@dataclasses.dataclass
class World:
    api: Api
    tokens: dict[str, str]
    water: Solution  # rotterdam's, adapted by lagos, whose version jakarta adapted
    water_lagos: Solution
    water_jakarta: Solution
    roofs: Solution  # rotterdam's, taken up by four cities with outcomes
    barrels: Solution  # rotterdam's, for the retries and the events

    async def data(self, query: str, variables: dict[str, Any], city: str) -> dict[str, Any]:
        return await self.api.data(query, variables, token=self.tokens[city])

    async def payload(self, query: str, input: dict[str, Any], city: str) -> dict[str, Any]:
        data = await self.data(query, {"input": input}, city)
        (payload,) = data.values()
        result: dict[str, Any] = payload
        return result


def gid(kind: str, solution: Solution | str) -> str:
    return global_id(kind, solution if isinstance(solution, str) else solution.id)


async def _publish(api: Api, city: str, title: str, adapted_from: str | None = None) -> Solution:
    return await solutions.publish(
        db=api.db,
        actor=Principal(city, "cro", SCOPES, "tests"),
        draft=solutions.SolutionDraft(
            title=title,
            summary="s",
            hazards=[Hazard.FLOOD],
            adapted_from=adapted_from,
            adaptation_notes=f"{city}'s version" if adapted_from else None,
        ),
    )


@pytest.fixture(scope="module")
async def world(mongodb_uri: str) -> AsyncIterator[World]:
    settings = Settings(
        mongodb_uri=Secret(mongodb_uri),
        db_name=f"cx_test_{uuid.uuid4().hex[:12]}",
        webhook_retry_seconds=0.1,
    )
    roomy = dataclasses.replace(settings, operation_timeout_ms=30_000)
    async with open_database(roomy) as db:
        await ensure_indexes(db)
        for slug in CITIES:
            await add_city(db, slug)
        app = create_app(settings)
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                api = Api(http=http, db=db, settings=settings)
                water = await _publish(api, "rotterdam", "Water squares")
                water_lagos = await _publish(api, "lagos", "Water squares, Lagos", water.id)
                water_jakarta = await _publish(
                    api, "jakarta", "Water squares, Jakarta", water_lagos.id
                )
                yield World(
                    api=api,
                    tokens={slug: await api.token(slug) for slug in CITIES},
                    water=water,
                    water_lagos=water_lagos,
                    water_jakarta=water_jakarta,
                    roofs=await _publish(api, "rotterdam", "Green roofs"),
                    barrels=await _publish(api, "rotterdam", "Rain barrels"),
                )
        await db.client.drop_database(settings.db_name)


async def _counters(world: World, solution: Solution) -> tuple[int, int, int]:
    """The solution document's counters: adoptions, outcome reports, endorsements."""
    doc = await world.api.db.solutions.find_one({"_id": ObjectId(solution.id)})
    assert doc is not None
    return (
        doc.get("adoptionCount", 0),
        doc.get("reportedOutcomeCount", 0),
        doc.get("endorsementCount", 0),
    )


def _error(payload: dict[str, Any]) -> tuple[str, list[str]]:
    (error,) = payload["userErrors"]
    return error["code"], error["field"]


async def test_a_city_takes_a_solution_up_stage_by_stage_with_its_history(world: World) -> None:
    water = gid("Solution", world.water)

    async def adopt(stage: str, note: str | None = None, **extra: object) -> dict[str, Any]:
        input = {"solutionId": water, "stage": stage, "note": note, **extra}
        return await world.payload(ADOPT, input, "lagos")

    assert (await adopt("INTERESTED"))["adoption"]["stage"] == "INTERESTED"
    await adopt("PILOTING", adaptedSolutionId=gid("Solution", world.water_lagos))
    assert await _counters(world, world.water) == (1, 0, 0)
    # Back without a note, ABANDONED without one, someone else's or an unrelated version.
    back = await adopt("PLANNING")
    assert (back["adoption"], _error(back)) == (None, ("BAD_USER_INPUT", ["input", "note"]))
    assert _error(await adopt("ABANDONED"))[1] == ["input", "note"]
    jakartas = await adopt("ADOPTED", adaptedSolutionId=gid("Solution", world.water_jakarta))
    assert _error(jakartas) == ("BAD_USER_INPUT", ["input", "adaptedSolutionId"])
    unrelated = await _publish(world.api, "lagos", "Unrelated")
    other = await adopt("ADOPTED", adaptedSolutionId=gid("Solution", unrelated))
    assert _error(other)[1] == ["input", "adaptedSolutionId"]

    assert (await adopt("PLANNING", "the pilot's pumps failed"))["userErrors"] == []
    assert await _counters(world, world.water) == (0, 0, 0)
    same = await adopt("PLANNING")  # nothing new: no change, no history entry
    done = await adopt("ABANDONED", "no budget this term")
    assert _error(await adopt("ADOPTED"))[1] == ["input", "note"]  # resuming needs one

    assert same["adoption"]["id"] == done["adoption"]["id"]
    assert done["adoption"]["adaptedSolution"] == {"id": gid("Solution", world.water_lagos)}
    assert [(s["stage"], s["note"]) for s in done["adoption"]["stages"]] == [
        ("INTERESTED", None),
        ("PILOTING", None),
        ("PLANNING", "the pilot's pumps failed"),
        ("ABANDONED", "no budget this term"),
    ]
    node = await world.data(
        "query($id: ID!) { node(id: $id) { ... on Adoption { stage solution { id } } } }",
        {"id": done["adoption"]["id"]},
        "jakarta",
    )
    assert node["node"] == {"stage": "ABANDONED", "solution": {"id": water}}
    events = await world.api.db.events.count_documents(
        {"type": "ADOPTION_CHANGED", "thread": world.water.id, "city": "lagos"}
    )
    assert events == 4


async def test_a_city_acts_only_for_itself_and_never_on_its_own_solution(world: World) -> None:
    water = gid("Solution", world.water)
    own = await world.payload(ADOPT, {"solutionId": water, "stage": "ADOPTED"}, "rotterdam")
    assert _error(own) == ("BAD_USER_INPUT", ["input", "solutionId"])
    mine = await world.payload(ENDORSE, {"solutionId": water, "kind": "USEFUL"}, "rotterdam")
    assert _error(mine) == ("BAD_USER_INPUT", ["input", "solutionId"])

    adoption = await world.payload(ADOPT, {"solutionId": water, "stage": "PLANNING"}, "chennai")
    measured = {"metric": "flooded streets", "value": 3, "measuredOn": "2024-05-01"}
    for city, subject in (
        ("lagos", gid("Solution", world.water)),  # rotterdam's solution
        ("jakarta", adoption["adoption"]["id"]),  # chennai's adoption
    ):
        body = await world.api.gql(
            REPORT, {"input": {**measured, "subjectId": subject}}, token=world.tokens[city]
        )
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body


async def test_an_outcome_series_is_dated_ordered_and_checked(world: World) -> None:
    subject = gid("Solution", world.roofs)
    for day, value in (("2023-06-01", 20.0), ("2021-06-01", 40.0), ("2022-06-01", 31.0)):
        input = {
            "subjectId": subject,
            "metric": "flooded streets",
            "value": value,
            "measuredOn": day,
        }
        assert (await world.payload(REPORT, input, "rotterdam"))["userErrors"] == []
    refused = [
        ({"measuredOn": "2999-01-01"}, ["input", "measuredOn"]),
        ({"metric": " "}, ["input", "metric"]),
        ({"unit": "x" * 51}, ["input", "unit"]),
        ({"value": 1e16}, ["input", "value"]),
    ]
    base = {"subjectId": subject, "metric": "m", "value": 1, "measuredOn": "2020-01-01"}
    for change, field in refused:
        payload = await world.payload(REPORT, {**base, **change}, "rotterdam")
        assert _error(payload) == ("BAD_USER_INPUT", field), change
    # A literal too large for a double parses as infinity: refused, not stored.
    infinite = await world.data(
        'mutation($id: ID!) { reportOutcome(input: {subjectId: $id, metric: "m", '
        'value: 1e999, measuredOn: "2020-01-01"}) { userErrors { field } } }',
        {"id": subject},
        "rotterdam",
    )
    assert infinite["reportOutcome"]["userErrors"] == [{"field": ["input", "value"]}]

    series = (await world.data(TAKE_UP, {"id": subject}, "lagos"))["node"]["outcomeReports"]
    assert [(e["node"]["measuredOn"], e["node"]["value"]) for e in series["edges"]] == [
        ("2021-06-01", 40.0),
        ("2022-06-01", 31.0),
        ("2023-06-01", 20.0),
    ]
    assert (await _counters(world, world.roofs))[1] >= 3


async def test_endorsement_counts_once_per_city(world: World) -> None:
    water = gid("Solution", world.water)
    first = await world.payload(ENDORSE, {"solutionId": water, "kind": "USEFUL"}, "surabaya")
    again = await world.payload(
        ENDORSE, {"solutionId": water, "kind": "VALIDATED", "note": "ran it"}, "surabaya"
    )
    assert first["endorsement"]["kind"] == "USEFUL"
    assert again["endorsement"] == {
        "kind": "VALIDATED",
        "note": "ran it",
        "city": {"slug": "surabaya"},
    }
    listed = (await world.data(TAKE_UP, {"id": water}, "lagos"))["node"]["endorsements"]
    assert listed["totalCount"] == 1
    assert listed["edges"][0]["node"] == {"kind": "VALIDATED", "city": {"slug": "surabaya"}}
    assert (await _counters(world, world.water))[2] == 1


async def test_the_original_shows_a_roll_up_of_who_adopted_it_and_how_it_went(
    world: World,
) -> None:
    roofs = gid("Solution", world.roofs)
    stages = {
        "lagos": "ADOPTED",
        "jakarta": "ADOPTED",
        "chennai": "PILOTING",
        "surabaya": "INTERESTED",
    }
    adoption_ids: dict[str, str] = {}
    for city, stage in stages.items():
        payload = await world.payload(ADOPT, {"solutionId": roofs, "stage": stage}, city)
        adoption_ids[city] = payload["adoption"]["id"]
    # (city, measured on, value, baseline, target): lagos and jakarta fall toward their
    # targets; chennai rises away from its own; surabaya is not adopting.
    reports = [
        ("lagos", "2023-01-01", 25.0, 40.0, 10.0),
        ("jakarta", "2022-01-01", 30.0, None, 5.0),
        ("jakarta", "2023-01-01", 20.0, None, 5.0),
        ("chennai", "2023-01-01", 50.0, 40.0, 10.0),
        ("surabaya", "2023-01-01", 1.0, 40.0, 10.0),
    ]
    for city, day, value, baseline, target in reports:
        input = {
            "subjectId": adoption_ids[city],
            "metric": "flooded streets",
            "value": value,
            "measuredOn": day,
            "baseline": baseline,
            "target": target,
        }
        assert (await world.payload(REPORT, input, city))["userErrors"] == []

    summary = (await world.data(TAKE_UP, {"id": roofs}, "rotterdam"))["node"]["adoptionSummary"]
    assert summary["text"] == (
        "adopted by 2 cities, piloted by 1 city, of interest to 1 city; "
        "2 report fewer flooded streets"
    )
    assert (summary["adoptionCount"], summary["improvingCities"]) == (3, 2)
    assert {s["slug"] for s in summary["adoptingCities"]} == {"lagos", "jakarta", "chennai"}
    assert {s["stage"]: s["count"] for s in summary["stages"]} == {
        "INTERESTED": 1,
        "PLANNING": 0,
        "PILOTING": 1,
        "ADOPTED": 2,
        "ABANDONED": 0,
    }
    adoption_count, outcome_count, _ = await _counters(world, world.roofs)
    assert adoption_count == 3
    assert outcome_count >= len(reports)


async def test_lineage_walks_three_cities_by_depth(world: World) -> None:
    async def lineage(solution: Solution, depth: int) -> dict[str, Any]:
        data = await world.data(LINEAGE, {"id": gid("Solution", solution), "depth": depth}, "lagos")
        result: dict[str, Any] = data["node"]["lineage"]
        return result

    def walk(entries: list[dict[str, Any]]) -> list[tuple[int, str]]:
        return [(e["depth"], e["solution"]["city"]["slug"]) for e in entries]

    original = await lineage(world.water, 1)
    assert (original["ancestors"], walk(original["descendants"])) == ([], [(1, "lagos")])
    assert walk((await lineage(world.water, 2))["descendants"]) == [(1, "lagos"), (2, "jakarta")]
    middle = await lineage(world.water_lagos, 3)
    assert walk(middle["ancestors"]) == [(1, "rotterdam")]
    assert walk(middle["descendants"]) == [(1, "jakarta")]
    (child,) = middle["descendants"]
    assert child["adaptationNotes"] == "jakarta's version"
    assert child["adaptedFromId"] == gid("Solution", world.water_lagos)
    last = await lineage(world.water_jakarta, 10)
    assert walk(last["ancestors"]) == [(1, "lagos"), (2, "rotterdam")]
    assert last["truncated"] is False
    body = await world.api.gql(
        LINEAGE, {"id": gid("Solution", world.water), "depth": 11}, token=world.tokens["lagos"]
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_the_new_events_reach_the_feed_and_urgency_filters_live_asks(world: World) -> None:
    barrels = gid("Solution", world.barrels)
    await world.payload(ADOPT, {"solutionId": barrels, "stage": "PLANNING"}, "lagos")
    await world.payload(ENDORSE, {"solutionId": barrels, "kind": "USEFUL"}, "lagos")
    report = {"subjectId": barrels, "metric": "m", "value": 1, "measuredOn": "2024-01-01"}
    await world.payload(REPORT, report, "rotterdam")
    feed = """query($filter: EventFilter) {
      feed(filter: $filter) { edges { node { type city { slug } subject { __typename } } } }
    }"""
    found = await world.data(feed, {"filter": {"thread": barrels}}, "jakarta")
    assert [e["node"] for e in found["feed"]["edges"]][1:] == [
        {
            "type": "ADOPTION_CHANGED",
            "city": {"slug": "lagos"},
            "subject": {"__typename": "Adoption"},
        },
        {
            "type": "SOLUTION_ENDORSED",
            "city": {"slug": "lagos"},
            "subject": {"__typename": "Solution"},
        },
        {
            "type": "OUTCOME_REPORTED",
            "city": {"slug": "rotterdam"},
            "subject": {"__typename": "Solution"},
        },
    ]

    # Two asks while the subscriber is away, two once it is live: it gets the crisis of
    # each pair, the first from the log (the store's query), the second through the hub.
    latest = await world.api.db.events.find_one({}, sort=[("_id", -1)])
    assert latest is not None
    subscription = """subscription($filter: EventFilter, $after: String) {
      events(filter: $filter, after: $after) { urgency subject { ... on Problem { title } } }
    }"""
    crisis = {"urgency": ["ACTIVE_CRISIS"]}
    await _asks(world, "Routine ask", "Cyclone")
    async with (
        live_server(world.api.settings) as address,
        Subscriber.connect(address, world.tokens["jakarta"]) as socket,
    ):
        await socket.acknowledged()
        await socket.subscribe(
            subscription, {"filter": crisis, "after": event_cursor(latest["_id"])}
        )
        assert _title(await socket.next()) == ("ACTIVE_CRISIS", "Cyclone")
        await _asks(world, "Second routine ask", "Second cyclone")
        assert _title(await socket.next()) == ("ACTIVE_CRISIS", "Second cyclone")
    urgent = await world.data(
        "query($filter: EventFilter) { feed(filter: $filter) { edges { node { urgency } } } }",
        {"filter": crisis},
        "jakarta",
    )
    assert [e["node"]["urgency"] for e in urgent["feed"]["edges"]] == ["ACTIVE_CRISIS"] * 2


async def _asks(world: World, routine: str, crisis: str) -> None:
    writer = Principal("chennai", "cro", SCOPES, "tests")
    for title, urgency in ((routine, Urgency.ROUTINE), (crisis, Urgency.ACTIVE_CRISIS)):
        draft = problems.ProblemDraft(
            title=title, summary="s", hazards=[Hazard.STORM], urgency=urgency
        )
        await problems.publish(db=world.api.db, actor=writer, draft=draft)


def _title(message: dict[str, Any]) -> tuple[str, str]:
    assert message["type"] == "next", message
    event = message["payload"]["data"]["events"]
    return event["urgency"], event["subject"]["title"]


async def test_a_retry_with_the_same_client_mutation_id_changes_nothing(world: World) -> None:
    barrels = gid("Solution", world.barrels)
    input = {"solutionId": barrels, "stage": "PILOTING", "clientMutationId": "pilot-1"}
    first = await world.payload(ADOPT, input, "jakarta")
    again = await world.payload(ADOPT, input, "jakarta")
    assert again == first
    assert len(again["adoption"]["stages"]) == 1
    other = await world.payload(ADOPT, {**input, "stage": "ADOPTED"}, "jakarta")
    assert _error(other) == ("CONFLICT", ["input", "clientMutationId"])

    report = {
        "subjectId": again["adoption"]["id"],
        "metric": "m",
        "value": 2,
        "measuredOn": "2024-02-01",
        "clientMutationId": "report-1",
    }
    await world.payload(REPORT, report, "jakarta")
    await world.payload(REPORT, report, "jakarta")
    reports = world.api.db.db["outcome_reports"]
    assert await reports.count_documents({"city": "jakarta", "value": 2}) == 1
