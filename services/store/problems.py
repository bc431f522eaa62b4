"""Problems in MongoDB."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from cityexchange.services.errors import Conflict, NotFound
from cityexchange.services.listing import ListingFilter
from cityexchange.services.models import FacedBy, HelpOffer, Problem
from cityexchange.services.pages import ChildPages, Order, Page, PageRequest
from cityexchange.services.search import keywords
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
from cityexchange.services.taxonomy import Hazard, ProblemStatus, Sector, Urgency
from cityexchange.services.text import Language
from cityexchange.services.visibility import Viewer

CHILD_ORDER = "P.CREATED_AT_DESC"


def _editable(problem: Problem) -> Document:
    return {
        "title": problem.title,
        "summary": problem.summary,
        "body": problem.body,
        "hazards": [h.value for h in problem.hazards],
        "sectors": [s.value for s in problem.sectors],
        "tags": list(problem.tags),
        "status": problem.status.value,
        "urgency": problem.urgency.value,
        "stakeholders": list(problem.stakeholders),
        "stakeholderIds": object_ids(problem.stakeholder_ids),
        "affectedPopulation": problem.affected_population,
        "keywords": keywords(problem.title, problem.summary, extra=problem.tags),
        "language": problem.language.value,
    }


def _problem(doc: Document) -> Problem:
    return Problem(
        id=str(doc["_id"]),
        city=doc["city"],
        title=doc["title"],
        summary=doc["summary"],
        body=doc.get("body"),
        hazards=tuple(Hazard(h) for h in doc.get("hazards", ())),
        sectors=tuple(Sector(s) for s in doc.get("sectors", ())),
        tags=tuple(doc.get("tags", ())),
        status=ProblemStatus(doc["status"]),
        urgency=Urgency(doc["urgency"]),
        stakeholders=tuple(doc.get("stakeholders", ())),
        stakeholder_ids=tuple(str(o) for o in doc.get("stakeholderIds", ())),
        affected_population=doc.get("affectedPopulation"),
        answered_by=tuple(str(s) for s in doc.get("answeredBy", ())),
        faced_by=tuple(FacedBy(city=f["city"], at=f["at"]) for f in doc.get("facedBy", ())),
        help_offers=tuple(
            HelpOffer(
                city=o["city"],
                at=o["at"],
                solution_id=str(o["solutionId"]) if o.get("solutionId") else None,
                person_id=o.get("personId"),
                note=o.get("note"),
            )
            for o in doc.get("helpOffers", ())
        ),
        version=doc["version"],
        created_at=doc["createdAt"],
        updated_at=doc["updatedAt"],
        language=stored_language(doc),
        external_id=doc.get("externalId"),
        visibility=visibility_of(doc.get("visibility")),
        team=team_of(doc.get("team")),
        audience=stored_audience(doc),
    )


@guarded
async def insert_problem(db: Database, problem: Problem, *, session: AsyncClientSession) -> Problem:
    doc: Document = {
        **_editable(problem),
        **access_fields(problem.visibility, problem.team, problem.audience),
        "city": problem.city,
        "answeredBy": [],
        "facedBy": [],
        "version": problem.version,
        "createdAt": problem.created_at,
        "updatedAt": problem.updated_at,
    }
    if problem.external_id is not None:
        doc["externalId"] = problem.external_id
    result = await db.problems.insert_one(doc, session=session)
    return replace(problem, id=str(result.inserted_id))


@guarded
async def problems_by_ids(
    db: Database, ids: Sequence[str], *, viewer: Viewer
) -> list[Problem | None]:
    """Problems aligned to `ids` (None where missing or hidden from `viewer`), in one round
    trip."""
    wanted = object_ids(list(dict.fromkeys(ids)))
    by_id = {
        str(doc["_id"]): _problem(doc)
        async for doc in db.problems.find({"_id": {"$in": wanted}}).batch_size(len(wanted) + 1)
        if may_read(viewer, doc)
    }
    return [by_id.get(id_) for id_ in ids]


@guarded
async def ids_by_external_ids(db: Database, external_ids: Sequence[str]) -> dict[str, str]:
    """The ids of the problems imported under `external_ids` that exist, by external id."""
    cursor = db.problems.find({"externalId": {"$in": list(external_ids)}}, {"externalId": 1})
    return {doc["externalId"]: str(doc["_id"]) async for doc in cursor}


@guarded
async def get_problem(
    db: Database, id: str, *, viewer: Viewer, session: AsyncClientSession | None = None
) -> Problem:
    """The problem; NotFound when it is missing or hidden from `viewer` alike."""
    oid = object_id(id)
    doc = await db.problems.find_one({"_id": oid}, session=session) if oid else None
    if doc is None or not may_read(viewer, doc):
        raise NotFound("Problem", id)
    return _problem(doc)


async def list_problems(
    db: Database,
    *,
    listing: ListingFilter,
    order: Order,
    request: PageRequest,
    viewer: Viewer,
    city: str | None = None,
) -> Page[Problem]:
    return await find_page(
        db.problems,
        query=restricted(listing_query(listing, base={"city": city} if city else None), viewer),
        field=order.field,
        descending=order.descending,
        order=f"P.{order.value}",
        request=request,
        to_model=_problem,
        parse_id=object_id,
    )


@guarded
async def save_problem(
    db: Database, problem: Problem, *, expected_version: int, session: AsyncClientSession
) -> Problem:
    """Write `problem`'s editable fields if the stored version is still `expected_version`."""
    return await _versioned_update(
        db,
        problem.id,
        expected_version,
        {"$set": {**_editable(problem), "updatedAt": problem.updated_at}},
        session=session,
    )


