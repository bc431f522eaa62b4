"""Reports each operation's name, type, outcome and duration to the context's observer."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from cityexchange.schema.context import Context

MAX_OPERATION_NAMES = 200
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,63}$")
_seen: set[str] = set()  # process-wide on purpose: it bounds the metric's label set


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
        context.observe(
            self._label(ec.operation_name, context), kind, outcome, time.perf_counter() - started
        )

    @staticmethod
    def _label(name: str | None, context: Context) -> str:
        """Operation names are client input: only authenticated callers' names become
        labels, and only the first MAX_OPERATION_NAMES of them, so /metrics stays bounded."""
        if not name:
            return "anonymous"
        if context.principal is None:
            return "unauthenticated"
        if name in _seen or (len(_seen) < MAX_OPERATION_NAMES and _NAME.match(name)):
            _seen.add(name)
            return name
        return "other"
