"""Case studies you can filter and compare: costs in EUR, evidence, take-up, city attributes."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from bson import ObjectId

from cityexchange.app import create_app
from cityexchange.resources import open_database
from cityexchange.schema.relay import expect_global_id
from cityexchange.services import cities
from cityexchange.services.case_studies import MoneyRange, SolutionCriteria
from cityexchange.services.clock import now
from cityexchange.services.listing import ListingFilter
from cityexchange.services.models import City
from cityexchange.services.pages import SolutionOrder
from cityexchange.services.store import solutions as solution_store
from cityexchange.services.store.indexes import ensure_indexes
from cityexchange.services.taxonomy import IncomeGroup
from cityexchange.settings import Secret, Settings
from tests.conftest import Api
from tests.queries import PUBLISH_PROBLEM, PUBLISH_SOLUTION, problem_input

# The ECB's published annual averages (units per euro), for checking the conversion.
USD_PER_EUR_2015 = 1.1095
USD_PER_EUR_2020 = 1.1422
IDR_PER_EUR_2018 = 16803.76


def _city(slug: str, country: str, region: str, population: int, zone: str, *more: str) -> City:
    """A city; `more`: coastal ("coast" or "inland"), its languages, income group, networks."""
    coast, languages, income, *networks = more
    return City(
        slug=slug,
        name=slug.title(),
        country=country,
        created_at=now(),
        region=region,
        population=population,
        climate_zone=zone,
        coastal=coast == "coast",
        languages=tuple(languages.split()),
        networks=tuple(networks),
        income_group=IncomeGroup(income),
    )


RCN = "Resilient Cities Network"
CITIES = [
    _city("rotterdam", "NL", "Europe", 655_000, "Cfb", "coast", "nl en", "HIGH", RCN),
    _city("jakarta", "ID", "Asia", 10_560_000, "Am", "coast", "id", "UPPER_MIDDLE", "C40"),
    _city("lagos", "NG", "Africa", 15_000_000, "Aw", "coast", "en yo", "LOWER_MIDDLE", RCN, "C40"),
    _city("denver", "US", "North America", 715_000, "BSk", "inland", "en", "HIGH"),
]
OUTCOMES = [{"metric": "flooded streets", "value": -40, "unit": "%"}]


def _cost(amount: float, currency: str, year: int) -> dict[str, object]:
    return {"amount": amount, "currency": currency, "year": year}


def _seed_item(
    city: str,
    title: str,
    cost: tuple[float, str, int] | None = None,
    residents: int | None = None,
    level: int | None = None,
    status: str = "IMPLEMENTED",
    outcomes: bool = False,
    **counters: int,
) -> tuple[str, dict[str, Any], dict[str, int]]:
    """Who publishes what; the counters are what package A's mutations keep on the document."""
    fields: dict[str, Any] = {
        "title": title,
        "summary": "s",
        "hazards": ["FLOOD"],
        "status": status,
    }
    if cost:
        fields["cost"] = _cost(*cost)
    if residents:
        fields["residentsServed"] = residents
    if level:
        url = f"https://example.org/eval/{level}"
        fields["evidence"] = {"level": level, "links": [{"url": url, "title": "E"}]}
    if outcomes:
        fields["outcomes"] = OUTCOMES
    return city, fields, counters


# "roofs" states no residents but addresses a problem affecting 120,000.
SEED = [
    _seed_item("rotterdam", "squares", (4_500_000, "EUR", 2013), 20_000, 3, outcomes=True),
    _seed_item("rotterdam", "roofs", (1_000_000, "USD", 2015), None, 2, "SCALED"),
    _seed_item("jakarta", "river", (5e11, "IDR", 2018), 1_000_000, 4, adoptionCount=3),
    _seed_item("jakarta", "app", status="PILOT", reportedOutcomeCount=1),
    _seed_item("lagos", "dredging", (2_000_000_000, "NGN", 2019), None, 1, adoptionCount=1),
    _seed_item(
        "denver", "xeriscape", (2.5e5, "USD", 2020), 5_000, 5, "DISCONTINUED", True, adoptionCount=0
    ),
    _seed_item("lagos", "markets", (300_000, "EUR", 2021), status="PILOT"),
]

FIELDS = """id title status residentsServed costPerResidentEur
  cost { amount currency year eur } evidence { level links { url title } }"""
