"""Relations loaded a list at a time: when a connection's edges are resolved, what its items'
selection asks for (their city, author, pages of children, and below them) is loaded for all
of them at once, through the request's DataLoaders (one batch per level, as before), and
attached to each item, so the items' fields are plain reads instead of one awaited load each.

Anything not attached (an item from elsewhere, a selection this does not follow, a load that
failed) is loaded by the field itself, as it would be without this: so an error still lands
on the field and path where it belongs, from the DataLoader's cache, with no second query.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from strawberry.types.nodes import SelectedField, Selection

from cityexchange.services.pages import Page

if TYPE_CHECKING:
    from cityexchange.schema.context import Info
    from cityexchange.schema.relay import Connection

T = TypeVar("T")
# What a field resolves to: the attached value, or the awaitable that loads it.
Resolved = T | Awaitable[T]
# An item's attached values, by (field, arguments).
Attached = dict[Hashable, Any]
Fields = dict[str, list[SelectedField]]


class AttachRelated(Protocol):
    """A type's loader of what a selection asks of a list of its items."""

    def __call__(
        self, info: Info, items: Sequence[Any], selections: Sequence[Selection]
    ) -> Awaitable[None]: ...


def _included(directives: dict[str, dict[str, Any]]) -> bool:
    """@skip / @include, as graphql-core applies them."""
    skip, include = directives.get("skip"), directives.get("include")
    return not (skip and skip.get("if")) and not (include is not None and not include.get("if"))


def fields_of(selections: Iterable[Selection], type_names: frozenset[str] | None) -> Fields:
    """The fields `selections` select on an object of one of `type_names` (its type and its
    interfaces), by field name, through fragments whose condition it meets (any, for None)."""
    found: Fields = {}
    pending = deque(selections)  # in document order: a fragment's selections where it stands
    while pending:
        selection = pending.popleft()
        if not _included(selection.directives):
            continue
        if isinstance(selection, SelectedField):
            found.setdefault(selection.name, []).append(selection)
        else:
            condition = selection.type_condition
            if condition is None or type_names is None or condition in type_names:
                pending.extendleft(reversed(selection.selections))
    return found


def node_selections(edges: Iterable[SelectedField]) -> list[Selection]:
    """What the `edges` fields of a connection select on their nodes (fragments on a
    connection or an edge can only be on its own type)."""
    return [
        selection
        for field in edges
        for node in _named(field.selections, "node")
        for selection in node.selections
    ]


def edge_selections(connections: Iterable[SelectedField]) -> list[SelectedField]:
    """The `edges` fields the connection fields `connections` select."""
    return [edges for field in connections for edges in _named(field.selections, "edges")]


def _named(selections: Iterable[Selection], name: str) -> list[SelectedField]:
    return fields_of(selections, None).get(name, [])


def page_arguments(field: SelectedField) -> tuple[int | None, str | None] | None:
    """(first, after) of a child list's field, or None when it has other arguments.

    strawberry gives a literal as its text (`first: 5` is "5"); validation has checked that
    it is an Int, so the text is one. Variables come coerced already."""
    arguments = field.arguments
    if arguments.keys() - {"first", "after"}:
        return None
    first, after = arguments.get("first"), arguments.get("after")
    if isinstance(first, str) and first.lstrip("-").isdigit():
        first = int(first)
    if not (first is None or type(first) is int) or not (after is None or type(after) is str):
        return None
    return first, after


async def gather_quietly(loads: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run `loads` together (so their DataLoaders batch in one tick); a load that fails
    attaches nothing, and its field meets the same failure itself."""
    await asyncio.gather(*loads, return_exceptions=True)


class HasAttached(Protocol):
    """An item whose relation fields read what a list's loading attached to it."""

    @property
    def attached(self) -> Attached: ...


ItemT = TypeVar("ItemT", bound=HasAttached)
LoadPages = Callable[[list[tuple[str, int | None, str | None, None]]], Awaitable[list[Page[Any]]]]


def attach_pages(
    info: Info,
    items: Sequence[ItemT],
    fields: list[SelectedField],
    *,
    parent_of: Callable[[ItemT], str],
    load: LoadPages,
    build: Callable[[Page[Any]], Connection[Any]],
) -> list[Coroutine[Any, Any, None]]:
    """The loads of the pages of children `fields` (one field, maybe under several aliases)
    ask for: one batch per distinct (first, after), each attached as (name, first, after)."""
    by_arguments: dict[tuple[int | None, str | None], list[SelectedField]] = {}
    for field in fields:
        arguments = page_arguments(field)
        if arguments is not None:
            by_arguments.setdefault(arguments, []).append(field)
    return [
        _attach_pages(info, items, same, arguments, parent_of=parent_of, load=load, build=build)
        for arguments, same in by_arguments.items()
    ]


async def _attach_pages(
    info: Info,
    items: Sequence[ItemT],
    fields: list[SelectedField],
    arguments: tuple[int | None, str | None],
    *,
    parent_of: Callable[[ItemT], str],
    load: LoadPages,
    build: Callable[[Page[Any]], Connection[Any]],
) -> None:
    first, after = arguments
    pages = await load([(parent_of(item), first, after, None) for item in items])
    connections = [build(page) for page in pages]
    for item, built in zip(items, connections, strict=True):
        item.attached[(fields[0].name, first, after)] = built
    children: list[object] = [edge.node for built in connections for edge in built.all_edges]
    attach = getattr(type(children[0]), "attach_related", None) if children else None
    if attach is not None:
        await cast(AttachRelated, attach)(info, children, node_selections(edge_selections(fields)))
