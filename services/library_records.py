"""Records of a case-study library in JSON Lines (docs/import.md), read and checked one line at
a time: a record is a city, a problem or a solution, keyed by its external id."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from cityexchange.services import limits
from cityexchange.services.errors import InvalidInput
from cityexchange.services.models import (
    Contact,
    Cost,
    Evidence,
    GeoPoint,
    Link,
    Outcome,
    ResilienceProfile,
    SolutionDetails,
    Transferability,
)
from cityexchange.services.record_fields import Fields
from cityexchange.services.taxonomy import (
    Hazard,
    IncomeGroup,
    Sector,
    SolutionStatus,
    Urgency,
)
from cityexchange.services.text import Language

LINE_MAX = 200_000  # characters; the longest valid record (a 50,000-character body) fits
EXTERNAL_ID_MAX = 100
_KINDS = ("city", "problem", "solution")


@dataclass(frozen=True, slots=True)
class Source:
    """Where a record's facts come from."""

    publisher: str
    title: str
    year: int | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class CityRecord:
    line: int
    external_id: str
    slug: str
    name: str
    country: str
    region: str | None
    population: int | None
    location: GeoPoint | None
    timezone: str | None
    languages: tuple[str, ...]
    climate_zone: str | None
    coastal: bool | None
    rivers: tuple[str, ...]
    income_group: IncomeGroup | None
    profile: ResilienceProfile
    networks: tuple[str, ...]
    contact: Contact | None
    source: Source


@dataclass(frozen=True, slots=True)
class ProblemRecord:
    line: int
    external_id: str
    city: str
    language: Language | None
    title: str
    summary: str
    body: str | None
    hazards: tuple[Hazard, ...]
    sectors: tuple[Sector, ...]
    tags: tuple[str, ...]
    urgency: Urgency
    affected_population: int | None
    stakeholders: tuple[str, ...]
    source: Source


@dataclass(frozen=True, slots=True)
class SolutionRecord:
    line: int
    external_id: str
    city: str
    language: Language | None
    title: str
    summary: str
    hazards: tuple[Hazard, ...]
    problems: tuple[str, ...]  # external ids
    adapted_from: str | None  # an external id
    adaptation_notes: str | None
    details: SolutionDetails
    source: Source


Record = CityRecord | ProblemRecord | SolutionRecord


@dataclass(frozen=True, slots=True)
class RecordError:
    """Why line `line` (record `external_id`, when it got that far) cannot be imported."""

    line: int
    external_id: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" ({self.external_id})" if self.external_id else "")
        return f"{where}: {self.message}"


def _source(f: Fields) -> Source:
    s = f.nested("source")
    if s is None:
        raise InvalidInput(f.at("source"), "is required: say where the facts come from")
    source = Source(
        publisher=s.text("publisher"),
        title=s.text("title", max_length=limits.SHORT_TEXT_MAX),
        year=s.integer("year", low=1900, high=2100),
        url=_url(s, "url"),
    )
    s.done()
    return source


def _url(f: Fields, name: str) -> str | None:
    url = f.optional_text(name, max_length=2_000)
    if url is not None and not url.startswith(("https://", "http://")):
        raise InvalidInput(f.at(name), "must be an http(s) URL")
    return url


def _links(f: Fields, name: str) -> tuple[Link, ...]:
    found: list[Link] = []
    for item in f.objects(name):
        url = _url(item, "url")
        if url is None:
            raise InvalidInput(item.at("url"), "is required")
        found.append(Link(url, item.optional_text("title")))
        item.done()
    return tuple(found)


def _city(f: Fields, line: int, external_id: str) -> CityRecord:
    lat, lon = f.number("latitude"), f.number("longitude")
    if (lat is None) != (lon is None):
        raise InvalidInput(f.at("latitude"), "latitude and longitude come together")
    if lat is not None and lon is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise InvalidInput(f.at("latitude"), "is outside the globe")
    return CityRecord(
        line=line,
        external_id=external_id,
        slug=f.text("slug"),
        name=f.text("name"),
        country=f.text("country"),
        region=f.optional_text("region"),
        population=f.integer("population"),
        location=GeoPoint(longitude=lon, latitude=lat)
        if lat is not None and lon is not None
        else None,
        timezone=f.optional_text("timezone"),
        languages=f.texts("languages"),
        climate_zone=f.optional_text("climateZone"),
        coastal=f.boolean("coastal"),
        rivers=f.texts("rivers"),
        income_group=f.choice("incomeGroup", IncomeGroup),
        profile=ResilienceProfile(
            f.choices("hazards", Hazard),
            f.optional_text("strategy"),
            f.integer("strategyYear", low=1900, high=2100),
        ),
        networks=f.texts("networks"),
        contact=None,
        source=_source(f),
    )


