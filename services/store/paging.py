"""Keyset pagination over any collection: a page never repeats or drops items on inserts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from cityexchange.services.errors import InvalidInput
from cityexchange.services.pages import Cursor, Page, PageRequest
from cityexchange.services.store.database import Document, guarded

T = TypeVar("T")


def keyset(field: str, descending: bool, cursor: Cursor, cursor_id: Any) -> Document:
    op = "$lt" if descending else "$gt"
    if field == "_id":
        return {"_id": {op: cursor_id}}
    return {"$or": [{field: {op: cursor.value}}, {field: cursor.value, "_id": {op: cursor_id}}]}


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
) -> Page[T]:
    """One page of `query` sorted by (`field`, _id), in a single round trip."""
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
        full = {"$and": [query, keyset(field, walk_descending, cursor, cursor_id)]}
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
        cursors=[
            Cursor(
                order, doc[field] if field != "_id" else str(doc["_id"]), str(doc["_id"])
            ).encode()
            for doc in docs
        ],
        has_next_page=has_next,
        has_previous_page=has_previous,
        count=count,
    )
