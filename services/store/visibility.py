"""The visibility rule as a query clause (services/visibility.py): one place for every read."""

from __future__ import annotations

from collections.abc import Sequence

from cityexchange.services.store.database import Database, Document, guarded
from cityexchange.services.visibility import (
    EVERYONE,
    PUBLIC,
    Embargo,
    TeamMember,
    TeamRole,
    Viewer,
    Visibility,
    VisibilityLevel,
)

AUDIENCE = "aud"  # the field every readable document carries: the keys that may read it
WITHHELD = "audNot"  # events only: keys that still see the subject and are not told


def readable(viewer: Viewer) -> Document:
    """The clause a document must match for `viewer` to read it ({} for the service itself)."""
    if viewer.is_system:
        return {}
    return {AUDIENCE: {"$in": sorted(viewer.keys)}}


def readable_event(viewer: Viewer) -> Document:
    """Events: the subject's audience at the time, minus those a withdrawal is not for."""
    if viewer.is_system:
        return {}
    keys = sorted(viewer.keys)
    return {AUDIENCE: {"$in": keys}, WITHHELD: {"$nin": keys}}


def restricted(query: Document, viewer: Viewer) -> Document:
    """`query` and the rule, so that neither can widen the other."""
    return _both(query, readable(viewer))


def restricted_events(query: Document, viewer: Viewer) -> Document:
    """`query` over events and the events' rule."""
    return _both(query, readable_event(viewer))


def _both(query: Document, clause: Document) -> Document:
    """Both; side by side when their fields differ, which is the same query and lets the
    embedded database plan an index over all the fields (it does not look inside `$and`)."""
    if not clause:
        return query
    if not query:
        return clause
    if query.keys().isdisjoint(clause):
        return {**query, **clause}
    return {"$and": [query, clause]}


@guarded
async def held_by_anything(db: Database, key: str) -> bool:
    """Whether any problem or solution (whose children copy their audience) names `key` in
    its audience: two reads on the audience indexes."""
    for collection in (db.problems, db.solutions):
        if await collection.find_one({AUDIENCE: key}, {"_id": 1}) is not None:
            return True
    return False


def may_read(viewer: Viewer, doc: Document) -> bool:
    """The rule on a document read by `_id` (the query stays on the `_id` index alone)."""
    return viewer.may_read(stored_audience(doc))


def stored_audience(doc: Document) -> tuple[str, ...]:
    """A document's audience; one written before visibility existed is PUBLIC (the backfill
    in services/store/indexes.py gives it the field, so queries match it too)."""
    return tuple(doc.get(AUDIENCE, (EVERYONE,)))


def visibility_doc(visibility: Visibility) -> Document:
    doc: Document = {"level": visibility.level.value}
    if visibility.cities:
        doc["cities"] = list(visibility.cities)
    if visibility.networks:
        doc["networks"] = list(visibility.networks)
    if visibility.embargo is not None:
        doc["embargo"] = {
            "until": visibility.embargo.until,
            "level": visibility.embargo.level.value,
        }
    return doc


def visibility_of(doc: Document | None) -> Visibility:
    """A stored visibility; a document written before visibility existed is PUBLIC."""
    if not doc:
        return PUBLIC
    embargo = doc.get("embargo")
    return Visibility(
        level=VisibilityLevel(doc["level"]),
        cities=tuple(doc.get("cities", ())),
        networks=tuple(doc.get("networks", ())),
        embargo=Embargo(until=embargo["until"], level=VisibilityLevel(embargo["level"]))
        if embargo
        else None,
    )


def team_doc(team: Sequence[TeamMember]) -> list[Document]:
    return [
        {
            "kind": m.kind,
            "id": m.id,
            "role": m.role.value,
            "addedAt": m.added_at,
            "addedBy": m.added_by,
            "city": m.city,
        }
        for m in team
    ]


def team_of(docs: Sequence[Document] | None) -> tuple[TeamMember, ...]:
    return tuple(
        TeamMember(
            kind=d["kind"],
            id=d["id"],
            role=TeamRole(d["role"]),
            added_at=d["addedAt"],
            added_by=d["addedBy"],
            city=d.get("city", ""),
        )
        for d in docs or ()
    )


def access_fields(
    visibility: Visibility, team: Sequence[TeamMember], audience: Sequence[str]
) -> Document:
    """The stored fields of a problem's or solution's access: what was asked, and its audience."""
    return {
        "visibility": visibility_doc(visibility),
        "team": team_doc(team),
        AUDIENCE: list(audience),
    }
