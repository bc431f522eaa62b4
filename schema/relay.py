"""Relay plumbing: global ids, the Node interface, connections with keyset cursors.

Hand-made rather than strawberry.relay: its GlobalID is standard base64 with padding, so the
base64url ids clients already hold would stop resolving, and its ListConnection pages by
offset, without `totalCount`. The codecs are services/ids.py's and services/pages.py's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import strawberry
from strawberry.types.nodes import SelectedField

from cityexchange.schema.context import Info
from cityexchange.schema.related import AttachRelated, Resolved, node_selections
from cityexchange.services.errors import InvalidInput
from cityexchange.services.ids import global_id, parse_global_id
from cityexchange.services.pages import Page

NodeT = TypeVar("NodeT")
DomainT = TypeVar("DomainT")


def to_global_id(kind: str, id: str) -> strawberry.ID:
    """An opaque global id: base64url of "Kind:id"."""
    return strawberry.ID(global_id(kind, id))


def from_global_id(global_id: str) -> tuple[str, str] | None:
    """(kind, id) of a global id, or None when it is not one."""
    return parse_global_id(global_id)


def expect_global_id(
    global_id: str, kinds: tuple[str, ...], *, field: str | tuple[str, ...]
) -> tuple[str, str]:
    """(kind, id) of a global id that must be of one of `kinds`, else the caller's error."""
    parsed = parse_global_id(global_id)
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
    all_edges: strawberry.Private[list[Edge[NodeT]]]
    paging: strawberry.Private[PageInfo]
    count: strawberry.Private[Callable[[], Awaitable[int]]]
    # Set until the edges are first resolved: loads what their nodes' selection asks for.
    attach: strawberry.Private[AttachRelated | None] = None

    @strawberry.field(graphql_type=list[Edge[NodeT]])
    def edges(self, info: Info) -> Resolved[list[Edge[NodeT]]]:
        attach, self.attach = self.attach, None
        if attach is None or not self.all_edges:
            return self.all_edges
        return self._attached(attach, info)

    async def _attached(self, attach: AttachRelated, info: Info) -> list[Edge[NodeT]]:
        selections = node_selections(
            f for f in info.selected_fields if isinstance(f, SelectedField)
        )
        await attach(info, [edge.node for edge in self.all_edges], selections)
        return self.all_edges

    @strawberry.field
    def page_info(self) -> PageInfo:
        return self.paging

    @strawberry.field(description="Items matching the list's filter, across all pages.")
    async def total_count(self) -> int:
        return await self.count()


def connection(
    page: Page[DomainT], convert: Callable[[DomainT], NodeT], *, attached: bool = False
) -> Connection[NodeT]:
    """A Relay connection of a page of domain items; unless their relations are `attached`
    already, its edges load them for all its items at once (schema/related.py)."""
    edges = [
        Edge(cursor=cursor, node=convert(item))
        for item, cursor in zip(page.items, page.cursors, strict=True)
    ]
    attach: AttachRelated | None = None
    if edges and not attached:
        attach = getattr(type(edges[0].node), "attach_related", None)
    return Connection(
        all_edges=edges,
        paging=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        ),
        count=page.total_count,
        attach=attach,
    )
