"""Solutions and their adaptation lineage in MongoDB."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from cityexchange.services.case_studies import CheckedCriteria
from cityexchange.services.errors import Conflict, NotFound
from cityexchange.services.listing import ListingFilter
from cityexchange.services.models import (
    Adaptation,
    Cost,
    Evidence,
    Link,
    Outcome,
    Solution,
    SolutionDetails,
    Transferability,
)
from cityexchange.services.pages import ChildPages, Page, PageRequest, SolutionOrder
from cityexchange.services.search import keywords
from cityexchange.services.store.case_studies import criteria_clauses, merged
from cityexchange.services.store.cities import contact_from_doc
from cityexchange.services.store.database import Database, Document, guarded, object_id, object_ids
from cityexchange.services.store.grouped import child_pages
from cityexchange.services.store.listing import listing_query
from cityexchange.services.store.paging import find_page
from cityexchange.services.store.search_index import documents_after, set_languages, stored_language
from cityexchange.services.store.visibility import (
    access_fields,
    may_read,
    restricted,
    stored_audience,
    team_of,
    visibility_of,
)
from cityexchange.services.taxonomy import Hazard, Sector, SolutionStatus
from cityexchange.services.text import Language
from cityexchange.services.visibility import Viewer

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
        # Derived figures the case-study filters and orders compare (services/solutions.py).
        "costEur": d.cost.eur if d.cost else None,
        "costPerResidentEur": solution.cost_per_resident_eur,
        "residentsServed": d.residents_served,
        "evidence": {
            "level": d.evidence.level,
            "links": [{"url": link.url, "title": link.title} for link in d.evidence.links],
        }
        if d.evidence
        else None,
        "fundingSources": list(d.funding_sources),
        "partners": list(d.partners),
        "partnerIds": object_ids(d.partner_ids),
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
        "language": solution.language.value,
    }


def _parse_day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _solution(doc: Document) -> Solution:
    cost: dict[str, Any] | None = doc.get("cost")
    evidence: dict[str, Any] | None = doc.get("evidence")
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
            cost=Cost(float(cost["amount"]), cost["currency"], cost["year"], doc.get("costEur"))
            if cost
            else None,
            funding_sources=tuple(doc.get("fundingSources", ())),
            partners=tuple(doc.get("partners", ())),
            partner_ids=tuple(str(o) for o in doc.get("partnerIds", ())),
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
            evidence=Evidence(
                evidence["level"],
                tuple(Link(x["url"], x.get("title")) for x in evidence.get("links", ())),
            )
            if evidence
            else None,
            residents_served=doc.get("residentsServed"),
        ),
        version=doc["version"],
        created_at=doc["createdAt"],
        updated_at=doc["updatedAt"],
        cost_per_resident_eur=doc.get("costPerResidentEur"),
        language=stored_language(doc),
        external_id=doc.get("externalId"),
        visibility=visibility_of(doc.get("visibility")),
        team=team_of(doc.get("team")),
        audience=stored_audience(doc),
    )


@guarded
async def insert_solution(
    db: Database, solution: Solution, *, session: AsyncClientSession
) -> Solution:
    adapted = solution.adapted_from
    doc = {
        **_editable(solution),
        **access_fields(solution.visibility, solution.team, solution.audience),
        "city": solution.city,
        "adaptedFrom": {"solutionId": object_id(adapted.solution_id), "notes": adapted.notes}
        if adapted
        else None,
        "version": solution.version,
        "createdAt": solution.created_at,
        "updatedAt": solution.updated_at,
    }
    if solution.external_id is not None:
        doc["externalId"] = solution.external_id
    result = await db.solutions.insert_one(doc, session=session)
    return replace(solution, id=str(result.inserted_id))


@guarded
async def solutions_by_ids(
    db: Database,
    ids: Sequence[str],
    *,
    viewer: Viewer,
    session: AsyncClientSession | None = None,
) -> list[Solution | None]:
    """Solutions aligned to `ids` (None where missing or hidden from `viewer`), in one round
    trip."""
    wanted = object_ids(list(dict.fromkeys(ids)))
    found = db.solutions.find({"_id": {"$in": wanted}}, session=session)
    by_id = {
        str(doc["_id"]): _solution(doc)
        async for doc in found.batch_size(len(wanted) + 1)
        if may_read(viewer, doc)
    }
    return [by_id.get(id_) for id_ in ids]


@guarded
async def ids_by_external_ids(db: Database, external_ids: Sequence[str]) -> dict[str, str]:
    """The ids of the solutions imported under `external_ids` that exist, by external id."""
    cursor = db.solutions.find({"externalId": {"$in": list(external_ids)}}, {"externalId": 1})
    return {doc["externalId"]: str(doc["_id"]) async for doc in cursor}


@guarded
async def get_solution(
    db: Database, id: str, *, viewer: Viewer, session: AsyncClientSession | None = None
) -> Solution:
    """The solution; NotFound when it is missing or hidden from `viewer` alike."""
    oid = object_id(id)
    doc = await db.solutions.find_one({"_id": oid}, session=session) if oid else None
    if doc is None or not may_read(viewer, doc):
        raise NotFound("Solution", id)
    return _solution(doc)


def list_query(
    listing: ListingFilter,
    criteria: CheckedCriteria | None,
    cities: Sequence[str] | None,
    order: SolutionOrder,
    *,
    base: Document | None = None,
) -> Document:
    """The query of a solution list: the listing, the case-study criteria and what `order`
    needs; `cities` are the implementing-city filter's matches (None: any)."""
    query = listing_query(listing, base=base)
    compared = criteria or CheckedCriteria()
    return merged([query, *criteria_clauses(compared, cities=cities, order=order)])