LIST = f"""
query List($filter: SolutionFilter, $order: SolutionOrder!, $first: Int, $after: String,
           $last: Int, $before: String) {{
  solutions(filter: $filter, orderBy: $order, first: $first, after: $after, last: $last,
            before: $before) {{
    totalCount
    edges {{ cursor node {{ {FIELDS} }} }}
    pageInfo {{ hasNextPage hasPreviousPage endCursor startCursor }}
  }}
}}"""


@dataclasses.dataclass
class Seeded:
    api: Api
    token: str
    by_title: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
async def seeded(mongodb_uri: str) -> AsyncIterator[Seeded]:
    """One database and app for the module, seeded once through the API."""
    settings = Settings(
        mongodb_uri=Secret(mongodb_uri),
        db_name=f"cx_test_{uuid.uuid4().hex[:12]}",
        operation_timeout_ms=30_000,
    )
    async with open_database(settings) as db:
        await ensure_indexes(db)
        for city in CITIES:
            await cities.add_city(db=db, city=city)
        app = create_app(settings)
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                api = Api(http=http, db=db, settings=settings)
                yield await _seed(api)
        await db.client.drop_database(settings.db_name)


async def _seed(api: Api) -> Seeded:
    tokens = {city.slug: await api.token(city.slug) for city in CITIES}
    problem = await api.data(
        PUBLISH_PROBLEM,
        {"input": problem_input("Roofs shed rain too fast", affectedPopulation=120_000)},
        token=tokens["rotterdam"],
    )
    problem_id = problem["publishProblem"]["problem"]["id"]
    for city, fields, counters in SEED:
        if fields["title"] == "roofs":
            fields = {**fields, "problemIds": [problem_id]}
        published = await api.data(PUBLISH_SOLUTION, {"input": fields}, token=tokens[city])
        payload = published["publishSolution"]
        assert not payload["userErrors"], payload
        if counters:
            _, id = expect_global_id(payload["solution"]["id"], ("Solution",), field="id")
            await api.db.solutions.update_one({"_id": ObjectId(id)}, {"$set": counters})
    token = tokens["rotterdam"]
    everything = await api.data(LIST, {"order": "CREATED_AT_ASC", "first": 50}, token=token)
    nodes = [e["node"] for e in everything["solutions"]["edges"]]
    return Seeded(api, token, {node["title"]: node for node in nodes})


async def _titles(
    seeded: Seeded, filter: dict[str, Any], order: str = "CREATED_AT_ASC"
) -> list[str]:
    data = await seeded.api.data(
        LIST, {"filter": filter, "order": order, "first": 50}, token=seeded.token
    )
    return [e["node"]["title"] for e in data["solutions"]["edges"]]


async def test_costs_are_in_eur_at_their_year_average_rate(seeded: Seeded) -> None:
    roofs = seeded.by_title["roofs"]
    assert (roofs["cost"]["amount"], roofs["cost"]["currency"]) == (1_000_000, "USD")
    assert roofs["cost"]["eur"] == pytest.approx(1_000_000 / USD_PER_EUR_2015, rel=1e-3)
    # No residents stated: over the largest affected population of its problems.
    assert roofs["costPerResidentEur"] == pytest.approx(roofs["cost"]["eur"] / 120_000, rel=1e-3)
    squares = seeded.by_title["squares"]
    assert squares["cost"]["eur"] == 4_500_000
    assert squares["costPerResidentEur"] == pytest.approx(225)
    river = seeded.by_title["river"]["cost"]["eur"]
    assert river == pytest.approx(500_000_000_000 / IDR_PER_EUR_2018, rel=1e-3)
    # A currency the ECB table lacks keeps its amount and gets no EUR figure.
    dredging = seeded.by_title["dredging"]
    assert dredging["cost"] == {"amount": 2e9, "currency": "NGN", "year": 2019, "eur": None}
    assert dredging["costPerResidentEur"] is None
    # Neither residents nor problems: no figure per resident.
    assert seeded.by_title["markets"]["costPerResidentEur"] is None


