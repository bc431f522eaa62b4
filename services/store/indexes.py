"""Every index the API relies on, declared once and created idempotently at start."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import CollectionInvalid, OperationFailure

from cityexchange.services.store import documents
from cityexchange.services.store.database import Database, guarded
from cityexchange.services.visibility import EVERYONE

_NEWEST = [("createdAt", DESCENDING), ("_id", DESCENDING)]
_RECENT = [("updatedAt", DESCENDING), ("_id", DESCENDING)]


# Every read of a list also asks for what the viewer may see (services/store/visibility.py),
# so the list indexes hold the audience after their equality fields: the embedded database
# plans an index only for a filter of exactly its fields, and MongoDB bounds the audience's
# few keys in it.
_SEEN = ("aud", ASCENDING)


def _listing(prefix: str | None) -> list[IndexModel]:
    """Indexes for one filter path (or none) under both sort orders the API offers."""
    head = [(prefix, ASCENDING), _SEEN] if prefix else [_SEEN]
    name = prefix or "all"
    return [
        IndexModel([*head, *_NEWEST], name=f"{name}_seen_by_created"),
        IndexModel([*head, *_RECENT], name=f"{name}_seen_by_updated"),
    ]


_FILTERS = [None, "city", "hazards", "sectors", "tags", "status", "urgency"]

# Indexes an earlier version declared and this one replaced (dropped at start when present):
# the list indexes before they held the audience, and the child lists' likewise.
_UNSEEN_LISTS = tuple(
    f"{prefix or 'all'}_by_{order}" for prefix in _FILTERS for order in ("created", "updated")
)
OBSOLETE: dict[str, tuple[str, ...]] = {
    "problems": _UNSEEN_LISTS,
    "solutions": (*_UNSEEN_LISTS, "problem_solutions", "adaptations"),
    "comments": ("thread", "replies"),
    "adoptions": ("solution_adoptions",),
    "endorsements": ("solution_endorsements",),
    "outcome_reports": ("series",),
}
MUTATION_KEY_SECONDS = 86_400  # how long a clientMutationId answers retries

# A library record is imported once (services/library_import.py): its external id is unique
# among the documents that have one.
_IMPORTED = IndexModel(
    [("externalId", ASCENDING)],
    name="imported_as",
    unique=True,
    partialFilterExpression={"externalId": {"$type": "string"}},
)

# Drafts that publish themselves, by when (services/embargoes.py).
_EMBARGOED = IndexModel(
    [("visibility.embargo.until", ASCENDING)],
    name="embargo",
    partialFilterExpression={"visibility.embargo.until": {"$exists": True}},
)

INDEXES: dict[str, list[IndexModel]] = {
    "cities": [IndexModel([("country", ASCENDING), ("_id", ASCENDING)], name="country")],
    "people": [
        IndexModel(
            [("city", ASCENDING), ("username", ASCENDING)], name="city_username", unique=True
        ),
        IndexModel([("organisationId", ASCENDING), ("_id", ASCENDING)], name="organisation"),
        IndexModel([("listedAsExpert", ASCENDING), ("_id", ASCENDING)], name="experts"),
    ],
    # One organisation per (city, name); a city's list is by name (services/store/organisations.py).
    "organisations": [
        IndexModel([("city", ASCENDING), ("nameKey", ASCENDING)], name="city_name", unique=True),
    ],
    "problems": [
        *[index for prefix in _FILTERS for index in _listing(prefix)],
        IndexModel([("keywords", ASCENDING)], name="keywords"),
        # Which problems name a solution as their answer (services/store/track_records.py).
        IndexModel([("answeredBy", ASCENDING)], name="answered_by"),
        # What an organisation is involved in (Organisation.problems, .solutions).
        IndexModel([("stakeholderIds", ASCENDING), _SEEN, *_NEWEST], name="stakeholder_problems"),
        _IMPORTED,
        _EMBARGOED,
    ],
    "solutions": [
        *[index for prefix in _FILTERS for index in _listing(prefix)],
        IndexModel([("keywords", ASCENDING)], name="keywords"),
        _IMPORTED,
        _EMBARGOED,
        IndexModel([("problemIds", ASCENDING), _SEEN, *_NEWEST], name="problem_solutions_seen"),
        IndexModel([("partnerIds", ASCENDING), _SEEN, *_NEWEST], name="partner_solutions"),
        IndexModel(
            [("adaptedFrom.solutionId", ASCENDING), _SEEN, *_NEWEST], name="adaptations_seen"
        ),
        # The case-study orders (services/pages.py SolutionOrder), which also bound their
        # range filters; one index serves a field's both directions.
        IndexModel([("costEur", ASCENDING), ("_id", ASCENDING)], name="by_cost"),
        IndexModel(
            [("costPerResidentEur", ASCENDING), ("_id", ASCENDING)], name="by_cost_per_resident"
        ),
        IndexModel([("evidence.level", DESCENDING), ("_id", DESCENDING)], name="by_evidence"),
        IndexModel([("adoptionCount", DESCENDING), ("_id", DESCENDING)], name="by_adoptions"),
    ],
    "comments": [
        IndexModel(
            [
                ("subjectId", ASCENDING),
                ("parentId", ASCENDING),
                _SEEN,
                ("createdAt", ASCENDING),
                ("_id", ASCENDING),
            ],
            name="thread_seen",
        ),
        IndexModel(
            [("parentId", ASCENDING), _SEEN, ("createdAt", ASCENDING), ("_id", ASCENDING)],
            name="replies_seen",
        ),
    ],
    "events": [
        IndexModel([("thread", ASCENDING), ("_id", ASCENDING)], name="thread"),
        IndexModel([("city", ASCENDING), ("_id", ASCENDING)], name="city"),
    ],
    "counters": [],
    # The search index (services/store/search_index.py): postings by term and impact, for a
    # query's bounded scans, and by document, to replace a document's postings when it changes.
    "search_postings": [
        IndexModel([("t", ASCENDING), ("q", DESCENDING), ("d", ASCENDING)], name="term_impact"),
        IndexModel([("d", ASCENDING)], name="document"),
    ],
    "search_terms": [],
    # One adoption and one endorsement per (solution, city); both list newest first.
    "adoptions": [
        IndexModel([("solutionId", ASCENDING), ("city", ASCENDING)], name="city", unique=True),
        IndexModel([("solutionId", ASCENDING), _SEEN, *_NEWEST], name="solution_adoptions_seen"),
    ],
    "endorsements": [
        IndexModel([("solutionId", ASCENDING), ("city", ASCENDING)], name="city", unique=True),
        IndexModel([("solutionId", ASCENDING), _SEEN, *_NEWEST], name="solution_endorsements_seen"),
    ],
    # A subject's dated series, oldest first; the roll-up reads adoptions' by solution.
    "outcome_reports": [
        IndexModel(
            [("subjectId", ASCENDING), _SEEN, ("measuredOn", ASCENDING), ("_id", ASCENDING)],
            name="series_seen",
        ),
        IndexModel(
            [("solutionId", ASCENDING), ("subjectKind", ASCENDING), ("measuredOn", ASCENDING)],
            name="solution_series",
        ),
    ],
    "webhooks": [IndexModel([("city", ASCENDING), ("createdAt", ASCENDING)], name="city")],
    "webhook_deliveries": [
        IndexModel([("state", ASCENDING), ("dueAt", ASCENDING)], name="due"),
        IndexModel([("webhookId", ASCENDING), ("eventSeq", DESCENDING)], name="log"),
    ],
    "follows": [
        IndexModel(
            [("city", ASCENDING), ("subject", ASCENDING), ("since", ASCENDING)], name="follower"
        )
    ],
    "crisis_alerts": [IndexModel([("problem", ASCENDING), ("city", ASCENDING)], name="problem")],
    "digests": [
        IndexModel([("nextDue", ASCENDING)], name="due"),
        IndexModel([("token", ASCENDING)], name="token", unique=True),
    ],
    "mail_outbox": [IndexModel([("state", ASCENDING), ("dueAt", ASCENDING)], name="due")],
    "saved_filters": [
        IndexModel([("city", ASCENDING), ("subject", ASCENDING), ("name", ASCENDING)], name="owner")
    ],
    "realm_keys": [
        IndexModel([("city", ASCENDING), ("createdAt", DESCENDING)], name="city_keys"),
    ],
    # clientMutationId records: the unique key makes the second of two identical retries
    # fail its transaction; MongoDB's TTL monitor (once a minute) drops them after a day.
    "mutations": [
        IndexModel(
            [("city", ASCENDING), ("client", ASCENDING), ("name", ASCENDING), ("key", ASCENDING)],
            name="key",
            unique=True,
        ),
        IndexModel(
            [("createdAt", ASCENDING)], name="expiry", expireAfterSeconds=MUTATION_KEY_SECONDS
        ),
    ],
    # A rate-limit window's total goes once the window has ended (services/rate_limits.py).
    "rate_limits": [IndexModel([("expiresAt", ASCENDING)], name="expiry", expireAfterSeconds=0)],
    # Learned persisted documents go 30 days after their last use (registered ones have no
    # lastUsedAt, so the TTL monitor leaves them); new ones are counted per learner.
    "persisted_documents": [
        IndexModel(
            [("lastUsedAt", ASCENDING)], name="unused", expireAfterSeconds=documents.UNUSED_SECONDS
        ),
        IndexModel([("learnedBy", ASCENDING), ("createdAt", ASCENDING)], name="learner"),
    ],
}


DEFAULT_EVENT_RETENTION_SECONDS = 30 * 86_400


@guarded
async def ensure_indexes(
    db: Database,
    extra: Mapping[str, list[IndexModel]] | None = None,
    *,
    event_retention_seconds: int = DEFAULT_EVENT_RETENTION_SECONDS,
) -> None:
    """Create missing indexes (ours and `extra`, e.g. the authorization server's); existing
    ones with the same definition are left alone."""
    existing = set(await db.db.list_collection_names())
    for collection, indexes in {**INDEXES, **(extra or {})}.items():
        if collection not in existing:
            # Creating collections outside transactions: MongoDB cannot create them inside one
            # on every version, and the first write of a collection is often transactional.
            with contextlib.suppress(CollectionInvalid):  # another process was first
                await db.db.create_collection(collection)
        if indexes:
            await db.db[collection].create_indexes(indexes)
    # What an earlier version left: only in collections that were there before this start.
    await _drop_obsolete(db, existing)
    await _audience_backfill(db, existing)
    await _event_retention(db, event_retention_seconds)


async def _drop_obsolete(db: Database, existing: set[str]) -> None:
    for collection, names in OBSOLETE.items():
        if collection not in existing:
            continue
        present = {index["name"] async for index in await db.db[collection].list_indexes()}
        for name in present.intersection(names):
            with contextlib.suppress(OperationFailure):  # another replica dropped it first
                await db.db[collection].drop_index(name)


# What existed before visibility did is PUBLIC: it gains the audience every query asks for.
_AUDIENCED = ("problems", "solutions", "comments", "adoptions", "endorsements", "outcome_reports")


async def _audience_backfill(db: Database, existing: set[str]) -> None:
    for collection in (*_AUDIENCED, "events"):
        if collection in existing:
            await db.db[collection].update_many(
                {"aud": {"$exists": False}}, {"$set": {"aud": [EVERYONE]}}
            )


async def _event_retention(db: Database, seconds: int) -> None:
    """The event log's TTL index; a changed retention is applied in place (collMod)."""
    ttl = IndexModel([("occurredAt", ASCENDING)], name="retention", expireAfterSeconds=seconds)
    try:
        await db.events.create_indexes([ttl])
    except OperationFailure as exc:
        if exc.code not in (85, 86):  # IndexOptionsConflict, IndexKeySpecsConflict
            raise
        await db.db.command(
            "collMod",
            "events",
            index={"keyPattern": {"occurredAt": 1}, "expireAfterSeconds": seconds},
        )