def _problem(f: Fields, line: int, external_id: str) -> ProblemRecord:
    return ProblemRecord(
        line=line,
        external_id=external_id,
        city=f.text("city"),
        language=f.choice("language", Language),
        title=f.text("title", max_length=limits.TITLE_MAX),
        summary=f.text("summary", max_length=limits.SUMMARY_MAX),
        body=f.optional_text("body", max_length=limits.BODY_MAX),
        hazards=f.choices("hazards", Hazard),
        sectors=f.choices("sectors", Sector),
        tags=f.texts("tags"),
        urgency=f.choice("urgency", Urgency) or Urgency.ROUTINE,
        affected_population=f.integer("affectedPopulation"),
        stakeholders=f.texts("stakeholders"),
        source=_source(f),
    )


def _details(f: Fields) -> SolutionDetails:
    cost = f.nested("cost")
    costed = None
    if cost is not None:
        amount = cost.number("amount", required=True)
        year = cost.integer("year", low=1900, high=2100, required=True)
        if amount is None or amount <= 0 or year is None:
            raise InvalidInput(cost.at("amount"), "must be a positive number")
        costed = Cost(amount=amount, currency=cost.text("currency"), year=year)
        cost.done()
    outcomes: list[Outcome] = []
    for o in f.objects("outcomes"):
        value = o.number("value", required=True)
        outcomes.append(
            Outcome(
                o.text("metric"),
                0.0 if value is None else value,
                o.optional_text("unit"),
                o.optional_text("note", max_length=limits.NOTE_MAX),
            )
        )
        o.done()
    transfer = f.nested("transferability")
    transferability = None
    if transfer is not None:
        transferability = Transferability(
            transfer.texts("prerequisites", max_length=limits.NOTE_MAX),
            transfer.optional_text("context", max_length=limits.NOTE_MAX),
            transfer.optional_text("doDifferently", max_length=limits.NOTE_MAX),
        )
        transfer.done()
    evidence = f.nested("evidence")
    proven = None
    if evidence is not None:
        level = evidence.integer("level", low=1, high=5, required=True)
        proven = Evidence(level or 1, _links(evidence, "links"))
        evidence.done()
    return SolutionDetails(
        body=f.optional_text("body", max_length=limits.BODY_MAX),
        status=f.choice("status", SolutionStatus, required=True) or SolutionStatus.IMPLEMENTED,
        started_on=f.day("startedOn"),
        completed_on=f.day("completedOn"),
        cost=costed,
        funding_sources=f.texts("fundingSources"),
        partners=f.texts("partners"),
        outcomes=tuple(outcomes),
        success_factors=f.texts("successFactors", max_length=limits.NOTE_MAX),
        limiting_factors=f.texts("limitingFactors", max_length=limits.NOTE_MAX),
        transferability=transferability,
        links=_links(f, "links"),
        sectors=f.choices("sectors", Sector),
        tags=f.texts("tags"),
        evidence=proven,
        residents_served=f.integer("residentsServed"),
    )


def _references(f: Fields, name: str, kind: str, values: tuple[str, ...]) -> tuple[str, ...]:
    for i, value in enumerate(values):
        if not value.startswith(f"{kind}:"):
            raise InvalidInput((*f.at(name), str(i)), f"must be the externalId of a {kind}")
    return values


