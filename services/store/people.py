"""`people`, as the authorization server and the realm admin use it: credentials, roles,
invitations and revocation, through the synchronous client (authlib's core and the CLI are
synchronous); and the profile side of the same documents, as the services read and write it
(asynchronous): the one module that speaks to `people`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pymongo.database import Database as SyncDatabase
from pymongo.errors import DuplicateKeyError

from cityexchange.services.clock import now
from cityexchange.services.errors import InvalidInput
from cityexchange.services.models import Organisation, Person
from cityexchange.services.pages import ChildPages
from cityexchange.services.store.database import Database, Document, guarded, object_id, object_ids
from cityexchange.services.store.grouped import child_pages
from cityexchange.services.store.unavailable import guarded_sync
from cityexchange.services.taxonomy import OrganisationKind, Role

COLLECTION = "people"
SyncDb = SyncDatabase[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Credentials:
    person_id: str
    city: str
    username: str
    password_hash: str | None
    revoked_at: datetime | None
    role: str = "member"


@guarded_sync
def credentials(db: SyncDb, city: str, username: str) -> Credentials | None:
    doc = db[COLLECTION].find_one({"city": city, "username": username})
    if doc is None:
        return None
    return Credentials(
        str(doc["_id"]),
        city,
        username,
        doc.get("passwordHash"),
        doc.get("revokedAt"),
        str(doc.get("role", "member")),
    )


@guarded_sync
def set_password(db: SyncDb, city: str, username: str, password_hash: str) -> bool:
    result = db[COLLECTION].update_one(
        {"city": city, "username": username}, {"$set": {"passwordHash": password_hash}}
    )
    return result.matched_count == 1


@guarded_sync
def replace_password_hash(db: SyncDb, city: str, person_id: str, old: str, new: str) -> bool:
    """Rehash (e.g. scrypt to argon2id) unless the password changed meanwhile."""
    result = db[COLLECTION].update_one(
        {"_id": object_id(person_id), "city": city, "passwordHash": old},
        {"$set": {"passwordHash": new}},
    )
    return result.modified_count == 1


@guarded_sync
def mark_revoked(db: SyncDb, city: str, person_id: str, *, at: datetime) -> None:
    """No more sign-in, refresh or token for this person."""
    db[COLLECTION].update_one(
        {"_id": object_id(person_id), "city": city}, {"$set": {"revokedAt": at}}
    )


@guarded_sync
def set_invitation(
    db: SyncDb, city: str, username: str, code_hash: str, *, expires_at: datetime
) -> bool:
    result = db[COLLECTION].update_one(
        {"city": city, "username": username},
        {"$set": {"invitation": {"hash": code_hash, "expiresAt": expires_at}}},
    )
    return result.matched_count == 1


@guarded_sync
def accept_invitation(
    db: SyncDb, city: str, username: str, code_hash: str, password_hash: str
) -> bool:
    """Set the password and use the invitation up, in one atomic update."""
    result = db[COLLECTION].update_one(
        {
            "city": city,
            "username": username,
            "invitation.hash": code_hash,
            "invitation.expiresAt": {"$gt": now()},
            "revokedAt": None,
        },
        {"$set": {"passwordHash": password_hash}, "$unset": {"invitation": ""}},
    )
    return result.modified_count == 1


@guarded_sync
def role(db: SyncDb, city: str, person_id: str) -> str | None:
    """The person's current role; None when revoked, gone or of another city."""
    oid = object_id(person_id)
    if oid is None:
        return None
    doc = db[COLLECTION].find_one({"_id": oid, "city": city}, {"revokedAt": 1, "role": 1})
    if doc is None or doc.get("revokedAt") is not None:
        return None
    return str(doc.get("role", "member"))


def _person_doc(person: Person) -> Document:
    return {
        "city": person.city,
        "username": person.username,
        "name": person.name,
        "role": person.role.value,
        "organisation": {"name": person.organisation.name, "kind": person.organisation.kind.value},
        "title": person.title,
    }


def _person(doc: Document) -> Person:
    return Person(
        id=str(doc["_id"]),
        city=doc["city"],
        username=doc["username"],
        name=doc["name"],
        role=Role(doc["role"]),
        organisation=Organisation(
            name=doc["organisation"]["name"],
            kind=OrganisationKind(doc["organisation"]["kind"]),
        ),
        title=doc.get("title"),
    )


@guarded
async def insert_person(db: Database, person: Person) -> Person:
    try:
        result = await db.people.insert_one(_person_doc(person))
    except DuplicateKeyError:
        raise InvalidInput(
            "username", f"{person.city} already has a person '{person.username}'"
        ) from None
    return replace(person, id=str(result.inserted_id))


@guarded
async def people_by_ids(db: Database, ids: Sequence[str]) -> list[Person | None]:
    """People aligned to `ids`, in one round trip."""
    wanted = object_ids(list(dict.fromkeys(ids)))
    by_id = {
        str(doc["_id"]): _person(doc)
        async for doc in db.people.find({"_id": {"$in": wanted}}).batch_size(len(wanted) + 1)
    }
    return [by_id.get(id_) for id_ in ids]


@guarded
async def person_in_city(db: Database, *, city: str, id: str) -> Person | None:
    oid = object_id(id)
    if oid is None:
        return None
    doc = await db.people.find_one({"_id": oid, "city": city})
    return _person(doc) if doc else None


@guarded
async def person_by_username(db: Database, *, city: str, username: str) -> Person | None:
    doc = await db.people.find_one({"city": city, "username": username})
    return _person(doc) if doc else None


async def people_of_cities(
    db: Database, cities: Sequence[str], *, first: int, after: str | None
) -> ChildPages[Person]:
    """A page of people for each of many cities, in one round trip."""
    return await child_pages(
        db.people, parent_field="city", parents=list(cities), match=None, field="_id",
        descending=False, order="PERSON", first=first, after=after, to_model=_person,
        parse_id=object_id,
    )  # fmt: skip