@guarded
async def save_problem_access(
    db: Database, problem: Problem, *, expected_version: int, session: AsyncClientSession
) -> Problem:
    """Write `problem`'s visibility, team and audience if the stored version is still
    `expected_version`."""
    return await _versioned_update(
        db,
        problem.id,
        expected_version,
        {
            "$set": {
                **access_fields(problem.visibility, problem.team, problem.audience),
                "updatedAt": problem.updated_at,
            }
        },
        session=session,
    )


@guarded
async def add_answers(
    db: Database,
    problem: Problem,
    solution_ids: Sequence[str],
    *,
    expected_version: int,
    session: AsyncClientSession,
) -> Problem:
    return await _versioned_update(
        db,
        problem.id,
        expected_version,
        {
            "$addToSet": {"answeredBy": {"$each": object_ids(solution_ids)}},
            "$set": {"status": problem.status.value, "updatedAt": problem.updated_at},
        },
        session=session,
    )


@guarded
async def add_faced_by(
    db: Database, problem_id: str, faced: FacedBy, *, session: AsyncClientSession
) -> Problem | None:
    """Record that a city faces this problem too; None when it already said so."""
    doc = await db.problems.find_one_and_update(
        {"_id": object_id(problem_id), "facedBy.city": {"$ne": faced.city}},
        {"$push": {"facedBy": {"city": faced.city, "at": faced.at}}},
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    return _problem(doc) if doc else None


@guarded
async def add_help_offer(
    db: Database,
    problem_id: str,
    offer: HelpOffer,
    *,
    at_most: int,
    per_city: int,
    session: AsyncClientSession,
) -> Problem | None:
    """Record another city's offer of help, unless the problem holds `at_most` offers, or
    `per_city` of the offering city's, or the same offer (city, solution, person) already;
    None then. The count is read in `session`'s transaction, which the write to the same
    document then makes conflict with any concurrent offer's."""
    held = await db.problems.find_one(
        {"_id": object_id(problem_id)}, {"helpOffers.city": 1}, session=session
    )
    offers: list[Document] = held.get("helpOffers", []) if held else []
    if sum(o.get("city") == offer.city for o in offers) >= per_city:
        return None
    same = {
        "city": offer.city,
        "solutionId": object_id(offer.solution_id or ""),
        "personId": offer.person_id,
    }
    doc = await db.problems.find_one_and_update(
        {
            "_id": object_id(problem_id),
            "helpOffers": {"$not": {"$elemMatch": same}},
            f"helpOffers.{at_most - 1}": {"$exists": False},
        },
        {"$push": {"helpOffers": {**same, "at": offer.at, "note": offer.note}}},
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    return _problem(doc) if doc else None


async def _versioned_update(
    db: Database, id: str, expected_version: int, update: Document, *, session: AsyncClientSession
) -> Problem:
    oid = object_id(id)
    doc = await db.problems.find_one_and_update(
        {"_id": oid, "version": expected_version},
        {**update, "$inc": {"version": 1}},
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    if doc is not None:
        return _problem(doc)
    current = await db.problems.find_one({"_id": oid}, {"version": 1}, session=session)
    if current is None:
        raise NotFound("Problem", id)
    raise Conflict("Problem", id, expected=expected_version, actual=current["version"])


async def problems_of_cities(
    db: Database,
    cities: Sequence[str],
    *,
    listing: ListingFilter,
    order: Order,
    first: int,
    after: str | None,
    viewer: Viewer,
) -> ChildPages[Problem]:
    """A page of problems for each of many cities, in one round trip."""
    return await child_pages(
        db.problems, parent_field="city", parents=list(cities),
        match=restricted(listing_query(listing), viewer),
        field=order.field, descending=order.descending, order=f"P.{order.value}",
        first=first, after=after, to_model=_problem, parse_id=object_id,
    )  # fmt: skip


async def problems_of_organisations(
    db: Database, organisation_ids: Sequence[str], *, first: int, after: str | None, viewer: Viewer
) -> ChildPages[Problem]:
    """Newest problems naming each organisation a stakeholder, in one round trip."""
    return await child_pages(
        db.problems,
        parent_field="stakeholderIds",
        parents=object_ids(organisation_ids),
        match=restricted({}, viewer),
        descending=True,
        order=CHILD_ORDER,
        first=first,
        after=after,
        to_model=_problem,
        parse_id=object_id,
    )


@guarded
async def problems_for_reindex(
    db: Database, *, after: str | None, limit: int
) -> list[tuple[Problem, bool]]:
    """The next `limit` problems by id, each with whether its language is stored."""
    return [
        (_problem(doc), "language" in doc)
        for doc in await documents_after(db.problems, after=after, limit=limit)
    ]


async def set_problem_languages(
    db: Database, languages: Mapping[str, Language], *, session: AsyncClientSession
) -> None:
    """Store the detected languages of problems written before they had one."""
    await set_languages(db.problems, languages, session=session)
