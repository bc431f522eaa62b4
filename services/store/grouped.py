"""Pages of children for many parents at once: one aggregation instead of one query each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pymongo.asynchronous.collection import AsyncCollection

from services.errors import InvalidInput
from services.pages import Cursor, Page
from services.store.database import Document, guarded

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ChildPages(Generic[T]):
    """A forward page of children per parent, with each parent's total."""

    pages: dict[str, tuple[list[T], list[str], bool, int]]

    def page(self, parent: str, *, after: str | None) -> Page[T]:
        items, cursors, more, total = self.pages.get(parent, ([], [], False, 0))

        async def count() -> int:
            return total

        return Page(
            items=items,
            cursors=cursors,
            has_next_page=more,
            has_previous_page=after is not None,
            count=count,
        )


@guarded
async def child_pages(
    collection: AsyncCollection[Document],
    *,
    parent_field: str,
    parents: Sequence[Any],
    match: Document | None,
    descending: bool,
    order: str,
    first: int,
    after: str | None,
    to_model: Callable[[Document], T],
    parse_id: Callable[[str], Any],
) -> ChildPages[T]:
    """Children of every parent, sorted by (createdAt, _id), `first` after `after` each."""
    direction = -1 if descending else 1
    page_filter: Document = {"$literal": True}
    if after is not None:
        cursor = Cursor.decode(after, field="after", order=order)
        cursor_id = parse_id(cursor.id)
        if cursor_id is None:
            raise InvalidInput("after", "is not a cursor returned by this API")
        op = "$lt" if descending else "$gt"
        page_filter = {
            "$or": [
                {op: ["$$this.createdAt", cursor.value]},
                {
                    "$and": [
                        {"$eq": ["$$this.createdAt", cursor.value]},
                        {op: ["$$this._id", cursor_id]},
                    ]
                },
            ]
        }
    wanted = list(dict.fromkeys(parents))
    pipeline: list[Document] = [
        {"$match": {parent_field: {"$in": wanted}, **(match or {})}},
        {"$sort": {"createdAt": direction, "_id": direction}},
        # Unwinding makes array-valued parent fields (a solution addressing several problems)
        # group under each parent; on a scalar it is a no-op.
        {"$addFields": {"_parent": f"${parent_field}"}},
        {"$unwind": "$_parent"},
        {"$match": {"_parent": {"$in": wanted}}},
        {"$group": {"_id": "$_parent", "docs": {"$push": "$$ROOT"}, "n": {"$sum": 1}}},
        {
            "$project": {
                "n": 1,
                "docs": {
                    "$slice": [{"$filter": {"input": "$docs", "cond": page_filter}}, first + 1]
                },
            }
        },
    ]
    pages: dict[str, tuple[list[T], list[str], bool, int]] = {}
    cursor_batch = len(wanted) + 1  # one batch for every group: no getMore round trip
    async for group in await collection.aggregate(pipeline, batchSize=cursor_batch):
        docs: list[Document] = group["docs"]
        shown = docs[:first]
        pages[str(group["_id"])] = (
            [to_model(doc) for doc in shown],
            [Cursor(order, doc["createdAt"], str(doc["_id"])).encode() for doc in shown],
            len(docs) > first,
            group["n"],
        )
    return ChildPages(pages)
