"""The document gate: every document is parsed once per distinct text, measured
(schema/analysis.py) and refused with QUERY_TOO_COMPLEX before it is validated or executed
when it asks for too much; documents that pass are validated once per distinct text; every
result of a query or mutation carries its cost.

The caches live in one `DocumentGate` made with the schema, shared by every request; the
extension strawberry makes per request only holds a reference to it.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from graphql import (
    ASTValidationRule,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    parse,
)
from graphql.language import DocumentNode
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types.graphql import OperationType

from cityexchange.schema.analysis import (
    CHARACTERS_PER_POINT,
    Figures,
    analyse,
    integral,
    multiplier_variables,
)
from cityexchange.schema.analysis import operation_of as find_operation
from cityexchange.schema.context import Context
from cityexchange.schema.rate_limits import charge_points, charge_writes, settle_refused
from cityexchange.services.errors import InvalidInput

MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2_000
MAX_FIELDS = 2_000  # fields selected once fragments are expanded
MAX_DIRECTIVES = 50
# Fields one selection set may have under one response name: validation compares each pair
# of them (graphql-core's OverlappingFieldsCanBeMergedRule), so this bounds its work.
MAX_SAME_NAME = 10
MAX_COST = 10_000
CACHE_SIZE = 512  # distinct documents kept (their figures and validation errors)
# Parsed documents kept, by their text's length: a document's tree takes about 150 times its
# text (1.2 MB for one of 2,000 tokens), so this holds about 80 MB at the most.
CACHED_TEXT = 512 * 1024
_SURROGATE = re.compile("[\ud800-\udfff]")
COST_VARIANTS = 8  # per document: costs kept for distinct page-size variables


class TooComplex(Exception):
    """A document over one of the gate's limits."""

    def __init__(self, figure: str, value: int, limit: int) -> None:
        self.figure, self.value, self.limit = figure, value, limit
        super().__init__(f"the document's {figure} is {value}, over the limit of {limit}")


@dataclass(slots=True)
class _Entry:
    variables: frozenset[str]
    figures: dict[tuple[object, ...], Figures]
    validation: list[GraphQLError] | None = None


