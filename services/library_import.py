"""Import a case-study library (services/library_records.py) through the same use cases as the
API: each record once, found again by its external id, so a run that stopped can run again."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cityexchange.services import cities, problems, solutions
from cityexchange.services.clock import now
from cityexchange.services.errors import NotFound, ServiceError
from cityexchange.services.library_records import (
    CityRecord,
    ProblemRecord,
    Record,
    RecordError,
    SolutionRecord,
)
from cityexchange.services.models import City
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store import cities as city_store
from cityexchange.services.store import problems as problem_store
from cityexchange.services.store import solutions as solution_store
from cityexchange.services.store.database import Database

IMPORTER = "import"  # the subject and client of the writes, in the event log
LOOKUP_BATCH = 500
_SCOPES = frozenset({Scope.READ.value, Scope.PUBLISH.value})


@dataclass(slots=True)
class ImportSummary:
    imported: int = 0
    skipped: int = 0  # already in the exchange
    errors: list[RecordError] = field(default_factory=list[RecordError])


Progress = Callable[[Record, str], None]
"""Called after each record with what happened to it: imported, skipped or failed."""


async def _known(db: Database, records: Sequence[Record]) -> dict[str, str]:
    """Ids of the records' problems and solutions already in the exchange, by external id."""
    known: dict[str, str] = {}
    for kind, lookup in (
        (ProblemRecord, problem_store.ids_by_external_ids),
        (SolutionRecord, solution_store.ids_by_external_ids),
    ):
        wanted = [r.external_id for r in records if isinstance(r, kind)]
        for start in range(0, len(wanted), LOOKUP_BATCH):
            known.update(await lookup(db, wanted[start : start + LOOKUP_BATCH]))
    return known


def _actor(city: str) -> Principal:
    return Principal(city=city, subject=IMPORTER, scopes=_SCOPES, client_id=IMPORTER)


def _ids(known: dict[str, str], external_ids: Sequence[str]) -> list[str]:
    missing = [e for e in external_ids if e not in known]
    if missing:
        raise NotFound("record", missing[0])
    return [known[e] for e in external_ids]


async def _city(db: Database, r: CityRecord) -> bool:
    try:
        await city_store.get_city(db, r.slug)
        return False
    except NotFound:
        pass
    await cities.add_city(
        db=db,
        city=City(
            slug=r.slug, name=r.name, country=r.country, created_at=now(), region=r.region,
            population=r.population, location=r.location, timezone=r.timezone,
            languages=r.languages, climate_zone=r.climate_zone, profile=r.profile,
            contact=r.contact, networks=r.networks, coastal=r.coastal, rivers=r.rivers,
            income_group=r.income_group,
        ),
    )  # fmt: skip
    return True


async def _problem(db: Database, r: ProblemRecord, known: dict[str, str]) -> bool:
    if r.external_id in known:
        return False
    problem = await problems.publish(
        db=db,
        actor=_actor(r.city),
        draft=problems.ProblemDraft(
            title=r.title, summary=r.summary, hazards=r.hazards, body=r.body,
            sectors=r.sectors, tags=r.tags, urgency=r.urgency, stakeholders=r.stakeholders,
            affected_population=r.affected_population, language=r.language,
            external_id=r.external_id,
        ),
    )  # fmt: skip
    known[r.external_id] = problem.id
    return True


async def _solution(db: Database, r: SolutionRecord, known: dict[str, str]) -> bool:
    if r.external_id in known:
        return False
    solution = await solutions.publish(
        db=db,
        actor=_actor(r.city),
        draft=solutions.SolutionDraft(
            title=r.title, summary=r.summary, hazards=r.hazards,
            problem_ids=_ids(known, r.problems),
            adapted_from=_ids(known, [r.adapted_from])[0] if r.adapted_from else None,
            adaptation_notes=r.adaptation_notes, details=r.details, language=r.language,
            external_id=r.external_id,
        ),
    )  # fmt: skip
    known[r.external_id] = solution.id
    return True


async def import_library(
    *, db: Database, records: Sequence[Record], progress: Progress | None = None
) -> ImportSummary:
    """Write the records not yet in the exchange, in order (library_records.in_order); a
    record that fails is reported and the rest go on."""
    known = await _known(db, records)
    wanted = sorted({r.city for r in records if not isinstance(r, CityRecord)})
    found = await city_store.cities_by_slugs(db, wanted) if wanted else []
    cities_known = {c.slug for c in found if c is not None}
    summary = ImportSummary()
    for record in records:
        try:
            if not isinstance(record, CityRecord) and record.city not in cities_known:
                # Tokens only ever name member cities; an import must not invent one.
                raise NotFound("city", record.city)
            match record:
                case CityRecord():
                    done = await _city(db, record)
                    cities_known.add(record.slug)  # only once it is a member
                case ProblemRecord():
                    done = await _problem(db, record, known)
                case SolutionRecord():
                    done = await _solution(db, record, known)
        except ServiceError as exc:
            summary.errors.append(RecordError(record.line, record.external_id, str(exc)))
            if progress is not None:
                progress(record, "failed")
            continue
        if done:
            summary.imported += 1
        else:
            summary.skipped += 1
        if progress is not None:
            progress(record, "imported" if done else "skipped")
    return summary
