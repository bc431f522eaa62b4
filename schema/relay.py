"""Relay plumbing: global ids, the Node interface, connections with keyset cursors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import strawberry

from services.errors import InvalidInput
from services.ids import global_id
from services.pages import Page

NodeT = TypeVar("NodeT")
DomainT = TypeVar("DomainT")

KINDS = frozenset({"City", "Person", "Problem", "Solution", "Comment", "Event"})


def to_global_id(kind: str, id: str) -> strawberry.ID:
    """An opaque global id: base64url of "Kind:id"."""
    return strawberry.ID(global_id(kind, id))


def from_global_id(global_id: str) -> tuple[str, str] | None:
    """(kind, id) of a global id, or None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    kind, _, id = raw.partition(":")
    if kind not in KINDS or not id:
        return None
    return kind, id


def expect_global_id(global_id: str, kinds: tuple[str, ...], *, field: str) -> tuple[str, str]:
    """(kind, id) of a global id that must be of one of `kinds`, else the caller's error."""
    parsed = from_global_id(global_id)
    if parsed is None or parsed[0] not in kinds:
        raise InvalidInput(field, f"is not the id of a {' or '.join(kinds)}")
    return parsed


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="Items matching the list's filter, across all pages.")
    async def total_count(self) -> int:
        return await self.count()


def connection(page: Page[DomainT], convert: Callable[[DomainT], NodeT]) -> Connection[NodeT]:
    """A Relay connection of a page of domain items."""
    edges = [
        Edge(cursor=cursor, node=convert(item))
        for item, cursor in zip(page.items, page.cursors, strict=True)
    ]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        ),
        count=page.total_count,
    )
