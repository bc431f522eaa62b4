"""Translate the case-study criteria into MongoDB clauses over the solution document."""

from __future__ import annotations

from collections.abc import Sequence

from cityexchange.services.case_studies import CheckedCriteria, EurRange
from cityexchange.services.pages import SolutionOrder
from cityexchange.services.store.database import Document


def _range(field: str, bounds: EurRange | None, *, required: bool) -> list[Document]:
    """A range over a EUR figure; `required` (a cost order) keeps only solutions with one.
    Costs are never negative, so "has a figure" is the range from 0, which an index bounds
    ($ne: null is a collection scan on the embedded database)."""
    clause: Document = {}
    low = bounds.min if bounds else None
    if low is not None or required:
        clause["$gte"] = low or 0
    if bounds and bounds.max is not None:
        clause["$lte"] = bounds.max
    return [{field: clause}] if clause else []


def merged(clauses: Sequence[Document]) -> Document:
    """The clauses as one document when they name different fields, else under $and: the
    embedded database plans an index only for a flat query with one field."""
    flat: Document = {}
    for clause in clauses:
        if flat.keys() & clause.keys():
            return {"$and": list(clauses)}
        flat.update(clause)
    return flat


def criteria_clauses(
    criteria: CheckedCriteria, *, cities: Sequence[str] | None, order: SolutionOrder
) -> list[Document]:
    """Clauses (to AND) for `criteria`, `cities` (the implementing-city filter's matches, None
    when it was not asked) and what `order` needs: a cost order lists only costed solutions."""
    needed = order.field if order.needs_value else None
    clauses = [
        *_range("costEur", criteria.cost_eur, required=needed == "costEur"),
        *_range(
            "costPerResidentEur",
            criteria.cost_per_resident_eur,
            required=needed == "costPerResidentEur",
        ),
    ]
    if criteria.evidence_level_min is not None:
        clauses.append({"evidence.level": {"$gte": criteria.evidence_level_min}})
    if criteria.adoption_count_min is not None:
        clauses.append({"adoptionCount": {"$gte": criteria.adoption_count_min}})
    stated = {"outcomes.0": {"$exists": True}}
    reported = {"reportedOutcomeCount": {"$gt": 0}}
    if criteria.has_outcomes is True:
        clauses.append({"$or": [stated, reported]})
    elif criteria.has_outcomes is False:
        clauses.append(
            {"outcomes.0": {"$exists": False}, "reportedOutcomeCount": {"$not": {"$gt": 0}}}
        )
    if cities is not None:
        clauses.append({"city": {"$in": list(cities)}})
    return clauses
