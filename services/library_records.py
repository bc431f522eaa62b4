"""Records of a case-study library in JSON Lines (docs/import.md), read and checked one line at
a time: a record is a city, a problem or a solution, keyed by its external id."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, TypeVar

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
from cityexchange.services.taxonomy import (
    Hazard,
    IncomeGroup,
    Sector,
    SolutionStatus,
    Urgency,
)
from cityexchange.services.text import Language

E = TypeVar("E", bound=StrEnum)
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


class _Fields:
    """Typed reads of one JSON object; every error names the field's path."""

    def __init__(self, value: object, path: tuple[str, ...] = ()) -> None:
        if not isinstance(value, dict):
            raise InvalidInput(path or ("record",), "must be a JSON object")
        self._doc: dict[str, Any] = value  # pyright: ignore[reportUnknownVariableType]
        self._path = path
        self._read: set[str] = set()

    def _get(self, name: str, required: bool) -> object:
        self._read.add(name)
        value = self._doc.get(name)
        if value is None and required:
            raise InvalidInput(self.at(name), "is required")
        return value

    def at(self, name: str) -> tuple[str, ...]:
        return (*self._path, name)

    def text(self, name: str, *, max_length: int = limits.SHORT_TEXT_MAX) -> str:
        value = self._get(name, True)
        if not isinstance(value, str):
            raise InvalidInput(self.at(name), "must be a string")
        return limits.text(self.at(name), value, max_length=max_length)

    def optional_text(self, name: str, *, max_length: int = limits.SHORT_TEXT_MAX) -> str | None:
        return None if self._doc.get(name) is None else self.text(name, max_length=max_length)

    def texts(self, name: str, *, max_length: int = limits.SHORT_TEXT_MAX) -> tuple[str, ...]:
        values = self._list(name)
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise InvalidInput((*self.at(name), str(i)), "must be a string")
        return limits.texts(self.at(name), values, max_length=max_length)  # pyright: ignore[reportArgumentType]

    def _list(self, name: str) -> tuple[object, ...]:
        value = self._get(name, False)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise InvalidInput(self.at(name), "must be a list")
        items: list[object] = value  # pyright: ignore[reportUnknownVariableType]
        if len(items) > limits.LIST_MAX:
            raise InvalidInput(self.at(name), f"must have at most {limits.LIST_MAX} items")
        return tuple(items)

    def integer(
        self, name: str, *, low: int = 0, high: int = 10**12, required: bool = False
    ) -> int | None:
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(self.at(name), f"must be a whole number from {low} to {high}")
        return value

    def number(self, name: str, *, required: bool = False) -> float | None:
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(self.at(name), "must be a number")
        if not math.isfinite(value) or abs(value) > 1e15:
            raise InvalidInput(self.at(name), "must be a finite number below 10^15")
        return float(value)

    def boolean(self, name: str) -> bool | None:
        value = self._get(name, False)
        if value is not None and not isinstance(value, bool):
            raise InvalidInput(self.at(name), "must be true or false")
        return value

    def day(self, name: str) -> date | None:
        value = self._get(name, False)
        if value is None:
            return None
        if isinstance(value, str) and len(value) == 10:
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise InvalidInput(self.at(name), "must be a date written YYYY-MM-DD")

    def choice(self, name: str, enum: type[E], *, required: bool = False) -> E | None:
        value = self._get(name, required)
        if value is None:
            return None
        try:
            return enum(value)
        except ValueError:
            names = ", ".join(e.value for e in enum)
            raise InvalidInput(self.at(name), f"must be one of {names}") from None

    def choices(self, name: str, enum: type[E]) -> tuple[E, ...]:
        found: list[E] = []
        for i, value in enumerate(self._list(name)):
            try:
                found.append(enum(value))
            except ValueError:
                raise InvalidInput(
                    (*self.at(name), str(i)), f"{value!r} is not a {enum.__name__}"
                ) from None
        return tuple(found)

    def nested(self, name: str) -> _Fields | None:
        value = self._get(name, False)
        return None if value is None else _Fields(value, self.at(name))

    def objects(self, name: str) -> list[_Fields]:
        return [_Fields(v, (*self.at(name), str(i))) for i, v in enumerate(self._list(name))]

    def done(self) -> None:
        """Refuse fields nobody read: a misspelt field must not be dropped silently."""
        unknown = sorted(set(self._doc) - self._read)
        if unknown:
            raise InvalidInput(self.at(unknown[0]), "is not a field of this record")


def _source(f: _Fields) -> Source:
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


def _url(f: _Fields, name: str) -> str | None:
    url = f.optional_text(name, max_length=2_000)
    if url is not None and not url.startswith(("https://", "http://")):
        raise InvalidInput(f.at(name), "must be an http(s) URL")
    return url


def _links(f: _Fields, name: str) -> tuple[Link, ...]:
    found: list[Link] = []
    for item in f.objects(name):
        url = _url(item, "url")
        if url is None:
            raise InvalidInput(item.at("url"), "is required")
        found.append(Link(url, item.optional_text("title")))
        item.done()
    return tuple(found)


def _city(f: _Fields, line: int, external_id: str) -> CityRecord:
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


def _problem(f: _Fields, line: int, external_id: str) -> ProblemRecord:
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


def _details(f: _Fields) -> SolutionDetails:
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


def _solution(f: _Fields, line: int, external_id: str) -> SolutionRecord:
    problems = f.texts("problems", max_length=EXTERNAL_ID_MAX)
    return SolutionRecord(
        line=line,
        external_id=external_id,
        city=f.text("city"),
        language=f.choice("language", Language),
        title=f.text("title", max_length=limits.TITLE_MAX),
        summary=f.text("summary", max_length=limits.SUMMARY_MAX),
        hazards=f.choices("hazards", Hazard),
        problems=problems,
        adapted_from=f.optional_text("adaptedFrom", max_length=EXTERNAL_ID_MAX),
        adaptation_notes=f.optional_text("adaptationNotes", max_length=limits.NOTE_MAX),
        details=_details(f),
        source=_source(f),
    )


_READERS: Mapping[str, Callable[[_Fields, int, str], Record]] = {
    "city": _city,
    "problem": _problem,
    "solution": _solution,
}


def parse_line(line: int, text: str) -> Record:
    """The record on line `line`; InvalidInput naming the field when it is not one."""
    if len(text) > LINE_MAX:
        raise InvalidInput("record", f"is longer than {LINE_MAX} characters")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput("record", f"is not JSON ({exc})") from None
    f = _Fields(value)
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
    (blank lines are skipped); duplicate ids and dangling references are errors too."""
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
        for item in reversed(chain):
            placed[item] = None
    return [*cities, *problems, *(solutions[i] for i in placed)]
