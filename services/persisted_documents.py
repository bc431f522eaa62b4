"""Persisted documents: GraphQL texts kept under an id. Learned ones come from clients
(automatic persisted queries: the id is the text's SHA-256) and go 30 days after their last
use; registered ones come from a build's manifest and stay. Clients on the trusted list run
registered documents only.

DocumentError (ServiceError)
├── UnknownDocument(id)           no document under this id      -> PERSISTED_QUERY_NOT_FOUND
├── HashMismatch(id)              the text is not the id's        -> PERSISTED_QUERY_HASH_MISMATCH
├── UntrustedDocument(reason)     a trusted client, unregistered  -> TRUSTED_DOCUMENT_REQUIRED
└── InvalidManifest(reason)       a manifest that cannot be read  (the CLI's error)
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import cast

from cityexchange.services.clock import now
from cityexchange.services.errors import ServiceError
from cityexchange.services.store import documents as store
from cityexchange.services.store.database import Database

SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
TOUCH_EVERY = timedelta(days=1)  # its last use is written at most this often
MAX_LEARNED_TEXT = 64 * 1024  # longer texts run, but are not learned
CACHE_SIZE = 1024  # documents kept in process ...
CACHE_TEXT = 8 * 1024 * 1024  # ... and characters of their texts
CACHE_SECONDS = 60.0  # a document re-registered elsewhere (the CLI) is seen within this
APOLLO_FORMAT = "apollo-persisted-query-manifest"


class DocumentError(ServiceError):
    """Base of the persisted documents' errors."""


class UnknownDocument(DocumentError):
    def __init__(self, id: str) -> None:
        self.id = id
        super().__init__(f"no persisted document {id!r}")


class HashMismatch(DocumentError):
    def __init__(self, id: str) -> None:
        self.id = id
        super().__init__(f"the query text is not the document {id!r}: its SHA-256 differs")


