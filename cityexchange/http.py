"""ASGI middleware at the edge: request ids and request log lines, the database time budget,
and the request-body cap (413)."""

from __future__ import annotations

import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityexchange import graphql_edge, logs
from cityexchange.services.store.database import deadline
from cityexchange.services.store.monitoring import ORIGIN

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


# A key of our own in the scope: scope["state"] may be the lifespan's state, shared by
# every request of the app.
REQUEST_ID_KEY = "cityexchange.request_id"


def request_id_of(scope: Scope) -> str:
    return str(scope.get(REQUEST_ID_KEY, "-"))


def assign_request_id(scope: Scope) -> str:
    """The request's id, kept in its scope: a sane incoming X-Request-ID, or a new one."""
    incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
    request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else secrets.token_hex(8)
    scope[REQUEST_ID_KEY] = request_id
    return request_id


class RequestIdMiddleware:
    """Gives each request an id (or keeps a sane incoming X-Request-ID) and echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = assign_request_id(scope)

        status = 500  # until the app answers

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        origin = ORIGIN.set("request")  # the database commands from here on are this request's
        fields = logs.REQUEST.set(
            {"request_id": request_id, "method": scope.get("method", "WS"), "path": scope["path"]}
        )
        started = time.perf_counter()
        try:
            # A socket's messages skip the wrapper: only HTTP responses carry the header.
            await self.app(scope, receive, send_with_id if scope["type"] == "http" else send)
        finally:
            if scope["type"] == "http":
                logs.request_done(status, time.perf_counter() - started)
            logs.REQUEST.reset(fields)
            ORIGIN.reset(origin)


class DeadlineMiddleware:
    """One time budget for all the database work of an HTTP request, so that a request
    answers (SERVICE_UNAVAILABLE when the database is down) within seconds, however many
    queries it makes. WebSockets live long and are not bounded."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with deadline(self.seconds):
            await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuses request bodies over `max_bytes` with 413, whether announced or streamed."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _too_large(scope, receive, send, self.max_bytes)
            return
        # Read the (bounded) body up front, then replay it: a body that grows past the cap
        # while streaming is refused before the application sees any of it.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _too_large(scope, receive, send, self.max_bytes)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _too_large(scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
    """413 as a GraphQL request error, with the request id in the body."""
    response = graphql_edge.request_error(
        413,
        "REQUEST_TOO_LARGE",
        f"request body larger than {max_bytes} bytes",
        request_id=request_id_of(scope),
        extra={"limit": max_bytes},
    )
    await response(scope, receive, send)
