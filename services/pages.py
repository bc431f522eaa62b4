"""Keyset pagination: page requests, pages and opaque cursors."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Generic, TypeGuard, TypeVar, cast

from cityexchange.services.errors import InvalidInput
from cityexchange.services.ids import decode_opaque, encode_opaque

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# What a forged cursor may carry and still be compared with stored values: a datetime's
# milliseconds within years 1..9999 and integers that BSON can hold (int64).
_MIN_MILLIS = int(datetime(1, 1, 2, tzinfo=UTC).timestamp() * 1000)
_MAX_MILLIS = int(datetime(9999, 12, 30, tzinfo=UTC).timestamp() * 1000)


def encode_cursor(position: str) -> str:
    """The opaque cursor of a position in a list; every connection's cursors are these."""
    return encode_opaque(position)


def decode_cursor(cursor: str, *, field: str, what: str = "a cursor") -> str:
    """The position a cursor holds; anything not made by `encode_cursor` is the caller's
    error (`field`)."""
    position = decode_opaque(cursor)
    if position is None:
        raise InvalidInput(field, f"is not {what} returned by this API")
    return position


def _is_int64(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _millis(value: object) -> int | None:
    """The milliseconds of an encoded datetime ({"d": ms}) within range, else None."""
    millis = cast(dict[str, object], value).get("d") if isinstance(value, dict) else None
    return millis if _is_int64(millis) and _MIN_MILLIS <= millis <= _MAX_MILLIS else None


class Order(StrEnum):
    """Sort orders of problem and solution lists; ties are broken by id."""

    CREATED_AT_DESC = "CREATED_AT_DESC"
    CREATED_AT_ASC = "CREATED_AT_ASC"
    UPDATED_AT_DESC = "UPDATED_AT_DESC"
    UPDATED_AT_ASC = "UPDATED_AT_ASC"

    @property
    def field(self) -> str:
        return "createdAt" if self.name.startswith("CREATED") else "updatedAt"

    @property
    def descending(self) -> bool:
        return self.name.endswith("DESC")


class SolutionOrder(StrEnum):
    """Sort orders of solution lists: the list orders (same cursors) and the ones that compare
    case studies. Cost orders list only solutions with a EUR figure; in EVIDENCE_DESC and
    ADOPTIONS_DESC those without a level or counter come last. Ties are broken by id."""

    CREATED_AT_DESC = "CREATED_AT_DESC"
    CREATED_AT_ASC = "CREATED_AT_ASC"
    UPDATED_AT_DESC = "UPDATED_AT_DESC"
    UPDATED_AT_ASC = "UPDATED_AT_ASC"
    COST_ASC = "COST_ASC"
    COST_DESC = "COST_DESC"
    COST_PER_RESIDENT_ASC = "COST_PER_RESIDENT_ASC"
    EVIDENCE_DESC = "EVIDENCE_DESC"
    ADOPTIONS_DESC = "ADOPTIONS_DESC"

    @property
    def field(self) -> str:
        """The stored field sorted by (services/store/solutions.py writes the derived ones)."""
        return _SOLUTION_SORT_FIELDS[self.name]

    @property
    def descending(self) -> bool:
        return self.name.endswith("DESC")

    @property
    def needs_value(self) -> bool:
        """Whether solutions without the sort value are left out (the cost orders)."""
        return self.name.startswith("COST")

    @property
    def nullable(self) -> bool:
        """Whether the sort value may be missing from listed solutions."""
        return self.name in ("EVIDENCE_DESC", "ADOPTIONS_DESC")


_SOLUTION_SORT_FIELDS = {
    "CREATED_AT_DESC": "createdAt",
    "CREATED_AT_ASC": "createdAt",
    "UPDATED_AT_DESC": "updatedAt",
    "UPDATED_AT_ASC": "updatedAt",
    "COST_ASC": "costEur",
    "COST_DESC": "costEur",
    "COST_PER_RESIDENT_ASC": "costPerResidentEur",
    "EVIDENCE_DESC": "evidence.level",
    "ADOPTIONS_DESC": "adoptionCount",
}


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in a sorted list: the sort value and id of the last item seen."""

    order: str
    value: datetime | str | int | float | None  # None: the item has no sort value
    id: str

    def encode(self) -> str:
        if isinstance(self.value, datetime):
            value: object = {"d": int(self.value.timestamp() * 1000)}
        else:
            value = self.value
        return encode_cursor(json.dumps([self.order, value, self.id], separators=(",", ":")))

    @classmethod
    def decode(cls, text: str, *, field: str, order: str) -> Cursor:
        """Parse a cursor made for `order`; anything else is the caller's error."""
        position = decode_cursor(text, field=field)
        try:
            decoded: object = json.loads(position)
        except (ValueError, RecursionError):
            raise InvalidInput(field, "is not a cursor returned by this API") from None
        parts = cast(list[object], decoded) if isinstance(decoded, list) else []
        if len(parts) != 3:
            raise InvalidInput(field, "is not a cursor returned by this API")
        cursor_order, value, id_ = parts
        if cursor_order != order or not isinstance(id_, str):
            raise InvalidInput(field, "belongs to another list or sort order")
        if isinstance(value, str):
            return cls(order, value, id_)
        if _is_int64(value) or value is None:
            return cls(order, value, id_)
        if isinstance(value, float) and math.isfinite(value):
            return cls(order, value, id_)
        millis = _millis(value)
        if millis is None:
            raise InvalidInput(field, "is not a cursor returned by this API")
        return cls(order, datetime.fromtimestamp(millis / 1000, tz=UTC), id_)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """`first`/`after` walks forward, `last`/`before` walks backward."""

    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    @property
    def backward(self) -> bool:
        return self.last is not None or (self.before is not None and self.first is None)

    @property
    def size(self) -> int:
        """The number of items asked for, defaulted and checked against the cap."""
        name, value = ("last", self.last) if self.backward else ("first", self.first)
        if value is None:
            return DEFAULT_PAGE_SIZE
        if value < 0 or value > MAX_PAGE_SIZE:
            raise InvalidInput(name, f"must be between 0 and {MAX_PAGE_SIZE}")
        return value

    def validate(self) -> None:
        """Reject contradictory arguments before any query runs."""
        if self.first is not None and self.last is not None:
            raise InvalidInput("last", "cannot be combined with 'first'")
        if self.after is not None and self.before is not None:
            raise InvalidInput("before", "cannot be combined with 'after'")
        if self.first is not None and self.before is not None:
            raise InvalidInput("before", "goes with 'last'; use 'after' with 'first'")
        if self.last is not None and self.after is not None:
            raise InvalidInput("after", "goes with 'first'; use 'before' with 'last'")
        _ = self.size


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    count: Callable[[], Awaitable[int]]

    async def total_count(self) -> int:
        """Number of items matching the list's filter, across all pages."""
        return await self.count()


@dataclass(frozen=True, slots=True)
class ChildPages(Generic[T]):
    """A forward page of children for each of many parents, with each parent's total."""

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
