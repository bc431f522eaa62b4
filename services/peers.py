"""Peer cities: how alike two member cities are, with the reasons, and a city's ranked peers.

The score is a weighted sum of what two cities share, in [0, 1] (docs/discovery.md, "Peer
cities"). An attribute either city does not state adds nothing: unknown is not alike, so
two cities that state little cannot look like perfect peers.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from cityexchange.services.errors import InvalidInput
from cityexchange.services.models import City
from cityexchange.services.pages import Page, PageRequest, decode_cursor, encode_cursor
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store import cities as store
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Hazard, IncomeGroup


class ReasonCode(StrEnum):
    """Why a city or a solution is suggested; peer codes first, suggestion codes after."""

    SHARED_HAZARDS = "SHARED_HAZARDS"
    SAME_CLIMATE_ZONE = "SAME_CLIMATE_ZONE"
    SAME_CLIMATE_GROUP = "SAME_CLIMATE_GROUP"
    POPULATION_BAND = "POPULATION_BAND"
    BOTH_COASTAL = "BOTH_COASTAL"
    SHARED_RIVER_CONTEXT = "SHARED_RIVER_CONTEXT"
    SAME_REGION = "SAME_REGION"
    SAME_INCOME_GROUP = "SAME_INCOME_GROUP"
    SHARED_NETWORKS = "SHARED_NETWORKS"
    SHARED_LANGUAGES = "SHARED_LANGUAGES"
    # Suggestions (services/suggestions.py, services/evidence.py).
    MATCHED_TERMS = "MATCHED_TERMS"
    STATUS = "STATUS"
    EVIDENCE_LEVEL = "EVIDENCE_LEVEL"
    STATED_OUTCOMES = "STATED_OUTCOMES"
    REPORTED_OUTCOMES = "REPORTED_OUTCOMES"
    ADOPTIONS = "ADOPTIONS"
    ABANDONED = "ABANDONED"
    ANSWERED = "ANSWERED"
    ENDORSEMENTS = "ENDORSEMENTS"
    FRESHNESS = "FRESHNESS"


@dataclass(frozen=True, slots=True)
class MatchReason:
    code: ReasonCode
    text: str


@dataclass(frozen=True, slots=True)
class PeerMatch:
    score: float
    reasons: tuple[MatchReason, ...]


@dataclass(frozen=True, slots=True)
class Peer:
    city: City
    match: PeerMatch


# The weights sum to 1. Hazards weigh most: a city learns most from one that faces the same
# shocks and stresses; climate and size decide whether a measure works there at all.
WEIGHTS: dict[ReasonCode, float] = {
    ReasonCode.SHARED_HAZARDS: 0.35,
    ReasonCode.SAME_CLIMATE_ZONE: 0.15,
    ReasonCode.POPULATION_BAND: 0.10,
    ReasonCode.BOTH_COASTAL: 0.08,
    ReasonCode.SAME_INCOME_GROUP: 0.08,
    ReasonCode.SAME_REGION: 0.07,
    ReasonCode.SHARED_NETWORKS: 0.06,
    ReasonCode.SHARED_LANGUAGES: 0.06,
    ReasonCode.SHARED_RIVER_CONTEXT: 0.05,
}
CLIMATE_GROUP_SHARE = 0.5  # of the zone's weight, for the same Köppen main group only
ADJACENT_BAND_SHARE = 0.5  # of the band's weight, for neighbouring population bands
# Hazards nearly every city lists say little about which cities are alike.
HAZARD_WEIGHTS: dict[Hazard, float] = {
    Hazard.CLIMATE_CHANGE: 0.3,
    Hazard.SOCIAL_COHESION: 0.6,
    Hazard.ECONOMIC_INEQUALITY: 0.6,
    Hazard.AGING_INFRASTRUCTURE: 0.6,
    Hazard.GOVERNANCE: 0.6,
}
# Upper bounds of the bands <250k, 250k-1M, 1-5M (5 M included); above is >5M.
POPULATION_BANDS = (250_000, 1_000_000, 5_000_001)
BAND_LABELS = ("under 250 k", "250 k\u20131 M", "1\u20135 M", "over 5 M")  # en dashes
KOPPEN_GROUPS = {"A": "tropical", "B": "arid", "C": "temperate", "D": "continental", "E": "polar"}
INCOME_LABELS = {
    IncomeGroup.LOW: "low",
    IncomeGroup.LOWER_MIDDLE: "lower-middle",
    IncomeGroup.UPPER_MIDDLE: "upper-middle",
    IncomeGroup.HIGH: "high",
}
BATCH = 5_000  # cities read per round trip while ranking peers
SCORE_DIGITS = 6  # scores are rounded so that a cursor holds them exactly
_CURSOR = "PEERS"


def _and(items: Iterable[str]) -> str:
    listed = list(items)
    return listed[0] if len(listed) == 1 else f"{', '.join(listed[:-1])} and {listed[-1]}"


def _hazards(a: City, b: City) -> tuple[float, MatchReason] | None:
    ours, theirs = dict.fromkeys(a.profile.hazards), set(b.profile.hazards)
    shared = [h for h in ours if h in theirs]
    if not shared:
        return None
    # Weighted Jaccard over the two profiles: shared weight over the weight of either's.
    weight = HAZARD_WEIGHTS.get
    union = sum(weight(h, 1.0) for h in set(ours) | theirs)
    similarity = sum(weight(h, 1.0) for h in shared) / union
    return similarity, MatchReason(ReasonCode.SHARED_HAZARDS, f"shares {_and(shared)}")


def _climate(a: City, b: City) -> tuple[float, MatchReason] | None:
    ours, theirs = (a.climate_zone or "").strip(), (b.climate_zone or "").strip()
    if not ours or not theirs:
        return None
    if ours == theirs:
        return 1.0, MatchReason(ReasonCode.SAME_CLIMATE_ZONE, f"same Köppen zone {ours}")
    group = ours[0].upper()
    if group in KOPPEN_GROUPS and theirs[0].upper() == group:
        text = f"same Köppen group {group} ({KOPPEN_GROUPS[group]}): {ours} and {theirs}"
        return CLIMATE_GROUP_SHARE, MatchReason(ReasonCode.SAME_CLIMATE_GROUP, text)
    return None


def population_band(population: int) -> int:
    """The band of a population: 0 <250k, 1 250k-1M, 2 1-5M, 3 >5M."""
    return sum(population >= bound for bound in POPULATION_BANDS)


def _population(a: City, b: City) -> tuple[float, MatchReason] | None:
    if a.population is None or b.population is None:
        return None
    ours, theirs = population_band(a.population), population_band(b.population)
    if ours == theirs:
        return 1.0, MatchReason(ReasonCode.POPULATION_BAND, f"population {BAND_LABELS[ours]}")
    if abs(ours - theirs) == 1:
        text = f"population {BAND_LABELS[theirs]}, next to {BAND_LABELS[ours]}"
        return ADJACENT_BAND_SHARE, MatchReason(ReasonCode.POPULATION_BAND, text)
    return None


def _coast(a: City, b: City) -> tuple[float, MatchReason] | None:
    if a.coastal and b.coastal:
        return 1.0, MatchReason(ReasonCode.BOTH_COASTAL, "both coastal")
    return None


def _rivers(a: City, b: City) -> tuple[float, MatchReason] | None:
    if not a.rivers or not b.rivers:
        return None
    theirs = {r.casefold() for r in b.rivers}
    shared = [r for r in a.rivers if r.casefold() in theirs]
    if shared:
        text = f"both on the {_and(shared)}"
    else:
        text = f"both river cities ({_and(a.rivers)}; {_and(b.rivers)})"
    return 1.0, MatchReason(ReasonCode.SHARED_RIVER_CONTEXT, text)


def _region(a: City, b: City) -> tuple[float, MatchReason] | None:
    if a.region and b.region and a.region.casefold() == b.region.casefold():
        return 1.0, MatchReason(ReasonCode.SAME_REGION, f"both in {b.region}")
    return None


def _income(a: City, b: City) -> tuple[float, MatchReason] | None:
    if a.income_group is None or a.income_group != b.income_group:
        return None
    text = f"both {INCOME_LABELS[a.income_group]} income (World Bank)"
    return 1.0, MatchReason(ReasonCode.SAME_INCOME_GROUP, text)


def _networks(a: City, b: City) -> tuple[float, MatchReason] | None:
    theirs = set(b.networks)
    shared = [n for n in dict.fromkeys(a.networks) if n in theirs]
    if not shared:
        return None
    similarity = len(shared) / len(set(a.networks) | theirs)
    return similarity, MatchReason(ReasonCode.SHARED_NETWORKS, f"both in {_and(shared)}")


def _languages(a: City, b: City) -> tuple[float, MatchReason] | None:
    # One shared language is enough to read each other's case studies as written.
    theirs = {language.casefold() for language in b.languages}
    shared = [x for x in dict.fromkeys(a.languages) if x.casefold() in theirs]
    if not shared:
        return None
    return 1.0, MatchReason(ReasonCode.SHARED_LANGUAGES, f"both use {_and(shared)}")


_FACTORS = (
    (ReasonCode.SHARED_HAZARDS, _hazards),
    (ReasonCode.SAME_CLIMATE_ZONE, _climate),
    (ReasonCode.POPULATION_BAND, _population),
    (ReasonCode.BOTH_COASTAL, _coast),
    (ReasonCode.SHARED_RIVER_CONTEXT, _rivers),
    (ReasonCode.SAME_REGION, _region),
    (ReasonCode.SAME_INCOME_GROUP, _income),
    (ReasonCode.SHARED_NETWORKS, _networks),
    (ReasonCode.SHARED_LANGUAGES, _languages),
)


def match(a: City, b: City) -> PeerMatch:
    """How alike `b` is to `a`: a score in [0, 1] and the reasons, strongest first."""
    if a.slug == b.slug:
        return PeerMatch(0.0, ())
    parts: list[tuple[float, MatchReason]] = []
    for code, factor in _FACTORS:
        found = factor(a, b)
        if found is not None:
            parts.append((WEIGHTS[code] * found[0], found[1]))
    parts.sort(key=lambda part: -part[0])  # stable: ties keep the factors' order
    score = round(min(1.0, sum(part for part, _ in parts)), SCORE_DIGITS)
    return PeerMatch(score, tuple(reason for _, reason in parts))


def _cursor(score: float, slug: str) -> str:
    micros = round(score * 10**SCORE_DIGITS)
    return encode_cursor(json.dumps([_CURSOR, micros, slug], separators=(",", ":")))


def _position(cursor: str) -> tuple[int, str]:
    """(-score in millionths, slug) of a peer cursor: the sort key after which a page goes."""
    try:
        parts: object = json.loads(decode_cursor(cursor, field="after"))
    except (ValueError, RecursionError):
        parts = None
    match parts:
        case [str(kind), int(micros), str(slug)] if kind == _CURSOR and 0 <= micros <= 10**6:
            return -micros, slug
        case _:
            raise InvalidInput("after", "is not a cursor of a list of peer cities")


@dataclass(frozen=True, slots=True)
class PeerPage:
    """One page of a city's peers, checked: its size and the sort key it starts after."""

    city: str
    size: int
    after: tuple[int, str] | None  # (-score in millionths, slug) of the last peer seen