async def list_solutions(
    db: Database,
    *,
    listing: ListingFilter,
    order: SolutionOrder,
    request: PageRequest,
    viewer: Viewer,
    city: str | None = None,
    criteria: CheckedCriteria | None = None,
    cities: Sequence[str] | None = None,
) -> Page[Solution]:
    """A page of solutions; `cities` are the implementing-city filter's matches (None: any)."""
    query = list_query(listing, criteria, cities, order, base={"city": city} if city else None)
    return await find_page(
        db.solutions,
        query=restricted(query, viewer),
        field=order.field,
        descending=order.descending,
        order=f"S.{order.value}",
        request=request,
        to_model=_solution,
        parse_id=object_id,
        nullable=order.nullable,
    )


async def _newest_of(
    db: Database,
    field: str,
    parents: Sequence[str],
    *,
    first: int,
    after: str | None,
    viewer: Viewer,
) -> ChildPages[Solution]:
    """Newest solutions naming each parent in `field` that `viewer` may see, in one round
    trip."""
    return await child_pages(
        db.solutions,
        parent_field=field,
        parents=object_ids(parents),
        match=restricted({}, viewer),
        descending=True,
        order=CHILD_ORDER,
        first=first,
        after=after,
        to_model=_solution,
        parse_id=object_id,
    )


async def solutions_of_problems(
    db: Database, problem_ids: Sequence[str], *, first: int, after: str | None, viewer: Viewer
) -> ChildPages[Solution]:
    """Newest solutions addressing each problem, for many problems in one round trip."""
    return await _newest_of(db, "problemIds", problem_ids, first=first, after=after, viewer=viewer)


async def solutions_of_organisations(
    db: Database, organisation_ids: Sequence[str], *, first: int, after: str | None, viewer: Viewer
) -> ChildPages[Solution]:
    """Newest solutions naming each organisation a partner, in one round trip."""
    return await _newest_of(
        db, "partnerIds", organisation_ids, first=first, after=after, viewer=viewer
    )


async def adaptations_of(
    db: Database, solution_ids: Sequence[str], *, first: int, after: str | None, viewer: Viewer
) -> ChildPages[Solution]:
    """Newest adaptations of each solution, for many solutions in one round trip."""
    return await _newest_of(
        db, "adaptedFrom.solutionId", solution_ids, first=first, after=after, viewer=viewer
    )


@guarded
async def save_solution(
    db: Database, solution: Solution, *, expected_version: int, session: AsyncClientSession
) -> Solution:
    """Write `solution`'s editable fields if the stored version is still `expected_version`."""
    changes = {**_editable(solution), "updatedAt": solution.updated_at}
    return await _versioned_update(db, solution, expected_version, changes, session=session)


@guarded
async def save_solution_access(
    db: Database, solution: Solution, *, expected_version: int, session: AsyncClientSession
) -> Solution:
    """Write `solution`'s visibility, team and audience if the stored version is still
    `expected_version`."""
    changes = {
        **access_fields(solution.visibility, solution.team, solution.audience),
        "updatedAt": solution.updated_at,
    }
    return await _versioned_update(db, solution, expected_version, changes, session=session)


async def _versioned_update(
    db: Database,
    solution: Solution,
    expected_version: int,
    changes: Document,
    *,
    session: AsyncClientSession,
) -> Solution:
    oid = object_id(solution.id)
    doc = await db.solutions.find_one_and_update(
        {"_id": oid, "version": expected_version},
        {"$set": changes, "$inc": {"version": 1}},
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
    order: SolutionOrder,
    first: int,
    after: str | None,
    viewer: Viewer,
    criteria: CheckedCriteria | None = None,
    matching: Sequence[str] | None = None,
) -> ChildPages[Solution]:
    """A page of solutions for each of many cities, in one round trip (`matching`: the
    implementing-city filter's matches, None when not asked)."""
    return await child_pages(
        db.solutions,
        parent_field="city",
        parents=list(cities),
        match=restricted(list_query(listing, criteria, matching, order), viewer),
        field=order.field,
        descending=order.descending,
        order=f"S.{order.value}",
        first=first,
        after=after,
        to_model=_solution,
        parse_id=object_id,
        nullable=order.nullable,
    )


@guarded
async def add_to_counters(
    db: Database,
    solution_id: str,
    *,
    adoptions: int = 0,
    outcomes: int = 0,
    endorsements: int = 0,
    session: AsyncClientSession,
) -> None:
    """Move the solution's take-up counters, in the caller's transaction: `adoptionCount`
    (cities whose latest stage is PILOTING or ADOPTED), `reportedOutcomeCount` (outcome
    reports on it and its adoptions), `endorsementCount`. Not an edit: the version stays."""
    moves = {
        name: by
        for name, by in (
            ("adoptionCount", adoptions),
            ("reportedOutcomeCount", outcomes),
            ("endorsementCount", endorsements),
        )
        if by
    }
    if moves:
        await db.solutions.update_one(
            {"_id": object_id(solution_id)}, {"$inc": moves}, session=session
        )


@guarded
async def solutions_for_reindex(
    db: Database, *, after: str | None, limit: int
) -> list[tuple[Solution, bool]]:
    """The next `limit` solutions by id, each with whether its language is stored."""
    return [
        (_solution(doc), "language" in doc)
        for doc in await documents_after(db.solutions, after=after, limit=limit)
    ]


async def set_solution_languages(
    db: Database, languages: Mapping[str, Language], *, session: AsyncClientSession
) -> None:
    """Store the detected languages of solutions written before they had one."""
    await set_languages(db.solutions, languages, session=session)
