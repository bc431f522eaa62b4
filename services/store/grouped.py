"""Pages of children for many parents at once: one aggregation instead of one query each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from cityexchange.services.errors import InvalidInput
from cityexchange.services.pages import ChildPages, Cursor
from cityexchange.services.store.database import Document, guarded
from cityexchange.services.store.paging import keyset, sort_value

T = TypeVar("T")


@guarded
async def child_pages(
    collection: AsyncCollection[Document],
    *,
    parent_field: str,
    parents: Sequence[Any],
    match: Document | None,
    field: str = "createdAt",
    descending: bool,
    order: str,
    first: int,
    after: str | None,
    to_model: Callable[[Document], T],
    parse_id: Callable[[str], Any],
    nullable: bool = False,
) -> ChildPages[T]:
    """Children of every parent sorted by (`field`, _id), `first` after `after` each.

    One round trip: a $facet counts each parent's children and, beside it, keeps only the
    top `first + 1` of each parent past the cursor ($topN, MongoDB 5.2+), so the server never
    gathers whole child lists.
    """
    page_match: Document = {}
    if after is not None:
        cursor = Cursor.decode(after, field="after", order=order)
        cursor_id = parse_id(cursor.id)
        if cursor_id is None:
            raise InvalidInput("after", "is not a cursor returned by this API")
        page_match = keyset(field, descending, cursor, cursor_id, nullable=nullable)
    direction = DESCENDING if descending else ASCENDING
    sort_by = {"_id": direction} if field == "_id" else {field: direction, "_id": direction}
    wanted = list(dict.fromkeys(parents))
    pipeline: list[Document] = [
        {"$match": {parent_field: {"$in": wanted}, **(match or {})}},
        # Copying and unwinding the parent field makes array-valued fields (a solution
        # addressing several problems) count under each parent; on a scalar it is a no-op.
        {"$addFields": {"_parent": f"${parent_field}"}},
        {"$unwind": "$_parent"},
        {"$match": {"_parent": {"$in": wanted}}},
        {"$facet": {
            "totals": [{"$group": {"_id": "$_parent", "n": {"$sum": 1}}}],
            "pages": [
                {"$match": page_match},
                {"$group": {"_id": "$_parent", "docs": {
                    "$topN": {"n": first + 1, "sortBy": sort_by, "output": "$$ROOT"}}}},
            ],
        }},
    ]  # fmt: skip
    result = await (await collection.aggregate(pipeline)).to_list(1)
    facets: Document = result[0] if result else {"totals": [], "pages": []}
    totals = {str(t["_id"]): int(t["n"]) for t in facets["totals"]}
    pages: dict[str, tuple[list[T], list[str], bool, int]] = {}
    for group in facets["pages"]:
        docs: list[Document] = group["docs"]
        shown = docs[:first]
        pages[str(group["_id"])] = (
            [to_model(doc) for doc in shown],
            [Cursor(order, sort_value(doc, field), str(doc["_id"])).encode() for doc in shown],
            len(docs) > first,
            totals.get(str(group["_id"]), 0),
        )
    for parent, total in totals.items():
        pages.setdefault(parent, ([], [], False, total))
    return ChildPages(pages)