# Each filter alone and the solutions it leaves.
FILTERS: list[tuple[dict[str, Any], str]] = [
    ({"cost": {"max": 1_000_000}}, "roofs xeriscape markets"),
    ({"cost": {"min": 2_000_000, "currency": "usd"}}, "squares river"),
    ({"costPerResident": {"max": 50}}, "roofs river xeriscape"),
    ({"status": ["PILOT"]}, "app markets"),
    ({"evidenceLevelMin": 4}, "river xeriscape"),
    ({"hasOutcomes": True}, "squares xeriscape app"),
    ({"hasOutcomes": False}, "roofs river dredging markets"),
    ({"adoptionCountMin": 1}, "river dredging"),
    ({"city": {"climateZones": ["A"]}}, "river app dredging markets"),
    ({"city": {"populationMin": 700_000, "populationMax": 11_000_000}}, "river app xeriscape"),
    ({"city": {"coastal": False}}, "xeriscape"),
    ({"city": {"regions": ["Europe"]}}, "squares roofs"),
    ({"city": {"networks": ["C40"], "languages": ["YO"]}}, "dredging markets"),
    ({"city": {"incomeGroups": ["HIGH"]}}, "squares roofs xeriscape"),
]


async def test_each_filter_alone(seeded: Seeded) -> None:
    for filter, expected in FILTERS:
        assert set(await _titles(seeded, filter)) == set(expected.split()), filter


async def test_filters_combine_with_each_other_and_the_listing(seeded: Seeded) -> None:
    tropical_implemented = {
        "city": {"climateZones": ["Am", "Aw"], "coastal": True},
        "status": ["IMPLEMENTED"],
        "cost": {"max": 40_000_000, "currency": "USD"},
        "hazards": ["FLOOD"],
    }
    assert await _titles(seeded, tropical_implemented) == ["river"]
    assert await _titles(seeded, {**tropical_implemented, "evidenceLevelMin": 5}) == []
    assert await _titles(seeded, {"cities": ["lagos"], "city": {"regions": ["Europe"]}}) == []
    # The implementing-city filter on a city's own list (the batched path).
    data = await seeded.api.data(
        """query($filter: SolutionFilter) { city(slug: "jakarta") {
             solutions(filter: $filter, orderBy: ADOPTIONS_DESC) {
               totalCount edges { node { title } }
             }
           } }""",
        {"filter": {"hasOutcomes": True, "city": {"climateZones": ["A"]}}},
        token=seeded.token,
    )
    page = data["city"]["solutions"]
    assert [e["node"]["title"] for e in page["edges"]] == ["app"]
    assert page["totalCount"] == 1


ORDERS = {
    # Only the solutions with a EUR figure, cheapest first.
    "COST_ASC": "xeriscape markets roofs squares river",
    "COST_DESC": "river squares roofs markets xeriscape",
    "COST_PER_RESIDENT_ASC": "roofs river xeriscape squares",
    # Those without a level come last, newest first (ties broken by id).
    "EVIDENCE_DESC": "xeriscape river squares roofs dredging markets app",
    # A counter of 0 before a counter never written; both after every positive count.
    "ADOPTIONS_DESC": "river dredging xeriscape markets app roofs squares",
}


async def _walk(seeded: Seeded, order: str, *, backward: bool = False) -> list[str]:
    """Every title in `order`, three at a time, forward (or backward from the end)."""
    titles: list[str] = []
    cursor = None
    for _ in range(10):
        page_of = {"last": 3, "before": cursor} if backward else {"first": 3, "after": cursor}
        data = await seeded.api.data(LIST, {"order": order, **page_of}, token=seeded.token)
        page = data["solutions"]
        got = [e["node"]["title"] for e in page["edges"]]
        titles = got + titles if backward else titles + got
        more = page["pageInfo"]["hasPreviousPage" if backward else "hasNextPage"]
        if not more:
            assert page["totalCount"] == len(titles)
            return titles
        cursor = page["pageInfo"]["startCursor" if backward else "endCursor"]
    raise AssertionError("the walk did not end")


@pytest.mark.parametrize("order", ORDERS)
async def test_each_order_pages_through_every_solution_once(seeded: Seeded, order: str) -> None:
    assert await _walk(seeded, order) == ORDERS[order].split()
    if order in ("EVIDENCE_DESC", "ADOPTIONS_DESC"):
        # Backward walks cross from the solutions without a value to those with one.
        assert await _walk(seeded, order, backward=True) == ORDERS[order].split()


