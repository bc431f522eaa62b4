"""Solutions and their adaptation lineage in MongoDB."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from cityexchange.services.errors import Conflict, NotFound
from cityexchange.services.listing import ListingFilter
from cityexchange.services.models import (
    Adaptation,
    Cost,
    Link,
    Outcome,
    Solution,
    SolutionDetails,
    Transferability,
)
from cityexchange.services.pages import ChildPages, Order, Page, PageRequest
from cityexchange.services.search import keywords
from cityexchange.services.store.cities import contact_from_doc
from cityexchange.services.store.database import Database, Document, guarded, object_id, object_ids
from cityexchange.services.store.grouped import child_pages
from cityexchange.services.store.listing import listing_query
from cityexchange.services.store.paging import find_page
from cityexchange.services.taxonomy import Hazard, Sector, SolutionStatus

CHILD_ORDER = "S.CREATED_AT_DESC"


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _editable(solution: Solution) -> Document:
    d = solution.details
    return {
        "title": solution.title,
        "summary": solution.summary,
        "body": d.body,
        "hazards": [h.value for h in solution.hazards],
        "sectors": [s.value for s in d.sectors],
        "tags": list(d.tags),
        "status": d.status.value,
        "problemIds": object_ids(solution.problem_ids),
        "startedOn": _day(d.started_on),
        "completedOn": _day(d.completed_on),
        "cost": {"amount": d.cost.amount, "currency": d.cost.currency, "year": d.cost.year}
        if d.cost
        else None,
        "fundingSources": list(d.funding_sources),
        "partners": list(d.partners),
        "outcomes": [
            {"metric": o.metric, "value": o.value, "unit": o.unit, "note": o.note}
            for o in d.outcomes
        ],
        "successFactors": list(d.success_factors),
        "limitingFactors": list(d.limiting_factors),
        "transferability": {
            "prerequisites": list(d.transferability.prerequisites),
            "context": d.transferability.context,
            "doDifferently": d.transferability.do_differently,
        }
        if d.transferability
        else None,
        "contact": {"name": d.contact.name, "email": d.contact.email, "url": d.contact.url}
        if d.contact
        else None,
        "links": [{"url": link.url, "title": link.title} for link in d.links],
        "keywords": keywords(solution.title, solution.summary, extra=d.tags),
    }


def _parse_day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _solution(doc: Document) -> Solution:
    cost: dict[str, Any] | None = doc.get("cost")
    transfer: dict[str, Any] | None = doc.get("transferability")
    adapted: dict[str, Any] | None = doc.get("adaptedFrom")
    return Solution(
        id=str(doc["_id"]),
        city=doc["city"],
        title=doc["title"],
        summary=doc["summary"],
        hazards=tuple(Hazard(h) for h in doc.get("hazards", ())),
        problem_ids=tuple(str(p) for p in doc.get("problemIds", ())),
        adapted_from=Adaptation(str(adapted["solutionId"]), adapted.get("notes"))
        if adapted
        else None,
        details=SolutionDetails(
            body=doc.get("body"),
            status=SolutionStatus(doc["status"]),
            started_on=_parse_day(doc.get("startedOn")),
            completed_on=_parse_day(doc.get("completedOn")),
            cost=Cost(float(cost["amount"]), cost["currency"], cost["year"]) if cost else None,
            funding_sources=tuple(doc.get("fundingSources", ())),
            partners=tuple(doc.get("partners", ())),
            outcomes=tuple(
                Outcome(o["metric"], o["value"], o.get("unit"), o.get("note"))
                for o in doc.get("outcomes", ())
            ),
            success_factors=tuple(doc.get("successFactors", ())),
            limiting_factors=tuple(doc.get("limitingFactors", ())),
            transferability=Transferability(
                tuple(transfer.get("prerequisites", ())),
                transfer.get("context"),
                transfer.get("doDifferently"),
            )
            if transfer
            else None,
            contact=contact_from_doc(doc.get("contact")),
            links=tuple(Link(x["url"], x.get("title")) for x in doc.get("links", ())),
            sectors=tuple(Sector(s) for s in doc.get("sectors", ())),
            tags=tuple(doc.get("tags", ())),
        ),
        version=doc["version"],
        created_at=doc["createdAt"],
        updated_at=doc["updatedAt"],
    )


@guarded
async def insert_solution(
    db: Database, solution: Solution, *, session: AsyncClientSession
) -> Solution:
    adapted = solution.adapted_from
    doc = {
        **_editable(solution),
        "city": solution.city,
        "adaptedFrom": {"solutionId": object_id(adapted.solution_id), "notes": adapted.notes}
        if adapted
        else None,
        "version": solution.version,
        "createdAt": solution.created_at,
        "updatedAt": solution.updated_at,
    }
    result = await db.solutions.insert_one(doc, session=session)
    return replace(solution, id=str(result.inserted_id))


@guarded
async def solutions_by_ids(
    db: Database, ids: Sequence[str], *, session: AsyncClientSession | None = None
) -> list[Solution | None]:
    """Solutions aligned to `ids` (None where missing), in one round trip."""
    wanted = object_ids(list(dict.fromkeys(ids)))
    by_id = {
        str(doc["_id"]): _solution(doc)
        async for doc in db.solutions.find({"_id": {"$in": wanted}}, session=session).batch_size(
            len(wanted) + 1
        )
    }
    return [by_id.get(id_) for id_ in ids]


@guarded
async def get_solution(db: Database, id: str) -> Solution:
    oid = object_id(id)
    doc = await db.solutions.find_one({"_id": oid}) if oid else None
    if doc is None:
        raise NotFound("Solution", id)
    return _solution(doc)


async def list_solutions(
    db: Database,
    *,
    listing: ListingFilter,
    order: Order,
    request: PageRequest,
    city: str | None = None,
) -> Page[Solution]:
    return await find_page(
        db.solutions,
        query=listing_query(listing, base={"city": city} if city else None),
        field=order.field,
        descending=order.descending,
        order=f"S.{order.value}",
        request=request,
        to_model=_solution,
        parse_id=object_id,
    )


async def solutions_of_problems(
    db: Database, problem_ids: Sequence[str], *, first: int, after: str | None
) -> ChildPages[Solution]:
    """Newest solutions addressing each problem, for many problems in one round trip."""
    return await child_pages(
        db.solutions,
        parent_field="problemIds",
        parents=object_ids(problem_ids),
        match=None,
        descending=True,
        order=CHILD_ORDER,
        first=first,
        after=after,
        to_model=_solution,
        parse_id=object_id,
    )


async def adaptations_of(
    db: Database, solution_ids: Sequence[str], *, first: int, after: str | None
) -> ChildPages[Solution]:
    """Newest adaptations of each solution, for many solutions in one round trip."""
    return await child_pages(
        db.solutions,
        parent_field="adaptedFrom.solutionId",
        parents=object_ids(solution_ids),
        match=None,
        descending=True,
        order=CHILD_ORDER,
        first=first,
        after=after,
        to_model=_solution,
        parse_id=object_id,
    )


@guarded
async def save_solution(
    db: Database, solution: Solution, *, expected_version: int, session: AsyncClientSession
) -> Solution:
    """Write `solution`'s editable fields if the stored version is still `expected_version`."""
    oid = object_id(solution.id)
    doc = await db.solutions.find_one_and_update(
        {"_id": oid, "version": expected_version},
        {"$set": {**_editable(solution), "updatedAt": solution.updated_at}, "$inc": {"version": 1}},
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    if doc is not None:
        return _solution(doc)
    current = await db.solutions.find_one({"_id": oid}, {"version": 1}, session=session)
    if current is None:
        raise NotFound("Solution", solution.id)
    raise Conflict("Solution", solution.id, expected=expected_version, actual=current["version"])


async def solutions_of_cities(
    db: Database,
    cities: Sequence[str],
    *,
    listing: ListingFilter,
    order: Order,
    first: int,
    after: str | None,
) -> ChildPages[Solution]:
    """A page of solutions for each of many cities, in one round trip."""
    return await child_pages(
        db.solutions, parent_field="city", parents=list(cities), match=listing_query(listing),
        field=order.field, descending=order.descending, order=f"S.{order.value}",
        first=first, after=after, to_model=_solution, parse_id=object_id,
    )  # fmt: skip
