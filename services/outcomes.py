"""Use cases for outcomes over time: a dated series of measurements of a solution (by its
city) or of an adoption (by the adopting city)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from cityexchange.services import audiences, limits
from cityexchange.services.adoptions import solution_event, subject_adoption
from cityexchange.services.clock import now
from cityexchange.services.errors import InvalidInput, NotFound
from cityexchange.services.models import EventType, OutcomeReport
from cityexchange.services.pages import ChildPages, PageRequest
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store import events as event_store
from cityexchange.services.store import outcomes as store
from cityexchange.services.store import solutions as solution_store
from cityexchange.services.store.database import Database
from cityexchange.services.visibility import Viewer

SERIES_MAX = 500  # reports per solution or adoption
VALUE_MAX = 1e15  # a measurement's magnitude; beyond it a number is a typo or an attack
EARLIEST = date(1900, 1, 1)
UNIT_MAX = 50


@dataclass(frozen=True, slots=True)
class OutcomeDraft:
    metric: str
    value: float
    measured_on: date
    unit: str | None = None
    baseline: float | None = None
    target: float | None = None
    note: str | None = None


def _optional_number(field: str, value: float | None) -> float | None:
    return None if value is None else _number(field, value)


def _number(field: str, value: float) -> float:
    if not math.isfinite(value) or abs(value) > VALUE_MAX:
        raise InvalidInput(field, f"must be a finite number of at most {VALUE_MAX:g} either way")
    return float(value)


def _day(value: date) -> date:
    # A day ahead of UTC: a city east of Greenwich may already be on tomorrow.
    latest = now().date() + timedelta(days=1)
    if not EARLIEST <= value <= latest:
        raise InvalidInput("measuredOn", f"must be between {EARLIEST} and {latest}")
    return value


async def report(
    *, db: Database, actor: Principal, subject_kind: str, subject_id: str, draft: OutcomeDraft
) -> OutcomeReport:
    """Add a measurement to a solution's series (its city only) or an adoption's (the
    adopting city only); at most SERIES_MAX per subject. `subject_kind` is "Solution" or
    "Adoption" (the edge checks the id's kind)."""
    actor.require(Scope.PUBLISH)
    d = draft
    value = _number("value", d.value)
    metric = limits.text("metric", d.metric, max_length=limits.SHORT_TEXT_MAX)
    unit = limits.optional_text("unit", d.unit, max_length=UNIT_MAX)
    note = limits.optional_text("note", d.note, max_length=limits.NOTE_MAX)
    baseline = _optional_number("baseline", d.baseline)
    target = _optional_number("target", d.target)
    measured_on = _day(d.measured_on)
    solution_id = subject_id
    if subject_kind == "Adoption":
        solution_id = (await subject_adoption(db, actor, subject_id)).solution_id
    (solution,) = await solution_store.solutions_by_ids(db, [solution_id], viewer=Viewer.of(actor))
    if solution is None:
        raise NotFound("Solution", solution_id)
    if subject_kind == "Solution":
        actor.require_own_city(solution.city, "solution's outcomes")
    draft_report = OutcomeReport(
        id="",
        subject_kind=subject_kind,
        subject_id=subject_id,
        solution_id=solution.id,
        city=actor.city,
        by=actor.subject,
        metric=metric,
        value=value,
        measured_on=measured_on,
        reported_at=now(),
        unit=unit,
        baseline=baseline,
        target=target,
        note=note,
    )

    async def write(session: Any) -> OutcomeReport:
        # Every report moves the solution's counter, so two at once conflict there and
        # one retries: the length read here is the committed one.
        if await store.count_reports(db, subject_id, session=session) >= SERIES_MAX:
            raise InvalidInput("subjectId", f"a series holds at most {SERIES_MAX} reports")
        audience = await audiences.copied(db, actor, "Solution", solution.id, session=session)
        saved = await store.insert_report(
            db, replace(draft_report, audience=audience), session=session
        )
        await solution_store.add_to_counters(db, solution.id, outcomes=1, session=session)
        return saved

    return await event_store.record(
        db,
        write,
        lambda saved: solution_event(
            EventType.OUTCOME_REPORTED,
            solution,
            actor,
            kind=subject_kind,
            id=subject_id,
            audience=saved.audience,
        ),
    )


async def by_ids(
    *, db: Database, actor: Principal, ids: Sequence[str]
) -> list[OutcomeReport | None]:
    actor.require(Scope.READ)
    return await store.reports_by_ids(db, ids, viewer=Viewer.of(actor))


async def series_of(
    *, db: Database, actor: Principal, subject_ids: Sequence[str], request: PageRequest
) -> ChildPages[OutcomeReport]:
    """Each solution's or adoption's reports, oldest measurement first, batched."""
    actor.require(Scope.READ)
    request.validate()
    return await store.reports_of(
        db, subject_ids, first=request.size, after=request.after, viewer=Viewer.of(actor)
    )