class _Lru(OrderedDict[tuple[str, str | None], _Entry]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def find(self, key: tuple[str, str | None]) -> _Entry | None:
        entry = self.get(key)
        if entry is not None:
            self.move_to_end(key)
        return entry

    def keep(self, key: tuple[str, str | None], entry: _Entry) -> None:
        self[key] = entry
        if len(self) > self.size:
            self.popitem(last=False)


class DocumentGate:
    """Figures and validation results of recent documents, shared by all requests."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._documents: OrderedDict[str, DocumentNode] = OrderedDict()
        self._text = 0  # characters of the documents kept
        self._entries = _Lru(size)
        self.analyses = 0  # documents measured (a miss of the figures cache)
        self.validations = 0  # documents validated (a miss of the validation cache)

    def parse(self, query: str) -> DocumentNode | None:
        """The document of a query text within MAX_TOKENS, parsed once per distinct valid
        text (see `remember`); None when it does not parse (strawberry parses it again to
        report why)."""
        document = self._documents.get(query)
        if document is not None:
            self._documents.move_to_end(query)
            return document
        try:
            return parse(query, max_tokens=MAX_TOKENS)
        except GraphQLSyntaxError:
            return None

    def remember(self, query: str, document: DocumentNode) -> None:
        """Keep the document of a text that validated: only those, so that a stream of
        distinct invalid documents holds no memory."""
        if query in self._documents or len(query) > CACHED_TEXT // 8:
            return
        self._documents[query] = document
        self._text += len(query)
        while len(self._documents) > self.size or self._text > CACHED_TEXT:
            dropped, _ = self._documents.popitem(last=False)
            self._text -= len(dropped)

    def extension(self) -> Callable[[], SchemaExtension]:
        """The per-request extension factory for strawberry."""
        return lambda: GateExtension(self)

    def figures(
        self,
        schema: GraphQLSchema,
        query: str,
        document: DocumentNode,
        operation_name: str | None,
        variables: Mapping[str, Any],
    ) -> Figures:
        """The figures of the operation a request runs; when it names none that the document
        has, the largest of every operation's (validation will look at them all)."""
        operation = find_operation(document, operation_name)
        if operation is None:
            everyone = [
                analyse(schema, document, d, variables, max_depth=MAX_DEPTH)
                for d in document.definitions
                if isinstance(d, OperationDefinitionNode)
            ]
            return largest(everyone)  # not cached: such a document does not run
        key = (_digest(query), operation_name)
        entry = self._entries.find(key)
        if entry is None:
            entry = _Entry(multiplier_variables(document), {})
            self._entries.keep(key, entry)
        shape = tuple(_shape(variables.get(name)) for name in sorted(entry.variables))
        found = entry.figures.get(shape)
        if found is None:
            self.analyses += 1
            found = analyse(schema, document, operation, variables, max_depth=MAX_DEPTH)
            if len(entry.figures) >= COST_VARIANTS:
                entry.figures.clear()
            entry.figures[shape] = found
        return found

    def admit_member(
        self,
        schema: GraphQLSchema,
        query: str,
        operation_name: str | None,
        variables: Mapping[str, Any],
        context: Context,
    ) -> bool:
        """Measure and charge a subscription about to join a shared execution (which its
        members do not run themselves); False when it would be refused."""
        context.rate = None  # a socket's context serves many operations: not theirs
        document = self.parse(query)
        if document is None or lone_surrogate(query, variables):
            return False
        figures = self.figures(schema, query, document, operation_name, variables)
        operation = find_operation(document, operation_name)
        if operation is None or check(figures) is not None:
            return False
        return charge_points(context, figures.cost) is None

    def validate(
        self,
        schema: GraphQLSchema,
        query: str,
        operation_name: str | None,
        document: DocumentNode,
        rules: tuple[type[ASTValidationRule], ...],
    ) -> list[GraphQLError]:
        """Validation errors of a document, computed once per distinct text: the rules are
        the schema's (the same for every request of one schema, so they need no key)."""
        entry = self._entries.find((_digest(query), operation_name))
        if entry is not None and entry.validation is not None:
            return entry.validation
        self.validations += 1
        errors = validate_document(schema, document, rules)
        if entry is not None and not errors:
            entry.validation = errors  # errors are not kept: they hold the document's tree
        return errors


def largest(figures: list[Figures]) -> Figures:
    """Each figure's largest value among several operations' (zeros for none)."""
    return Figures(
        depth=max((f.depth for f in figures), default=0),
        aliases=max((f.aliases for f in figures), default=0),
        fields=max((f.fields for f in figures), default=0),
        directives=max((f.directives for f in figures), default=0),
        cost=max((f.cost for f in figures), default=0),
        same_name=max((f.same_name for f in figures), default=0),
    )


def check(figures: Figures) -> TooComplex | None:
    """The first limit a document is over, if any."""
    for figure, value, limit in (
        ("depth", figures.depth, MAX_DEPTH),
        ("alias count", figures.aliases, MAX_ALIASES),
        ("field count after expanding fragments", figures.fields, MAX_FIELDS),
        ("directive count", figures.directives, MAX_DIRECTIVES),
        ("count of fields under one response name", figures.same_name, MAX_SAME_NAME),
        ("cost", figures.cost, MAX_COST),
    ):
        if value > limit:
            return TooComplex(figure, value, limit)
    return None


def _digest(query: str) -> str:
    """The key a document's figures are kept under: its text's digest, not the text (which
    comments can make as long as a request body)."""
    return hashlib.sha256(query.encode("utf-8", "surrogatepass")).hexdigest()


def lone_surrogate(query: str, variables: Mapping[str, Any]) -> bool:
    """Whether the text or a variable holds a lone UTF-16 surrogate (JSON can carry one,
    UTF-8 and so the database cannot): iterative, linear in the variables' size."""
    if _SURROGATE.search(query):
        return True
    stack: list[object] = [variables]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return True
        elif isinstance(value, dict):
            items = cast(dict[str, object], value)
            stack.extend(items.keys())
            stack.extend(items.values())
        elif isinstance(value, list):
            stack.extend(cast(list[object], value))
    return False


def _shape(value: object) -> object:
    """What of a variable's value a cost depends on: an int, or a list's length."""
    if isinstance(value, list):
        return ("list", len(value))  # pyright: ignore[reportUnknownArgumentType]
    return integral(value)


def actual_cost(data: object) -> int:
    """The cost of what a response holds, by the same model: one point per object in a list,
    one per 2,500 characters of text (iterative: responses can be deep)."""
    points, stack = 0, [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
        elif isinstance(value, list):
            items = cast(list[object], value)
            points += sum(isinstance(item, dict) for item in items)
            stack.extend(items)
        elif isinstance(value, str):
            points += len(value) // CHARACTERS_PER_POINT
    return points


class GateExtension(SchemaExtension):
    """Measures the document before validation, refuses it over a limit, validates it once
    per distinct text, and reports `extensions.cost`."""

    def __init__(self, gate: DocumentGate) -> None:
        self.gate = gate
        self.requested: int | None = None

    def on_parse(self) -> Iterator[None]:
        ec = self.execution_context
        # The parser's token limit, also when strawberry parses a refused document again.
        ec.parse_options["max_tokens"] = MAX_TOKENS
        if ec.query is not None and ec.graphql_document is None:
            ec.graphql_document = self.gate.parse(ec.query)
        yield

    def on_validate(self) -> Iterator[None]:
        ec = self.execution_context
        document, query = ec.graphql_document, ec.query
        if document is not None and query is not None:
            ec.pre_execution_errors = self._admit(query, document)
        yield

    def _admit(self, query: str, document: DocumentNode) -> list[GraphQLError]:
        """Measure, charge and validate a document: the errors that stop it, or none."""
        ec = self.execution_context
        if isinstance(ec.context, Context):
            ec.context.rate = None  # a socket's context serves many operations: not theirs
        schema = ec.schema._schema  # pyright: ignore[reportPrivateUsage]
        variables = ec.variables if isinstance(ec.variables, dict) else {}
        context = ec.context if isinstance(ec.context, Context) else None
        figures = self.gate.figures(schema, query, document, ec.operation_name, variables)
        refused = check(figures)
        if refused is not None:
            if context is not None:
                settle_refused(context)
            extra = {"cost": figures.cost} if refused.figure == "cost" else {}
            limit = {"limit": refused.limit, **extra}
            return [GraphQLError(str(refused), original_error=refused, extensions=limit)]
        operation = find_operation(document, ec.operation_name)
        if operation is None or context is None:
            # No operation to run (validation or execution says why), or no caller to charge.
            return self.gate.validate(
                schema, query, ec.operation_name, document, tuple(ec.validation_rules)
            )
        if lone_surrogate(query, variables):
            settle_refused(context)
            invalid = InvalidInput("variables", "must not contain lone UTF-16 surrogates")
            return [GraphQLError(str(invalid), original_error=invalid)]
        # Charged before validation, so that a spent budget buys no validation work.
        limited = charge_points(context, figures.cost)
        if limited is not None:
            return [limited]
        errors = self.gate.validate(
            schema, query, ec.operation_name, document, tuple(ec.validation_rules)
        )
        if errors:
            settle_refused(context)
            return errors
        limited = charge_writes(context, document, operation)
        if limited is not None:
            return [limited]
        self.gate.remember(query, document)
        self.requested = figures.cost
        return []

    def get_results(self) -> dict[str, Any]:
        # Not on a subscription's events: their payloads stay data only, so that a shared
        # subscription encodes each event once for all its members (schema/sharing.py).
        if self.requested is None or self._subscription():
            return {}
        result = self.execution_context.result
        data = getattr(result, "data", None)
        return {"cost": {"requested": self.requested, "actual": actual_cost(data)}}

    def _subscription(self) -> bool:
        try:
            return self.execution_context.operation_type is OperationType.SUBSCRIPTION
        except RuntimeError:  # no operation to tell
            return False
