"""Keyset pagination over any collection: a page never repeats or drops items on inserts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from cityexchange.services.errors import InvalidInput
from cityexchange.services.pages import Cursor, Page, PageRequest
from cityexchange.services.store.database import Document, guarded

T = TypeVar("T")


def keyset(
    field: str, descending: bool, cursor: Cursor, cursor_id: Any, *, nullable: bool = False
) -> Document:
    """What comes after `cursor` in (`field`, _id) order. A `nullable` field may be missing or
    null, which MongoDB sorts before every number: last when descending, first when not."""
    op = "$lt" if descending else "$gt"
    if field == "_id":
        return {"_id": {op: cursor_id}}
    if nullable and cursor.value is None:
        after_null: Document = {field: None, "_id": {op: cursor_id}}
        return after_null if descending else {"$or": [after_null, {field: {"$ne": None}}]}
    clauses: list[Document] = [
        {field: {op: cursor.value}},
        {field: cursor.value, "_id": {op: cursor_id}},
    ]
    if nullable and descending:
        clauses.append({field: None})
    return {"$or": clauses}


def sort_value(doc: Document, field: str) -> Any:
    """The value of a (dotted) sort field in `doc`, None where it is missing."""
    if field == "_id":
        return str(doc["_id"])
    value: Any = doc
    for part in field.split("."):
        value = cast(Document, value).get(part) if isinstance(value, dict) else None
    return value


@guarded
async def find_page(
    collection: AsyncCollection[Document],
    *,
    query: Document,
    field: str,
    descending: bool,
    order: str,
    request: PageRequest,
    to_model: Callable[[Document], T],
    parse_id: Callable[[str], Any],
    nullable: bool = False,
) -> Page[T]:
    """One page of `query` sorted by (`field`, _id), in a single round trip (`nullable`:
    see `keyset`)."""
    request.validate()
    size = request.size
    backward = request.backward
    cursor_text = request.before if backward else request.after
    walk_descending = descending != backward
    full = query
    if cursor_text is not None:
        arg = "before" if backward else "after"
        cursor = Cursor.decode(cursor_text, field=arg, order=order)
        cursor_id = parse_id(cursor.id)
        if cursor_id is None:
            raise InvalidInput(arg, "is not a cursor returned by this API")
        page_after = keyset(field, walk_descending, cursor, cursor_id, nullable=nullable)
        full = {"$and": [query, page_after]}
    direction = DESCENDING if walk_descending else ASCENDING
    sort = [("_id", direction)] if field == "_id" else [(field, direction), ("_id", direction)]
    # limit(0) means "no limit" to MongoDB, so an empty page still asks for one document
    # to learn whether more exist. The batch size follows the page size: no getMore.
    fetch = size + 1
    docs = await collection.find(full).sort(sort).limit(fetch).batch_size(fetch).to_list(fetch)
    more = len(docs) > size
    docs = docs[:size]
    if backward:
        docs.reverse()
    has_next, has_previous = (
        (cursor_text is not None, more) if backward else (more, cursor_text is not None)
    )

    @guarded
    async def count() -> int:
        return await collection.count_documents(query)

    return Page(
        items=[to_model(doc) for doc in docs],
        cursors=[Cursor(order, sort_value(doc, field), str(doc["_id"])).encode() for doc in docs],
        has_next_page=has_next,
        has_previous_page=has_previous,
        count=count,
    )