async def test_a_cursor_belongs_to_its_order(seeded: Seeded) -> None:
    first = await seeded.api.data(LIST, {"order": "COST_ASC", "first": 1}, token=seeded.token)
    cursor = first["solutions"]["pageInfo"]["endCursor"]
    body = await seeded.api.gql(
        LIST, {"order": "COST_DESC", "first": 1, "after": cursor}, token=seeded.token
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


BAD_FILTERS: list[tuple[dict[str, Any], list[str], str]] = [
    ({"cost": {"max": 10, "currency": "NGN"}}, ["filter", "cost", "currency"], "'NGN' is not"),
    ({"costPerResident": {"currency": "EURO"}}, ["filter", "costPerResident", "currency"], "USD"),
    ({"cost": {"min": 5, "max": 1}}, ["filter", "cost", "max"], "below min"),
    ({"evidenceLevelMin": 6}, ["filter", "evidenceLevelMin"], "1 to 5"),
    ({"city": {"climateZones": ["A1"]}}, ["filter", "city", "climateZones"], "Köppen"),
]


async def test_bad_filters_are_user_errors(seeded: Seeded) -> None:
    for filter, field, words in BAD_FILTERS:
        body = await seeded.api.gql(
            LIST, {"filter": filter, "order": "COST_ASC"}, token=seeded.token
        )
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", filter
        assert error["extensions"]["field"] == field, filter
        assert words in error["message"], filter
        assert body["data"] is None


async def test_evidence_round_trips_and_levels_outside_1_to_5_are_refused(seeded: Seeded) -> None:
    stated = seeded.by_title["river"]["evidence"]
    assert stated == {"level": 4, "links": [{"url": "https://example.org/eval/4", "title": "E"}]}
    assert seeded.by_title["app"]["evidence"] is None
    for level in (0, 6):
        body = await seeded.api.data(
            PUBLISH_SOLUTION,
            {
                "input": {
                    "title": "T",
                    "summary": "s",
                    "hazards": ["FLOOD"],
                    "evidence": {"level": level},
                }
            },
            token=seeded.token,
        )
        payload = body["publishSolution"]
        assert payload["solution"] is None
        assert payload["userErrors"] == [
            {
                "code": "BAD_USER_INPUT",
                "field": ["input", "evidence", "level"],
                "message": "must be a level from 1 to 5 (Nesta)",
            }
        ]


async def test_editing_recomputes_the_eur_figures(api: Api) -> None:
    await cities.add_city(
        db=api.db, city=City(slug="lisbon", name="Lisbon", country="PT", created_at=now())
    )
    token = await api.token("lisbon")
    published = await api.data(
        PUBLISH_SOLUTION,
        {
            "input": {
                "title": "Cisterns",
                "summary": "s",
                "hazards": ["DROUGHT"],
                "cost": _cost(100_000, "EUR", 2022),
                "residentsServed": 1_000,
            }
        },
        token=token,
    )
    id = published["publishSolution"]["solution"]["id"]
    edited = await api.data(
        """mutation($input: UpdateSolutionInput!) { updateSolution(input: $input) {
             solution { costPerResidentEur cost { eur } } userErrors { message } } }""",
        {"input": {"id": id, "version": 1, "cost": _cost(228_440, "USD", 2020)}},
        token=token,
    )
    solution = edited["updateSolution"]["solution"]
    assert solution["cost"]["eur"] == pytest.approx(228_440 / USD_PER_EUR_2020, rel=1e-3)
    assert solution["costPerResidentEur"] == pytest.approx(solution["cost"]["eur"] / 1_000)


PLANS = [
    (SolutionOrder.COST_ASC, SolutionCriteria(), "by_cost"),
    (SolutionOrder.COST_PER_RESIDENT_ASC, SolutionCriteria(), "by_cost_per_resident"),
    (SolutionOrder.EVIDENCE_DESC, SolutionCriteria(), "by_evidence"),
    (SolutionOrder.ADOPTIONS_DESC, SolutionCriteria(), "by_adoptions"),
    (SolutionOrder.CREATED_AT_DESC, SolutionCriteria(cost=MoneyRange(max=1e6)), "by_cost"),
]


async def test_the_planner_uses_the_case_study_indexes(seeded: Seeded) -> None:
    for order, criteria, index in PLANS:
        query = solution_store.list_query(ListingFilter(), criteria.checked(), None, order)
        direction = -1 if order.descending else 1
        plan = await (
            seeded.api.db.solutions.find(query)
            .sort([(order.field, direction), ("_id", direction)])
            .limit(21)
            .explain()
        )
        winning = json.dumps(plan["queryPlanner"]["winningPlan"])
        assert f'"indexName": "{index}"' in winning, (order, query, winning)
