"""Translate a typed ListingFilter into a MongoDB query; never a client's raw JSON."""

from __future__ import annotations

import re

from cityexchange.services.listing import ListingFilter
from cityexchange.services.store.database import Document


def listing_query(listing: ListingFilter, *, base: Document | None = None) -> Document:
    """A query with only `$in`, ranges and anchored, escaped regexes over known fields."""
    clauses: list[Document] = [base] if base else []
    for field, values in (
        ("city", listing.cities),
        ("hazards", [h.value for h in listing.hazards]),
        ("sectors", [s.value for s in listing.sectors]),
        ("tags", listing.tags),
        ("status", listing.statuses),
        ("urgency", [u.value for u in listing.urgencies]),
    ):
        if values:
            clauses.append({field: {"$in": [str(v) for v in values]}})
    for field, after, before in (
        ("createdAt", listing.created_after, listing.created_before),
        ("updatedAt", listing.updated_after, listing.updated_before),
    ):
        bounds: Document = {}
        if after is not None:
            bounds["$gte"] = after
        if before is not None:
            bounds["$lt"] = before
        if bounds:
            clauses.append({field: bounds})
    # Search terms are prefix-matched against the stored keyword list. re.escape makes what
    # the user typed literal text, and the anchor lets the multikey index bound the scan.
    terms = listing.search_terms
    clauses.extend({"keywords": {"$regex": "^" + re.escape(term)}} for term in terms)
    if listing.search and listing.search.strip() and not terms:
        clauses.append({"_id": {"$exists": False}})  # only punctuation: nothing can match
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
