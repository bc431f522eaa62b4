"""The parts of strawberry that schema/streaming.py and the socket handler of
cityexchange/sockets.py rely on: when one of these fails after an upgrade, re-check
the module it names before changing the test."""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Iterator

import strawberry
from graphql import GraphQLSchema
from strawberry.extensions import SchemaExtension
from strawberry.schema import schema as strawberry_schema
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)

from cityexchange.schema.root import build_schema

RECHECK = "strawberry changed: re-check schema/streaming.py (its docstring lists what it uses)"
RECHECK_SOCKET = "strawberry changed: re-check TransportWSHandler in cityexchange/sockets.py"


def test_stream_takes_the_parameters_the_override_passes_by_name() -> None:
    parameters = list(inspect.signature(strawberry.Schema.stream).parameters)
    assert parameters == [
        "self",
        "query",
        "variable_values",
        "context_value",
        "root_value",
        "operation_name",
        "operation_extensions",
        "allowed_operation_types",
    ], RECHECK
    assert hasattr(strawberry_schema, "StreamResult"), RECHECK


def test_the_socket_handler_runs_every_operation_through_stream_with_its_context() -> None:
    source = inspect.getsource(BaseGraphQLTransportWSHandler.run_operation)
    assert "self.schema.stream(" in source, RECHECK
    assert "context_value=self.context" in source, RECHECK


def test_connection_init_reaches_on_ws_connect_once_with_the_sockets_context() -> None:
    source = inspect.getsource(BaseGraphQLTransportWSHandler.handle_connection_init)
    assert "self.connection_init_received = True" in source, RECHECK_SOCKET
    assert "self.view.on_ws_connect(self.context)" in source, RECHECK_SOCKET


def test_subscribe_starts_the_operations_task_within_the_call() -> None:
    # The task copies the context variables of handle_subscribe's caller: sockets.py sets the
    # member's direct sender (schema/sharing.py DELIVERY) just before. Were the task started
    # later, every member would fall back to strawberry's slower send path without a failure.
    source = inspect.getsource(BaseGraphQLTransportWSHandler.handle_subscribe)
    assert "asyncio.create_task(self.run_operation(operation))" in source, RECHECK_SOCKET


def test_shutdown_accepts_a_dropped_connection_init_timer() -> None:
    # sockets.py sets connection_init_timeout_task to None once the init is handled.
    source = inspect.getsource(BaseGraphQLTransportWSHandler.shutdown)
    assert "if self.connection_init_timeout_task" in source, RECHECK_SOCKET


def test_the_schema_exposes_its_graphql_core_schema() -> None:
    assert isinstance(build_schema(production=False)._schema, GraphQLSchema), RECHECK  # pyright: ignore[reportPrivateUsage]


async def test_stream_yields_results_before_the_extensions_see_the_operation_end() -> None:
    """Why streaming.py codes the errors of streamed results itself (ErrorCodes codes them
    when the operation ends: for a stream, after they were sent)."""
    seen: list[str] = []

    class Ends(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            yield
            seen.append("operation ended")

    @strawberry.type
    class Query:
        ping: str = "pong"

    @strawberry.type
    class Subscription:
        @strawberry.subscription
        async def ticks(self) -> AsyncGenerator[int]:
            yield 1

    schema = strawberry.Schema(query=Query, subscription=Subscription, extensions=[Ends])
    source = await schema.stream("subscription { ticks nope }")
    first = await anext(source)
    assert first.errors, first  # type: ignore[union-attr]
    assert seen == [], RECHECK
    await source.aclose()
