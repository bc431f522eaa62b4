"""OpenTelemetry tracing, switched on by the standard OTEL_* environment variables.

Tracing is on when an OTLP endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), unless `OTEL_SDK_DISABLED=true` or
`OTEL_TRACES_EXPORTER=none`. Then each HTTP request and WebSocket gets a server span (ASGI),
each database command a client span (PyMongo), and each GraphQL operation its spans
(strawberry), exported over OTLP/HTTP with the exporter's own OTEL_EXPORTER_OTLP_* settings;
`OTEL_SERVICE_NAME` defaults to `cityexchange`. Off, nothing of OpenTelemetry is imported and
nothing is wrapped: no cost.

The packages come with the `otel` extra (`pip install 'cityexchange[otel]'`, in the image).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp

from cityexchange.settings import SettingsError

DEFAULT_SERVICE_NAME = "cityexchange"


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    )


@dataclass(frozen=True, slots=True)
class Tracing:
    """What the app needs of tracing once it is on."""

    wrap: Callable[[ASGIApp], ASGIApp]  # the ASGI server spans
    schema_extension: Callable[[], Any]  # a strawberry extension factory: GraphQL spans
    shutdown: Callable[[], None]  # flush what is buffered, on the way out


def start(environ: Mapping[str, str] | None = None) -> Tracing:
    """Set up the tracer provider, the exporter and the PyMongo instrumentation."""
    env = os.environ if environ is None else environ
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.asgi import (  # pyright: ignore[reportMissingTypeStubs]
            OpenTelemetryMiddleware,
        )
        from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from strawberry.extensions.tracing import OpenTelemetryExtension
    except ImportError as exc:
        raise SettingsError(
            f"OTEL_* variables switch tracing on, but {exc.name} is not installed: "
            "install the `otel` extra (pip install 'cityexchange[otel]')"
        ) from None

    attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": DEFAULT_SERVICE_NAME}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    PymongoInstrumentor().instrument(tracer_provider=provider)

    def wrap(app: ASGIApp) -> ASGIApp:
        # One span per request or socket, not one more per message sent or received (a live
        # event to 1,000 subscribers would make 1,000 spans). Headers are not recorded; the
        # URL is, query string included (GraphQL clients POST, so it carries no query).
        return OpenTelemetryMiddleware(
            app, tracer_provider=provider, exclude_spans=["receive", "send"]
        )

    def schema_extension() -> Any:
        # No arguments on spans: they are client input, and may be personal.
        return OpenTelemetryExtension(tracer_provider=provider, arg_filter=_no_arguments)

    def shutdown() -> None:
        PymongoInstrumentor().uninstrument()
        provider.shutdown()

    return Tracing(wrap=wrap, schema_extension=schema_extension, shutdown=shutdown)


def _no_arguments(arguments: dict[str, Any], info: Any) -> dict[str, Any]:
    return {}


def start_if_enabled() -> Tracing | None:
    """Tracing as the environment says: started, or None (nothing imported)."""
    return start() if enabled() else None
