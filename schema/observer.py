"""Reports each operation's name, type, outcome and duration to the context's observer."""

from __future__ import annotations

import time
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from schema.context import Context


class OperationObserver(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context.context
        if not isinstance(context, Context):
            return
        ec = self.execution_context
        try:
            kind = ec.operation_type.value
        except RuntimeError:
            kind = "unknown"  # the document did not parse
        result = ec.result
        errors: list[GraphQLError] | None = getattr(result, "errors", None)
        if not errors:
            outcome = "ok"
        else:
            codes = {str((e.extensions or {}).get("code", "INTERNAL_SERVER_ERROR")) for e in errors}
            outcome = sorted(codes)[0] if len(codes) == 1 else "MIXED"
        name = ec.operation_name or "anonymous"
        context.observe(name[:64], kind, outcome, time.perf_counter() - started)
