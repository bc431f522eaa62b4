"""Outcome reports, dated series per solution or adoption, in MongoDB."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import NamedTuple

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from cityexchange.services.models import OutcomeReport
from cityexchange.services.pages import ChildPages
from cityexchange.services.store.database import Database, Document, guarded, object_id, object_ids
from cityexchange.services.store.grouped import child_pages
from cityexchange.services.store.visibility import (
    AUDIENCE,
    may_read,
    readable,
    restricted,
    stored_audience,
)
from cityexchange.services.visibility import Viewer

CHILD_ORDER = "O.MEASURED_ON_ASC"


class Trend(NamedTuple):
    """One adoption's series of one metric, reduced to its ends (measured order)."""

    solution_id: str
    city: str
    metric: str
    first: float
    last: float
    baseline: float | None  # the latest report's
    target: float | None  # the latest report's
    reports: int


def _reports(db: Database) -> AsyncCollection[Document]:
    return db.db["outcome_reports"]


def _midnight(day: date) -> datetime:
    # BSON has no date type: a day is stored as its midnight in UTC, and sorts as one.
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _report(doc: Document) -> OutcomeReport:
    return OutcomeReport(
        id=str(doc["_id"]),
        subject_kind=doc["subjectKind"],
        subject_id=str(doc["subjectId"]),
        solution_id=str(doc["solutionId"]),
        city=doc["city"],
        by=doc["by"],
        metric=doc["metric"],
        value=doc["value"],
        measured_on=doc["measuredOn"].date(),
        reported_at=doc["reportedAt"],
        unit=doc.get("unit"),
        baseline=doc.get("baseline"),
        target=doc.get("target"),
        note=doc.get("note"),
        audience=stored_audience(doc),
    )


@guarded
async def count_reports(db: Database, subject_id: str, *, session: AsyncClientSession) -> int:
    """How long the subject's series is, inside the caller's transaction."""
    return await _reports(db).count_documents({"subjectId": object_id(subject_id)}, session=session)


@guarded
async def insert_report(
    db: Database, report: OutcomeReport, *, session: AsyncClientSession
) -> OutcomeReport:
    r = report
    doc = {
        "subjectKind": r.subject_kind,
        "subjectId": object_id(r.subject_id),
        "solutionId": object_id(r.solution_id),
        "city": r.city,
        "by": r.by,
        "metric": r.metric,
        "value": r.value,
        "unit": r.unit,
        "baseline": r.baseline,
        "target": r.target,
        "measuredOn": _midnight(r.measured_on),
        "note": r.note,
        "reportedAt": r.reported_at,
        AUDIENCE: list(r.audience),
    }
    result = await _reports(db).insert_one(doc, session=session)
    return replace(report, id=str(result.inserted_id))


@guarded
async def reports_by_ids(
    db: Database, ids: Sequence[str], *, viewer: Viewer
) -> list[OutcomeReport | None]:
    """Reports aligned to `ids` (None where missing or hidden from `viewer`), in one round
    trip."""
    wanted = object_ids(list(dict.fromkeys(ids)))
    by_id = {
        str(doc["_id"]): _report(doc)
        async for doc in _reports(db).find({"_id": {"$in": wanted}}).batch_size(len(wanted) + 1)
        if may_read(viewer, doc)
    }
    return [by_id.get(id_) for id_ in ids]


async def reports_of(
    db: Database, subject_ids: Sequence[str], *, first: int, after: str | None, viewer: Viewer
) -> ChildPages[OutcomeReport]:
    """Each subject's series, oldest measurement first, for many subjects in one round trip."""
    return await child_pages(
        _reports(db),
        parent_field="subjectId",
        parents=object_ids(subject_ids),
        match=restricted({}, viewer),
        field="measuredOn",
        descending=False,
        order=CHILD_ORDER,
        first=first,
        after=after,
        to_model=_report,
        parse_id=object_id,
    )


@guarded
async def adoption_trends(
    db: Database, solution_ids: Sequence[str], *, viewer: Viewer
) -> list[Trend]:
    """For the adoptions of each solution `viewer` may see, every metric's first and latest
    value, in one aggregation; the server reduces each series (at most 500 reports) to one
    row."""
    wanted = object_ids(list(dict.fromkeys(solution_ids)))
    pipeline: list[Document] = [
        {"$match": {"solutionId": {"$in": wanted}, "subjectKind": "Adoption"}},
        # A stage of its own: the first stays on `solution_series` alone.
        {"$match": readable(viewer)},
        {"$sort": {"measuredOn": 1, "_id": 1}},
        {
            "$group": {
                "_id": {"solution": "$solutionId", "subject": "$subjectId", "metric": "$metric"},
                "city": {"$first": "$city"},
                "first": {"$first": "$value"},
                "last": {"$last": "$value"},
                "baseline": {"$last": "$baseline"},
                "target": {"$last": "$target"},
                "reports": {"$sum": 1},
            }
        },
    ]
    rows = await (await _reports(db).aggregate(pipeline)).to_list(None)
    return [
        Trend(
            str(row["_id"]["solution"]),
            row["city"],
            row["_id"]["metric"],
            row["first"],
            row["last"],
            row.get("baseline"),
            row.get("target"),
            row["reports"],
        )
        for row in rows
    ]
