"""Peer cities over HTTP: ranking, reasons, paging, the new city attributes."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from cityexchange.app import create_app
from cityexchange.resources import open_database
from cityexchange.services import cities, peers
from cityexchange.services.clock import now
from cityexchange.services.models import City, ResilienceProfile
from cityexchange.services.pages import PageRequest
from cityexchange.services.principal import Principal
from cityexchange.services.store.indexes import ensure_indexes
from cityexchange.services.taxonomy import Hazard as H
from cityexchange.services.taxonomy import IncomeGroup
from cityexchange.settings import Secret, Settings
from tests.conftest import Api, run_cli

PEERS = """
query Peers($slug: String!, $first: Int, $after: String) {
  city(slug: $slug) {
    peers(first: $first, after: $after) {
      totalCount
      edges { cursor score node { slug } reasons { code text } }
      pageInfo { hasNextPage hasPreviousPage endCursor }
    }
  }
}"""
CITY = """
query City($slug: String!) { city(slug: $slug) { slug coastal rivers incomeGroup } }"""


def _city(slug: str, **attributes: Any) -> City:
    hazards = attributes.pop("hazards", ())
    return City(
        slug=slug,
        name=slug.title(),
        country=attributes.pop("country", "ID"),
        created_at=now(),
        profile=ResilienceProfile(hazards=hazards),
        **attributes,
    )


TROPICAL_DELTA: dict[str, Any] = {
    "hazards": (H.FLOOD, H.SEA_LEVEL_RISE, H.COASTAL_FLOOD),
    "climate_zone": "Af",
    "population": 2_000_000,
    "coastal": True,
    "rivers": ("Ciliwung",),
    "region": "Asia",
    "income_group": IncomeGroup.UPPER_MIDDLE,
    "networks": ("Resilient Cities Network",),
    "languages": ("id", "en"),
}
SEEDED = [
    _city("home", **TROPICAL_DELTA),
    _city("twin", **{**TROPICAL_DELTA, "population": 3_500_000, "rivers": ("Musi",)}),
    _city(
        "cousin",
        hazards=(H.FLOOD, H.SEA_LEVEL_RISE, H.HEAT_WAVE),
        climate_zone="Am",
        population=800_000,
        coastal=True,
        region="Europe",
        income_group=IncomeGroup.HIGH,
        country="NL",
    ),
    _city("acquaintance", hazards=(H.FLOOD, H.EARTHQUAKE, H.DROUGHT, H.WILDFIRE)),
    _city("pen-pal", languages=("en",), climate_zone="Cfb"),
    _city("networker", networks=("Resilient Cities Network",), population=6_000_000),
    _city(
        "stranger",
        hazards=(H.EARTHQUAKE,),
        climate_zone="BWh",
        population=100_000,
        coastal=False,
        region="Middle East",
        income_group=IncomeGroup.HIGH,
        languages=("ar",),
        country="AE",
    ),
    _city("loner"),
]


@pytest.fixture(scope="module")
async def seeded(mongodb_uri: str) -> AsyncIterator[Api]:
    """One app and database for the module, seeded once with the cities above."""
    settings = Settings(
        mongodb_uri=Secret(mongodb_uri), db_name=f"cx_peers_{uuid.uuid4().hex[:12]}"
    )
    roomy = dataclasses.replace(settings, operation_timeout_ms=30_000)
    async with open_database(roomy) as db:
        await ensure_indexes(db)
        for city in SEEDED:
            await cities.add_city(db=db, city=city)
        app = create_app(settings)
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                yield Api(http=http, db=db, settings=settings)
        await db.client.drop_database(settings.db_name)


@pytest.fixture(scope="module")
async def token(seeded: Api) -> str:
    return await seeded.token("home")


async def _peers(api: Api, token: str, slug: str = "home", **variables: Any) -> dict[str, Any]:
    data = await api.data(PEERS, {"slug": slug, **variables}, token=token)
    peers: dict[str, Any] = data["city"]["peers"]
    return peers


def _reasons(edge: dict[str, Any]) -> dict[str, str]:
    return {reason["code"]: reason["text"] for reason in edge["reasons"]}


def _cursor(position: list[object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


async def test_the_most_alike_city_ranks_first_and_unlike_cities_are_left_out(
    seeded: Api, token: str
) -> None:
    peers = await _peers(seeded, token)
    ranked = [edge["node"]["slug"] for edge in peers["edges"]]
    assert ranked[:2] == ["twin", "cousin"]
    assert set(ranked) == {"twin", "cousin", "acquaintance", "pen-pal", "networker"}
    assert peers["totalCount"] == 5
    scores = [edge["score"] for edge in peers["edges"]]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < score <= 1 for score in scores)
    # Everything but the river's name is alike: every factor counts in full.
    assert scores[0] == 1.0


async def test_reasons_say_in_words_what_the_cities_share(seeded: Api, token: str) -> None:
    edges = {edge["node"]["slug"]: edge for edge in (await _peers(seeded, token))["edges"]}
    twin = _reasons(edges["twin"])
    assert twin["SHARED_HAZARDS"] == "shares FLOOD, SEA_LEVEL_RISE and COASTAL_FLOOD"
    assert twin["SAME_CLIMATE_ZONE"] == "same Köppen zone Af"
    assert twin["POPULATION_BAND"] == "population 1\u20135 M"
    assert twin["SHARED_RIVER_CONTEXT"] == "both river cities (Ciliwung; Musi)"
    assert twin["SAME_INCOME_GROUP"] == "both upper-middle income (World Bank)"
    assert twin["BOTH_COASTAL"] == "both coastal"
    assert twin["SHARED_LANGUAGES"] == "both use id and en"
    cousin = _reasons(edges["cousin"])
    assert cousin["SHARED_HAZARDS"] == "shares FLOOD and SEA_LEVEL_RISE"
    assert cousin["SAME_CLIMATE_GROUP"] == "same Köppen group A (tropical): Af and Am"
    assert cousin["POPULATION_BAND"] == "population 250 k\u20131 M, next to 1\u20135 M"
    assert set(cousin) == {
        "SHARED_HAZARDS",
        "SAME_CLIMATE_GROUP",
        "POPULATION_BAND",
        "BOTH_COASTAL",
    }
    # The strongest reason comes first: shared hazards weigh most.
    assert edges["cousin"]["reasons"][0]["code"] == "SHARED_HAZARDS"
    assert _reasons(edges["networker"]) == {
        "POPULATION_BAND": "population over 5 M, next to 1\u20135 M",
        "SHARED_NETWORKS": "both in Resilient Cities Network",
    }


async def test_paging_walks_the_same_ranking_without_repeats_or_gaps(
    seeded: Api, token: str
) -> None:
    whole = [edge["node"]["slug"] for edge in (await _peers(seeded, token))["edges"]]
    walked: list[str] = []
    after = None
    while True:
        peers = await _peers(seeded, token, first=2, after=after)
        assert len(peers["edges"]) <= 2
        assert peers["pageInfo"]["hasPreviousPage"] is (after is not None)
        walked.extend(edge["node"]["slug"] for edge in peers["edges"])
        if not peers["pageInfo"]["hasNextPage"]:
            break
        after = peers["pageInfo"]["endCursor"]
    assert walked == whole
    assert len(whole) == 5


async def test_a_city_with_nothing_stated_has_no_peers(seeded: Api, token: str) -> None:
    peers = await _peers(seeded, token, "loner")
    assert peers["edges"] == []
    assert peers["totalCount"] == 0
    assert peers["pageInfo"]["hasNextPage"] is False


async def test_an_unknown_city_is_null(seeded: Api, token: str) -> None:
    assert (await seeded.data(PEERS, {"slug": "atlantis"}, token=token))["city"] is None


async def test_a_city_that_is_not_a_member_has_no_peers(seeded: Api) -> None:
    # A `City` whose record is gone by the time its peers are ranked: an empty list, as
    # its other lists, not an internal error.
    actor = Principal("home", "cro", frozenset({"read"}), "tests")
    gone, home = peers.peer_page("atlantis", PageRequest()), peers.peer_page("home", PageRequest())
    found = await peers.peers_of(db=seeded.db, actor=actor, pages=[gone, home])
    assert found[0].items == []
    assert await found[0].total_count() == 0
    assert len(found[1].items) == 5


@pytest.mark.parametrize(
    "variables",
    [
        {"first": 101},
        {"first": -1},
        {"after": "not a cursor"},
        {"after": _cursor(["SLUG", "a", "b"])},  # another list's
        {"after": _cursor(["PEERS", 2_000_000, "twin"])},  # a score over 1
        {"after": _cursor(["PEERS", 1.5, "twin"])},
        {"after": _cursor([[[[["PEERS"]]]]])},
    ],
)
async def test_bad_paging_arguments_are_the_callers_error(
    seeded: Api, token: str, variables: dict[str, Any]
) -> None:
    body = await seeded.gql(PEERS, {"slug": "home", **variables}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body


async def test_city_attributes_are_stored_and_shown(seeded: Api, token: str) -> None:
    home = (await seeded.data(CITY, {"slug": "home"}, token=token))["city"]
    assert home == {
        "slug": "home",
        "coastal": True,
        "rivers": ["Ciliwung"],
        "incomeGroup": "UPPER_MIDDLE",
    }
    loner = (await seeded.data(CITY, {"slug": "loner"}, token=token))["city"]
    assert loner == {"slug": "loner", "coastal": None, "rivers": [], "incomeGroup": None}


async def test_city_add_takes_coast_rivers_and_income_group(api: Api) -> None:
    args = ("city", "add", "--slug", "basel", "--name", "Basel", "--country", "CH")
    code, _, err = await run_cli(
        api, *args, "--inland", "--river", "Rhine", "--income-group", "high"
    )
    assert code == 0, err
    token = await api.token("basel")
    basel = (await api.data(CITY, {"slug": "basel"}, token=token))["city"]
    assert basel == {"slug": "basel", "coastal": False, "rivers": ["Rhine"], "incomeGroup": "HIGH"}
    code, _, err = await run_cli(api, *args, "--income-group", "rich")
    assert code != 0
    assert "--income-group" in err


NESTED_PEERS = """
query Nested($first: Int!) {
  cities(first: $first) { edges { node { slug
    peers(first: 2) { totalCount edges { score node { slug } } }
    more: peers(first: 3) { totalCount }
  } } }
}"""


def _commands(metrics: str) -> float:
    pattern = r'^cityexchange_db_commands_total\{[^}]*origin="request"[^}]*\} (\S+)$'
    return sum(float(v) for v in re.findall(pattern, metrics, re.MULTILINE))


async def test_peers_of_many_cities_cost_the_round_trips_of_one(seeded: Api, token: str) -> None:
    counts: list[float] = []
    for first in (1, 5):
        await seeded.data("{ viewer { subject } }", token=token)  # the realm's keys are cached
        before = _commands((await seeded.http.get("/metrics")).text)
        data = await seeded.data(NESTED_PEERS, {"first": first}, token=token)
        counts.append(_commands((await seeded.http.get("/metrics")).text) - before)
        assert len(data["cities"]["edges"]) == first
    assert counts[0] == counts[1], counts
    # Batched, each city still gets its own ranking: the same as when asked for alone.
    for edge in data["cities"]["edges"]:
        alone = await _peers(seeded, token, edge["node"]["slug"], first=2)
        assert edge["node"]["peers"]["edges"] == [
            {"score": e["score"], "node": e["node"]} for e in alone["edges"]
        ]
        assert edge["node"]["peers"]["totalCount"] == alone["totalCount"]
