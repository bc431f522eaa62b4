"""Figures of one operation of a GraphQL document: depth, aliases, fields selected after
expanding fragments, directives, and its static cost.

Every fragment is summarised once, after the fragments it spreads, and a spread adds the
spread fragment's summary instead of walking it again: the analysis is linear in the size of
the document however its fragments spread each other (a fragment that spreads another twice,
twenty levels deep, selects a million fields but costs twenty summaries).

The cost model (docs/security.md, "Query cost"), in the manner of GitHub's node count: every
item a list may hold is one point (a connection holds up to `first`, or `last`, or the
default page size; other lists of objects their bound), multiplied level by level, and a long
text field is one point per 2,500 characters it may hold, as often as it may appear. Objects
that are not list items (a node's `city`, a connection's `pageInfo`) are free: what they add
is bounded by the fields selected. Introspection (`__schema`, `__type`) is not counted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sized
from dataclasses import dataclass, field
from typing import Any, cast

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_leaf_type,
)
from graphql.language import DocumentNode, ValueNode

from cityexchange.services.delivery import MAX_ATTEMPTS
from cityexchange.services.follows import MAX_FOLLOWS
from cityexchange.services.limits import BODY_MAX, COMMENT_MAX, LIST_MAX, NOTE_MAX, SHORT_TEXT_MAX
from cityexchange.services.pages import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from cityexchange.services.webhooks import MAX_WEBHOOKS_PER_CITY

CHARACTERS_PER_POINT = 2_500
# Text fields long enough to weigh on a response, by (type, field): one point per 2,500
# characters they may hold.
_NOTES = LIST_MAX * NOTE_MAX // CHARACTERS_PER_POINT  # a list of up to 50 notes
LONG_TEXT = {
    ("Problem", "body"): BODY_MAX // CHARACTERS_PER_POINT,
    ("Solution", "body"): BODY_MAX // CHARACTERS_PER_POINT,
    ("Comment", "body"): COMMENT_MAX // CHARACTERS_PER_POINT,
    ("Solution", "successFactors"): _NOTES,
    ("Solution", "limitingFactors"): _NOTES,
    ("Transferability", "prerequisites"): _NOTES,
    ("Solution", "adaptationNotes"): NOTE_MAX // CHARACTERS_PER_POINT,
    ("Transferability", "context"): NOTE_MAX // CHARACTERS_PER_POINT,
    ("Transferability", "doDifferently"): NOTE_MAX // CHARACTERS_PER_POINT,
    ("Outcome", "note"): NOTE_MAX // CHARACTERS_PER_POINT,
    ("OutcomeReport", "note"): NOTE_MAX // CHARACTERS_PER_POINT,
    ("StageChange", "note"): NOTE_MAX // CHARACTERS_PER_POINT,
    ("Endorsement", "note"): NOTE_MAX // CHARACTERS_PER_POINT,
    ("LineageEntry", "adaptationNotes"): NOTE_MAX // CHARACTERS_PER_POINT,
}
# Fields that rank (database queries and a scoring pass each time they run, whatever their
# page size), by (type, field): points per invocation, multiplied like any other cost by the
# lists around them. A suggestion list runs its own `related` search per parent (up to 25
# round trips reading up to 600 postings each; only the reads after it are batched across
# the parents), so at 1,000 points against MAX_COST 10,000 a document holds at most ten,
# nine when they return anything: `problems(first: 9) { suggestedSolutions(first: 5) }`
# costs 9,054 and runs, `problems(first: 10)` 10,060 and is refused. `City.peers` is one
# walk over the member cities for a whole level.
RANKING = {
    ("Query", "search"): 100,
    ("Problem", "suggestedSolutions"): 1_000,
    ("Problem", "similarProblems"): 1_000,
    ("Solution", "similarSolutions"): 1_000,
    ("City", "peers"): 200,
}
# Any other list of texts: up to 50 short texts (tags, partners, stakeholders, ...).
TEXT_LIST = LIST_MAX * SHORT_TEXT_MAX // CHARACTERS_PER_POINT
# Lists of objects with a bound of their own, by (type, field); other lists count LIST_MAX.
LIST_BOUNDS = {
    ("Query", "webhooks"): MAX_WEBHOOKS_PER_CITY,
    ("WebhookDelivery", "attempts"): MAX_ATTEMPTS,
    ("Viewer", "follows"): MAX_FOLLOWS,
    ("City", "follows"): MAX_FOLLOWS,
}
PAGED_LISTS = frozenset({"edges", "nodes"})  # a connection's lists of items
_CAP = 10**15  # figures saturate here: a refused document needs no exact count


@dataclass(frozen=True, slots=True)
class Figures:
    """What one operation of a document asks for (capped figures are lower bounds)."""

    depth: int
    aliases: int
    fields: int
    directives: int
    cost: int
    same_name: int = 0  # the most fields one selection set has under one response name


@dataclass(slots=True)
class _Sum:
    """A selection set's summary. `paged` is the cost of what one item of the enclosing
    connection selects (its `edges`/`nodes`), which that connection multiplies."""

    depth: int = 0
    aliases: int = 0
    fields: int = 0
    directives: int = 0
    fixed: int = 0
    paged: int = 0
    # Response names this selection set selects, and how often (through its fragments too):
    # validation compares every pair of fields under one name, so their number is bounded.
    names: dict[str, int] = field(default_factory=dict[str, int])
    same_name: int = 0

    def add(self, other: _Sum) -> None:
        """Add a selection set merged into this one (a fragment's)."""
        self.depth = max(self.depth, other.depth)
        self.aliases = min(self.aliases + other.aliases, _CAP)
        self.fields = min(self.fields + other.fields, _CAP)
        self.directives = min(self.directives + other.directives, _CAP)
        self.fixed = min(self.fixed + other.fixed, _CAP)
        self.paged = min(self.paged + other.paged, _CAP)
        self.same_name = max(self.same_name, other.same_name)
        for name, count in other.names.items():
            self.names[name] = min(self.names.get(name, 0) + count, _CAP)

    def close(self) -> _Sum:
        """The summary once every selection is in."""
        if self.names:
            self.same_name = max(self.same_name, max(self.names.values()))
        return self


def operation_of(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    """The operation a request runs: the named one, or the only one."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)


def multiplier_variables(document: DocumentNode) -> frozenset[str]:
    """Variables a cost may depend on: those given to `first`, `last` or `ids` anywhere."""
    found: set[str] = set()
    for node in _fields(document):
        for argument in node.arguments or ():
            if argument.name.value in ("first", "last", "ids") and isinstance(
                argument.value, VariableNode
            ):
                found.add(argument.value.name.value)
    return frozenset(found)


def analyse(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any],
    *,
    max_depth: int,
) -> Figures:
    """The figures of `operation`; nesting deeper than `max_depth` + 1 is not walked."""
    walker = _Walker(schema, document, operation, variables, max_depth + 1)
    root = schema.get_root_type(_operation_type(operation))
    total = _Sum(directives=len(operation.directives or ()))
    if root is not None:
        total.add(walker.definition_summary(operation.selection_set, root))
    return Figures(
        depth=total.depth,
        aliases=total.aliases,
        fields=total.fields,
        directives=total.directives,
        cost=min(total.fixed + total.paged, _CAP),
        same_name=total.same_name,
    )


def _operation_type(operation: OperationDefinitionNode) -> OperationType:
    return operation.operation


def _fields(document: DocumentNode) -> Iterator[FieldNode]:
    """Every field node of the document, iteratively (no recursion, whatever its nesting)."""
    stack: list[SelectionSetNode] = [
        d.selection_set
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode | FragmentDefinitionNode)
    ]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FieldNode):
                yield selection
            if isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
                stack.append(selection.selection_set)


class _Walker:
    """Summaries of the operation and the fragments it reaches, each fragment once."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any],
        cut: int,
    ) -> None:
        self.schema = schema
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.defaults = {
            v.variable.name.value: v.default_value for v in operation.variable_definitions or ()
        }
        self.variables = variables
        self.cut = cut
        self.done: dict[str, _Sum] = {}
        self._summarise_fragments(operation.selection_set)

    def _summarise_fragments(self, start: SelectionSetNode) -> None:
        """Summarise the reachable fragments, each after those it spreads (an iterative
        depth-first walk of the spread graph; a cycle, which validation refuses, adds
        nothing)."""
        in_progress: set[str] = set()
        stack: list[tuple[str, bool]] = [(name, False) for name in _spreads(start)]
        while stack:
            name, expanded = stack.pop()
            fragment = self.fragments.get(name)
            if fragment is None or name in self.done:
                continue
            if expanded:
                in_progress.discard(name)
                condition = self.schema.get_type(fragment.type_condition.name.value)
                summary = _Sum(directives=len(fragment.directives or ()))
                if condition is not None:
                    summary.add(self.definition_summary(fragment.selection_set, condition))
                self.done[name] = summary
                continue
            if name in in_progress:
                continue  # a cycle
            in_progress.add(name)
            stack.append((name, True))
            stack.extend((child, False) for child in _spreads(fragment.selection_set))

    def definition_summary(self, selection_set: SelectionSetNode, parent: Any) -> _Sum:
        return self._selection_set(selection_set, parent, nesting=0)

    def _selection_set(self, selection_set: SelectionSetNode, parent: Any, nesting: int) -> _Sum:
        summary = _Sum()
        if nesting > self.cut:
            summary.depth = nesting  # too deep already: refused, no need to look further
            return summary
        for selection in selection_set.selections:
            summary.directives += len(selection.directives or ())
            if isinstance(selection, FragmentSpreadNode):
                summary.add(self.done.get(selection.name.value, _Sum()))
            elif isinstance(selection, InlineFragmentNode):
                condition = (
                    self.schema.get_type(selection.type_condition.name.value)
                    if selection.type_condition
                    else parent
                )
                if condition is not None:
                    summary.add(self._selection_set(selection.selection_set, condition, nesting))
            elif isinstance(selection, FieldNode):
                self._field(selection, parent, nesting, summary)
        return summary.close()

    def _field(self, node: FieldNode, parent: Any, nesting: int, summary: _Sum) -> None:
        name = node.name.value
        summary.fields += 1
        summary.aliases += node.alias is not None
        response_name = node.alias.value if node.alias else name
        summary.names[response_name] = summary.names.get(response_name, 0) + 1
        if name in _INTROSPECTION:
            # Counted for aliases, fields and directives, not for depth (introspection is
            # deep by nature) nor for cost (its answer is bounded by the schema).
            introspected = self.schema.get_type(_INTROSPECTION[name])
            if node.selection_set is not None and introspected is not None:
                inner = self._selection_set(node.selection_set, introspected, nesting + 1)
                summary.add(_nested(inner, depth=0, cost=False))
            return
        definition: GraphQLField | None = getattr(parent, "fields", {}).get(name)
        if definition is None:
            return  # validation reports it (or __typename)
        field_type = cast(object, definition.type)  # pyright: ignore[reportUnknownMemberType]
        returned = cast(GraphQLNamedType, get_named_type(cast(Any, field_type)))
        if is_leaf_type(returned) or node.selection_set is None:
            weight = LONG_TEXT.get((parent.name, name))
            if weight is None:
                weight = TEXT_LIST if _is_list(field_type) and returned.name == "String" else 0
            summary.fixed += weight
            return
        inner = self._selection_set(node.selection_set, returned, nesting + 1)
        introspecting = str(getattr(parent, "name", "")).startswith("__")
        summary.add(_nested(inner, depth=0 if introspecting else inner.depth + 1, cost=False))
        per_item = inner.paged
        if _is_connection(returned):
            per_item *= self._page_size(node, definition)
        # What one object of this field costs.
        inside = min(inner.fixed + per_item + RANKING.get((parent.name, name), 0), _CAP)
        if not _is_list(field_type):
            summary.fixed += inside
        elif _is_connection(parent) and name in PAGED_LISTS:
            summary.paged += 1 + inside  # an item; the enclosing connection multiplies it
        else:
            bound = LIST_BOUNDS.get((parent.name, name)) or self._list_bound(node, definition)
            summary.fixed += min((1 + inside) * bound, _CAP)

    def _argument(self, node: FieldNode, definition: GraphQLField, name: str) -> object:
        value: ValueNode | None = next(
            (a.value for a in node.arguments or () if a.name.value == name), None
        )
        if isinstance(value, VariableNode):
            variable = value.name.value
            if variable in self.variables:
                return self.variables[variable]
            value = self.defaults.get(variable)
        if isinstance(value, IntValueNode):
            return int(value.value)
        if isinstance(value, ListValueNode):
            return value.values
        if value is None and name in definition.args:
            return definition.args[name].default_value
        return None

    def _page_size(self, node: FieldNode, definition: GraphQLField) -> int:
        sizes = [integral(self._argument(node, definition, name)) for name in ("first", "last")]
        given = [s for s in sizes if s is not None]
        if not given:
            return DEFAULT_PAGE_SIZE
        return max(0, min(max(given), MAX_PAGE_SIZE))  # beyond it the field refuses

    def _list_bound(self, node: FieldNode, definition: GraphQLField) -> int:
        if "ids" in definition.args:
            ids = self._argument(node, definition, "ids")
            if isinstance(ids, Sized):
                return min(len(ids), MAX_PAGE_SIZE)
            return MAX_PAGE_SIZE
        if "first" in definition.args:
            return self._page_size(node, definition)
        return LIST_MAX


# Introspection's root fields and the types they answer with.
_INTROSPECTION = {"__schema": "__Schema", "__type": "__Type"}


def _nested(inner: _Sum, *, depth: int, cost: bool) -> _Sum:
    """What a field's own selection set adds to its parent's: not its names (another
    level), and its cost only where asked (fields add theirs, multiplied, themselves)."""
    return _Sum(
        depth=depth,
        aliases=inner.aliases,
        fields=inner.fields,
        directives=inner.directives,
        fixed=inner.fixed if cost else 0,
        paged=inner.paged if cost else 0,
        same_name=inner.same_name,
    )


def _spreads(selection_set: SelectionSetNode) -> list[str]:
    """Names of the fragments spread anywhere in a selection set (iteratively)."""
    names: list[str] = []
    stack = [selection_set]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                names.append(selection.name.value)
            elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
                stack.append(selection.selection_set)
    return names


def integral(value: object) -> int | None:
    """An Int argument's value as GraphQL coerces it (100.0 is 100), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _is_connection(named: object) -> bool:
    return str(getattr(named, "name", "")).endswith("Connection")


def _is_list(type_: object) -> bool:
    if isinstance(type_, GraphQLNonNull):
        return isinstance(cast(Any, type_).of_type, GraphQLList)
    return isinstance(type_, GraphQLList)
