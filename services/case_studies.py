"""Comparing case studies: the solution filters beyond the shared ListingFilter (cost, evidence,
take-up, the implementing city's attributes), and the evidence and EUR figures they compare
(docs/discovery.md, "Comparing case studies")."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from cityexchange.services import limits, money
from cityexchange.services.errors import InvalidInput
from cityexchange.services.models import EVIDENCE_LEVELS, Cost, Evidence
from cityexchange.services.taxonomy import IncomeGroup

# A Köppen-Geiger code or its head: "A" (tropical), "Cf", "Cfb", "BWh", "ET".
_CLIMATE = re.compile(r"^[A-Za-z]{1,3}$")
# An ISO 639 language code as cities store them ("nl", "yo", "mi").
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_RESIDENTS_MAX = 10_000_000_000  # more than live on Earth; keeps the figure in BSON's int64


@dataclass(frozen=True, slots=True)
class MoneyRange:
    """Bounds of an amount in `currency`; either bound may be open."""

    min: float | None = None
    max: float | None = None
    currency: str = money.EUR


@dataclass(frozen=True, slots=True)
class EurRange:
    """Bounds in euros, as compared with the stored EUR figures."""

    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, slots=True)
class CityCriteria:
    """Attributes of the implementing city; values within a field are alternatives (OR)."""

    climate_zones: tuple[str, ...] = ()  # codes or their heads: "A" matches Af, Am and Aw
    population_min: int | None = None
    population_max: int | None = None
    regions: tuple[str, ...] = ()
    coastal: bool | None = None
    networks: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    income_groups: tuple[IncomeGroup, ...] = ()

    def checked(self) -> CityCriteria | None:
        """The same criteria with sizes and codes checked; None when they ask for nothing."""
        field = ("filter", "city")
        zones = limits.items((*field, "climateZones"), self.climate_zones)
        for zone in zones:
            if not _CLIMATE.match(zone):
                raise InvalidInput(
                    (*field, "climateZones"), "must be Köppen codes or their heads, e.g. 'A', 'Cfb'"
                )
        languages = tuple(
            c.strip().lower() for c in limits.items((*field, "languages"), self.languages)
        )
        for code in languages:
            if not _LANGUAGE.match(code):
                raise InvalidInput((*field, "languages"), "must be ISO 639 codes such as 'nl'")
        for name, value in (
            ("populationMin", self.population_min),
            ("populationMax", self.population_max),
        ):
            limits.non_negative((*field, name), value)
        low, high = self.population_min, self.population_max
        if low is not None and high is not None and low > high:
            raise InvalidInput((*field, "populationMax"), "must not be below populationMin")
        checked = CityCriteria(
            climate_zones=zones,
            population_min=low,
            population_max=high,
            regions=limits.texts((*field, "regions"), self.regions),
            coastal=self.coastal,
            networks=limits.texts((*field, "networks"), self.networks),
            languages=languages,
            income_groups=limits.items((*field, "incomeGroups"), self.income_groups),
        )
        return None if checked == CityCriteria() else checked


@dataclass(frozen=True, slots=True)
class SolutionCriteria:
    """Filters that compare case studies; they combine (AND) with each other and the listing."""

    cost: MoneyRange | None = None
    cost_per_resident: MoneyRange | None = None
    evidence_level_min: int | None = None
    has_outcomes: bool | None = None  # stated outcomes, or outcome reports (reportedOutcomeCount)
    adoption_count_min: int | None = None
    city: CityCriteria | None = None

    def checked(self) -> CheckedCriteria:
        """The criteria with bounds in euros and every value checked."""
        level = self.evidence_level_min
        if level is not None and level not in EVIDENCE_LEVELS:
            raise InvalidInput(("filter", "evidenceLevelMin"), "must be a level from 1 to 5")
        limits.non_negative(("filter", "adoptionCountMin"), self.adoption_count_min)
        return CheckedCriteria(
            cost_eur=_eur_range("cost", self.cost),
            cost_per_resident_eur=_eur_range("costPerResident", self.cost_per_resident),
            evidence_level_min=level,
            has_outcomes=self.has_outcomes,
            adoption_count_min=self.adoption_count_min or None,
            city=self.city.checked() if self.city else None,
        )


@dataclass(frozen=True, slots=True)
class CheckedCriteria:
    """SolutionCriteria with bounds in euros, ready for the store."""

    cost_eur: EurRange | None = None
    cost_per_resident_eur: EurRange | None = None
    evidence_level_min: int | None = None
    has_outcomes: bool | None = None
    adoption_count_min: int | None = None  # None: no bound (a missing counter counts as 0)
    city: CityCriteria | None = None


def _eur_range(name: str, given: MoneyRange | None) -> EurRange | None:
    if given is None:
        return None
    field = ("filter", name)
    at = (*field, "currency")
    money.rated_currency(given.currency, field=at)  # even without bounds: a typo is an error
    if given.min is None and given.max is None:
        return None
    for bound, value in (("min", given.min), ("max", given.max)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise InvalidInput((*field, bound), "must be a non-negative number")
    if given.min is not None and given.max is not None and given.min > given.max:
        raise InvalidInput((*field, "max"), "must not be below min")
    return EurRange(
        min=None if given.min is None else money.convert_bound(given.min, given.currency, field=at),
        max=None if given.max is None else money.convert_bound(given.max, given.currency, field=at),
    )


def checked_evidence(evidence: Evidence | None) -> Evidence | None:
    """A stated evidence level (1 to 5) with at most LIST_MAX http(s) links."""
    if evidence is None:
        return None
    if evidence.level not in EVIDENCE_LEVELS:
        raise InvalidInput(("evidence", "level"), "must be a level from 1 to 5 (Nesta)")
    links = limits.items(("evidence", "links"), evidence.links)
    for index, link in enumerate(links):
        at = ("evidence", "links", str(index))
        if not link.url.startswith(("https://", "http://")) or len(link.url) > 2000:
            raise InvalidInput((*at, "url"), "must be an http(s) URL")
        limits.optional_text((*at, "title"), link.title, max_length=limits.SHORT_TEXT_MAX)
    return Evidence(evidence.level, links)


def checked_residents(residents: int | None) -> int | None:
    if residents is not None and not 1 <= residents <= _RESIDENTS_MAX:
        raise InvalidInput("residentsServed", f"must be between 1 and {_RESIDENTS_MAX}")
    return residents


def priced(cost: Cost | None) -> Cost | None:
    """`cost` with its EUR figure at its year's average rate (None for unrated currencies)."""
    if cost is None:
        return None
    return replace(cost, eur=money.to_eur(cost.amount, cost.currency, cost.year))


def per_resident(cost_eur: float | None, residents: int | None) -> float | None:
    if cost_eur is None or not residents:
        return None
    return round(cost_eur / residents, 4)
