"""The GraphQL endpoint's answers to requests it cannot run: JSON bodies in the GraphQL
response format (`errors` only, no `data`), each with a code and the request id.

Codes (docs/security.md): BAD_REQUEST (the body is not a GraphQL request: not UTF-8 JSON,
a batch, a malformed field), METHOD_NOT_ALLOWED (a mutation or subscription over GET),
UNSUPPORTED_MEDIA_TYPE (a POST that is not `application/json`), NOT_FOUND,
RESPONSE_TOO_LARGE (an encoded response over MAX_RESPONSE_BYTES: nothing partial is sent)
and RATE_LIMITED (429, for requests without a valid token over their address's budget).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import cast

from cross_web import HTTPException
from starlette.responses import Response
from strawberry.schema.exceptions import InvalidOperationTypeError

from services.rate_limits import Charge

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
ACCEPTED_MEDIA_TYPES = frozenset({"application/json"})

_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def request_error(
    status: int,
    code: str,
    message: str,
    *,
    request_id: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, object] | None = None,
) -> Response:
    """A request error: `{"errors": [...]}` with the code and request id, no `data`."""
    extensions = {"code": code, "requestId": request_id, **(extra or {})}
    body = {"errors": [{"message": message, "extensions": extensions}]}
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


def refused(error: HTTPException, *, request_id: str) -> Response:
    """strawberry's refusal of a request, as a JSON request error. A mutation over GET is
    405 with `Allow: POST` (GraphQL over HTTP: mutations are POST only)."""
    if isinstance(error.__cause__, InvalidOperationTypeError):
        return request_error(
            405,
            "METHOD_NOT_ALLOWED",
            "only queries may be sent with GET; send mutations with POST",
            request_id=request_id,
            headers={"Allow": "POST"},
        )
    return request_error(
        error.status_code,
        _CODES.get(error.status_code, "BAD_REQUEST"),
        error.reason,
        request_id=request_id,
    )


def too_large(size: int, *, request_id: str) -> Response:
    """Instead of a response over MAX_RESPONSE_BYTES: ask for less (smaller pages, fewer
    fields) rather than receive part of it."""
    return request_error(
        200,
        "RESPONSE_TOO_LARGE",
        f"the response would be over {size} bytes, over the limit of {MAX_RESPONSE_BYTES}: "
        "ask for smaller pages or fewer fields",
        request_id=request_id,
        extra={"limit": MAX_RESPONSE_BYTES},
    )


def too_large_message(message: Mapping[str, object], size: int) -> dict[str, object]:
    """Instead of a graphql-transport-ws message over MAX_RESPONSE_BYTES: a `next` with the
    RESPONSE_TOO_LARGE error and no data, for the same operation."""
    error = {
        "message": f"the result would be {size} bytes, over the limit of {MAX_RESPONSE_BYTES}",
        "extensions": {"code": "RESPONSE_TOO_LARGE", "limit": MAX_RESPONSE_BYTES},
    }
    return {"id": message.get("id"), "type": "next", "payload": {"data": None, "errors": [error]}}


def rate_headers(charge: Charge) -> dict[str, str]:
    """GitHub's rate-limit headers, for the budget a request was charged to."""
    return {
        "x-ratelimit-limit": str(charge.limit),
        "x-ratelimit-remaining": str(charge.remaining),
        "x-ratelimit-used": str(charge.used),
        "x-ratelimit-reset": str(charge.reset_at),
        "x-ratelimit-resource": charge.resource.value,
    }


def throttled(charge: Charge, *, request_id: str) -> Response:
    """429 for a request without a valid token from an address over its budget."""
    retry_after = charge.retry_after(time.time())
    return request_error(
        429,
        "RATE_LIMITED",
        f"too many requests without a valid token from this address; retry in {retry_after} s",
        request_id=request_id,
        headers={"Retry-After": str(retry_after), **rate_headers(charge)},
        extra={"retryAfter": retry_after},
    )


class ResponseTooLarge(Exception):
    """An answer over MAX_RESPONSE_BYTES, refused before or after encoding."""

    def __init__(self, size: int) -> None:
        self.size = size


def check_size(data: object) -> None:
    """Refuse, before encoding it, an answer whose text alone is over the cap: a walk over
    its values (iterative, linear in its size), so that no oversized body is ever built."""
    size, stack = 0, [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            size += len(value) + 2
        elif isinstance(value, dict):
            items = cast(dict[str, object], value)
            size += 2 + sum(len(key) + 4 for key in items)
            stack.extend(items.values())
        elif isinstance(value, list):
            size += 2 + len(value)  # pyright: ignore[reportUnknownArgumentType]
            stack.extend(value)  # pyright: ignore[reportUnknownArgumentType]
        else:
            size += 5
        if size > MAX_RESPONSE_BYTES:
            raise ResponseTooLarge(size)