def peer_page(city: str, request: PageRequest) -> PeerPage:
    """The page `request` asks of `city`'s peers; InvalidInput when it is not one."""
    request.validate()
    if request.backward:
        raise InvalidInput("last", "peer cities page forward only: use 'first' and 'after'")
    after = _position(request.after) if request.after is not None else None
    return PeerPage(city, request.size, after)


@dataclass(slots=True)
class _Ranking:
    """The best `size + 1` peers after the page's cursor so far, and how many there are."""

    page: PeerPage
    asking: City | None
    kept: list[tuple[int, str, Peer]] = field(default_factory=list[tuple[int, str, Peer]])
    total: int = 0

    def score(self, members: Sequence[City]) -> None:
        if self.asking is None:
            return  # not a member city: nothing in common with any
        after = self.page.after
        for other in members:
            found = match(self.asking, other)
            if found.score <= 0:
                continue
            self.total += 1
            key = (-round(found.score * 10**SCORE_DIGITS), other.slug)
            if after is None or key > after:
                self.kept.append((*key, Peer(other, found)))
        self.kept = heapq.nsmallest(self.page.size + 1, self.kept, key=lambda k: (k[0], k[1]))

    def result(self) -> Page[Peer]:
        size, total = self.page.size, self.total
        best = self.kept[:size]

        async def count() -> int:
            return total

        return Page(
            items=[peer for *_, peer in best],
            cursors=[_cursor(peer.match.score, peer.city.slug) for *_, peer in best],
            has_next_page=len(self.kept) > size,
            has_previous_page=self.page.after is not None,
            count=count,
        )


async def peers_of(
    *, db: Database, actor: Principal, pages: Sequence[PeerPage]
) -> list[Page[Peer]]:
    """Each page of peers (best first, ties by slug; cities with nothing in common left
    out), aligned to `pages`, from one walk over the member cities in batches of BATCH
    however many pages and cities ask. A city that is not a member has no peers."""
    actor.require(Scope.READ)
    if not pages:
        return []
    members = await store.cities_after(db, None, limit=BATCH)
    wanted = {page.city for page in pages}
    if len(members) < BATCH:
        # The whole network is in hand: so are the asking cities (no read of their own).
        asking = {city.slug: city for city in members if city.slug in wanted}
    else:
        found = await store.cities_by_slugs(db, sorted(wanted))
        asking = {city.slug: city for city in found if city is not None}
    rankings = [_Ranking(page, asking.get(page.city)) for page in pages]
    while True:
        for ranking in rankings:
            ranking.score(members)
        if len(members) < BATCH:
            break
        members = await store.cities_after(db, members[-1].slug, limit=BATCH)
    return [ranking.result() for ranking in rankings]