class UntrustedDocument(DocumentError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class InvalidManifest(DocumentError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class PersistedDocument:
    id: str
    text: str
    registered: bool
    last_used: datetime | None  # learned documents only


@dataclass(frozen=True, slots=True)
class Registration:
    """One operation of a manifest."""

    id: str
    text: str
    name: str | None = None
    kind: str | None = None  # query, mutation or subscription (Apollo's "type")


@dataclass(frozen=True, slots=True)
class Resolved:
    """The text a request runs, and whether to learn it once it passed validation."""

    text: str
    learn: bool = False


class DocumentCache:
    """Recently used documents in process, bounded by count and by the length of texts."""

    def __init__(
        self,
        size: int = CACHE_SIZE,
        text: int = CACHE_TEXT,
        seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size, self.text, self.seconds, self.clock = size, text, seconds, clock
        self._documents: OrderedDict[str, tuple[PersistedDocument, float]] = OrderedDict()
        self._kept = 0

    def get(self, id: str) -> PersistedDocument | None:
        """The document kept under `id`, unless it was kept `seconds` ago or more (it may
        have been registered anew since: read it again)."""
        found = self._documents.get(id)
        if found is None:
            return None
        if self.clock() - found[1] >= self.seconds:
            self._drop(id)
            return None
        self._documents.move_to_end(id)
        return found[0]

    def keep(self, document: PersistedDocument) -> None:
        self._drop(document.id)
        self._documents[document.id] = (document, self.clock())
        self._kept += len(document.text)
        while len(self._documents) > self.size or self._kept > self.text:
            _, (dropped, _) = self._documents.popitem(last=False)
            self._kept -= len(dropped.text)

    def _drop(self, id: str) -> None:
        old = self._documents.pop(id, None)
        self._kept -= len(old[0].text) if old else 0


def digest(text: str) -> str:
    """A document's id under automatic persisted queries: its text's SHA-256, in hex."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def normal_id(id: str) -> str:
    """SHA-256 ids compare in lower case; other ids (Relay's, say) as they are."""
    return id.lower() if SHA256.match(id) else id


async def find(
    *, db: Database, cache: DocumentCache, id: str, registered: bool = False
) -> PersistedDocument | None:
    """The document under `id`; a learned one's last use is moved to now once a day.
    With `registered`, a learned one in the cache is looked up again (it may have been
    registered since)."""
    document = cache.get(id)
    if document is None or (registered and not document.registered):
        stored = await store.get(db, id)
        if stored is None:
            return None
        document = PersistedDocument(id, stored.text, stored.registered, stored.last_used)
    moment = now()
    last_used = document.last_used
    if not document.registered and last_used is not None and moment - last_used >= TOUCH_EVERY:
        await store.touch(db, id=id, at=moment, before=moment - TOUCH_EVERY)
        document = replace(document, last_used=moment)
    cache.keep(document)
    return document


async def resolve(
    *, db: Database, cache: DocumentCache, id: str | None, text: str | None, trusted: bool
) -> Resolved:
    """What a request runs: the document under `id` (a request with an id and no text), or
    the text it sent, checked against the id. A trusted client's document must be registered."""
    if id is None:
        if text is None or not trusted:
            raise ValueError("resolve needs an id, or a trusted client's text")
        document = await find(db=db, cache=cache, id=digest(text), registered=True)
        if document is None or not document.registered:
            raise UntrustedDocument("this client runs registered documents only")
        return Resolved(text)
    id = normal_id(id)
    if text is not None and SHA256.match(id) and digest(text) != id:
        raise HashMismatch(id)
    document = await find(db=db, cache=cache, id=id, registered=trusted)
    if document is None:
        if text is None:
            raise UnknownDocument(id)
        if trusted:
            raise UntrustedDocument(f"document {id!r} is not registered for this client")
        return Resolved(text, learn=bool(SHA256.match(id)))
    if trusted and not document.registered:
        raise UntrustedDocument(f"document {id!r} is not registered for this client")
    if text is not None and text != document.text:
        raise HashMismatch(id)
    return Resolved(document.text)


async def learn(
    *,
    db: Database,
    cache: DocumentCache,
    text: str,
    learner: str,
    per_hour: int,
) -> bool:
    """Store a document a client sent with its SHA-256, once it passed validation: at most
    `per_hour` new ones per learner (a client, or an address without a token), each within
    MAX_LEARNED_TEXT. False when it was not stored (it still ran)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_LEARNED_TEXT:
        return False
    moment = now()
    if await store.learned_since(db, learner=learner, since=moment - timedelta(hours=1)) >= (
        per_hour
    ):
        return False
    id = digest(text)
    await store.learn(db, id=id, text=text, learner=learner, at=moment)
    cache.keep(PersistedDocument(id, text, registered=False, last_used=moment))
    return True


async def register(*, db: Database, registrations: Sequence[Registration]) -> dict[str, str]:
    """Register a manifest's documents (idempotent): per id, "added", "updated" or
    "unchanged"."""
    entries = [store.Entry(r.id, r.text, r.name, r.kind) for r in registrations]
    return await store.register(db, entries, at=now())


def parse_manifest(text: str) -> list[Registration]:
    """The operations of an Apollo (`persisted-query-manifest.json`) or a Relay
    (`persisted_queries.json`) manifest."""
    try:
        manifest = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidManifest(f"not JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise InvalidManifest("a manifest is a JSON object")
    shape = cast(dict[str, object], manifest)
    if shape.get("format") == APOLLO_FORMAT:
        return _apollo(shape)
    if all(isinstance(value, str) for value in shape.values()) and shape:
        return [Registration(normal_id(id), str(body)) for id, body in shape.items()]
    raise InvalidManifest(
        f'neither an Apollo manifest ({{"format": "{APOLLO_FORMAT}", ...}}) nor a Relay one '
        '({"<id>": "<text>", ...})'
    )


def _apollo(manifest: dict[str, object]) -> list[Registration]:
    if manifest.get("version") != 1:
        raise InvalidManifest(f"unsupported {APOLLO_FORMAT} version {manifest.get('version')!r}")
    operations = manifest.get("operations")
    if not isinstance(operations, list):
        raise InvalidManifest('an Apollo manifest needs an "operations" list')
    found: list[Registration] = []
    for index, item in enumerate(cast(list[object], operations)):
        operation = cast(dict[str, object], item) if isinstance(item, dict) else {}
        id, body = operation.get("id"), operation.get("body")
        name, kind = operation.get("name"), operation.get("type")
        if not isinstance(id, str) or not id or not isinstance(body, str):
            raise InvalidManifest(f"operation {index} needs a string id and body")
        found.append(
            Registration(
                normal_id(id),
                body,
                name if isinstance(name, str) else None,
                kind if isinstance(kind, str) else None,
            )
        )
    return found


def problems(registration: Registration) -> list[str]:
    """What is wrong with a registration before its text is validated: an id that is a
    SHA-256 must be its text's."""
    if SHA256.match(registration.id) and digest(registration.text) != registration.id:
        return [
            f"id {registration.id} is not the SHA-256 of the body ({digest(registration.text)})"
        ]
    if not registration.text.strip():
        return ["the body is empty"]
    return []
