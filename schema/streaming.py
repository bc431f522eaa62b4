"""The schema's streamed operations: where a socket's operation gets its own context, and an
`events` subscription joins its group of identical ones (schema/sharing.py).

strawberry 0.341 has no public hook that lets one execution stand in for another's: an
extension's `on_execute` can short-circuit a query or a mutation (by setting the result) but
not a subscription, `resolve` wraps one field of one execution, and `on_stream_result` only
sees results an execution already made. So `CityExchangeSchema` overrides `Schema.stream`,
strawberry's public entry point for streaming transports, and relies on these of its parts
(tests/test_streaming_contract.py fails when one changes; re-check this module then):

- the graphql-transport-ws handler (`BaseGraphQLTransportWSHandler.run_operation`) runs each
  operation of a socket through `schema.stream(...)` with the socket's one context as
  `context_value`, not through `subscribe` or the private `_stream`;
- `Schema.stream`'s parameters, by name (`run_alone` passes them so);
- `Schema._schema`, the graphql-core schema the document gate measures against;
- `StreamResult`, the type `stream` returns, from `strawberry.schema.schema`;
- the results `stream` yields pass by no extension's `on_operation` before they are sent (its
  code runs when the stream ends), so errors are coded here (`_coded`).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import aclosing
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.schema import StreamResult
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from cityexchange.schema import sharing
from cityexchange.schema.context import Context
from cityexchange.schema.errors import coded_errors
from cityexchange.schema.limits import DocumentGate
from cityexchange.schema.sharing import SharedSubscriptions


class CityExchangeSchema(strawberry.Schema):
    """The schema; errors are coded and logged by ErrorCodes, not by strawberry's logger,
    which would log every client mistake (and its query) as an error. Identical `events`
    subscriptions are executed once per event (schema/sharing.py)."""

    _shared: SharedSubscriptions | None = None
    gate: DocumentGate  # set by build_schema: the document limits and their caches

    @property
    def shared(self) -> SharedSubscriptions:
        """This schema's (this app's) groups of identical subscriptions."""
        if self._shared is None:
            self._shared = SharedSubscriptions()
        return self._shared

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> StreamResult:
        run_alone = super().stream
        if not isinstance(context_value, Context):
            return await run_alone(
                query,
                variable_values=variable_values,
                context_value=context_value,
                root_value=root_value,
                operation_name=operation_name,
                operation_extensions=operation_extensions,
                allowed_operation_types=allowed_operation_types,
            )
        # A socket's one context serves all its operations: each gets its own copy (its
        # loaders, its charge).
        context = context_value.for_operation()

        async def run(context: Context) -> StreamResult:
            source = await run_alone(
                query,
                variable_values=variable_values,
                context_value=context,
                root_value=root_value,
                operation_name=operation_name,
                operation_extensions=operation_extensions,
                allowed_operation_types=allowed_operation_types,
            )
            return _coded(source, context)

        shared = sharing.plan(
            query, operation_name, variable_values, context, parse=self.gate.parse
        )
        if (
            shared is None
            or query is None
            # A member joins its group's execution only if its own document passes the gate
            # and its charge: otherwise it runs alone, and is told why.
            or not self.gate.admit_member(
                self._schema, query, operation_name, variable_values or {}, context
            )
        ):
            return await run(context)
        return self.shared.stream(shared, context, run)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        pass


async def _coded(source: StreamResult, context: Context) -> StreamResult:
    """A stream's results with coded errors: strawberry's stream hands its results (and its
    pre-execution errors: a refused or invalid document) past the schema's extensions."""
    async with aclosing(source):
        async for result in source:
            errors: list[GraphQLError] | None = getattr(result, "errors", None)
            if errors and isinstance(result, ExecutionResult | PreExecutionError):
                result.errors = coded_errors(
                    errors,
                    request_id=context.request_id,
                    hide_suggestions=context.production,
                    on_unavailable=context.on_unavailable,
                )
            yield result