def _solution(f: Fields, line: int, external_id: str) -> SolutionRecord:
    problems = _references(
        f, "problems", "problem", f.texts("problems", max_length=EXTERNAL_ID_MAX)
    )
    original = f.optional_text("adaptedFrom", max_length=EXTERNAL_ID_MAX)
    if original is not None and not original.startswith("solution:"):
        raise InvalidInput(f.at("adaptedFrom"), "must be the externalId of a solution")
    return SolutionRecord(
        line=line,
        external_id=external_id,
        city=f.text("city"),
        language=f.choice("language", Language),
        title=f.text("title", max_length=limits.TITLE_MAX),
        summary=f.text("summary", max_length=limits.SUMMARY_MAX),
        hazards=f.choices("hazards", Hazard),
        problems=problems,
        adapted_from=original,
        adaptation_notes=f.optional_text("adaptationNotes", max_length=limits.NOTE_MAX),
        details=_details(f),
        source=_source(f),
    )


_READERS: Mapping[str, Callable[[Fields, int, str], Record]] = {
    "city": _city,
    "problem": _problem,
    "solution": _solution,
}


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.path = key


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object that names a field once: with two, json.loads would keep the last."""
    found: dict[str, object] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found


def parse_line(line: int, text: str) -> Record:
    """The record on line `line`; InvalidInput naming the field when it is not one."""
    if len(text) > LINE_MAX:
        raise InvalidInput("record", f"is longer than {LINE_MAX} characters")
    try:
        value = json.loads(text, object_pairs_hook=_object)
    except _DuplicateKey as exc:
        raise InvalidInput(exc.path, "appears twice in one object") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidInput("record", f"is not JSON ({exc})") from None
    f = Fields(value)
    kind = f.choice("kind", _Kind, required=True)
    external_id = f.text("externalId", max_length=EXTERNAL_ID_MAX)
    if kind is None or not external_id.startswith(f"{kind.value}:"):
        raise InvalidInput("externalId", f"must start with '{kind}:'")
    record = _READERS[kind.value](f, line, external_id)
    f.done()
    return record


class _Kind(StrEnum):
    CITY = "city"
    PROBLEM = "problem"
    SOLUTION = "solution"


def read(lines: Iterable[str]) -> tuple[list[Record], list[RecordError]]:
    """Every record of a library, and what is wrong with the lines that are not records
    (blank lines are skipped); a duplicate id is an error too. References are resolved when
    importing: they may name records imported before, from another file."""
    records: list[Record] = []
    errors: list[RecordError] = []
    seen: set[str] = set()
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            record = parse_line(number, text)
        except InvalidInput as exc:
            errors.append(RecordError(number, _id_of(text), str(exc)))
            continue
        if record.external_id in seen:
            errors.append(RecordError(number, record.external_id, "appears more than once"))
            continue
        seen.add(record.external_id)
        records.append(record)
    return records, errors


def _id_of(text: str) -> str | None:
    """The external id of a line that failed to parse, if it gets that far, for the message."""
    try:
        value = json.loads(text) if len(text) <= LINE_MAX else None
    except (ValueError, RecursionError):
        return None
    found = value.get("externalId") if isinstance(value, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return found[:EXTERNAL_ID_MAX] if isinstance(found, str) else None


def in_order(records: Sequence[Record]) -> list[Record]:
    """Cities, then problems, then solutions with every original before its adaptations."""
    cities = [r for r in records if isinstance(r, CityRecord)]
    problems = [r for r in records if isinstance(r, ProblemRecord)]
    solutions = {r.external_id: r for r in records if isinstance(r, SolutionRecord)}
    placed: dict[str, None] = {}
    for external_id in solutions:
        chain: list[str] = []
        at: str | None = external_id
        # Walk up to the first original already placed (or outside this file); each
        # solution is pushed once, so the whole ordering is linear.
        while at is not None and at in solutions and at not in placed and at not in chain:
            chain.append(at)
            at = solutions[at].adapted_from
        if at is not None and at in chain:
            raise AdaptationCycle(solutions[at], chain[chain.index(at) :])
        for item in reversed(chain):
            placed[item] = None
    return [*cities, *problems, *(solutions[i] for i in placed)]


class AdaptationCycle(Exception):
    """Solutions adapted from each other in a ring: none of them can be imported first."""

    def __init__(self, record: SolutionRecord, ring: list[str]) -> None:
        self.error = RecordError(
            record.line,
            record.external_id,
            "adaptedFrom goes round in a cycle: " + " <- ".join(ring),
        )
        super().__init__(str(self.error))
