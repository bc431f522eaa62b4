"""The GraphQL endpoint's HTTP rules (GraphQL over HTTP,
https://graphql.github.io/graphql-over-http/draft/): the response media type negotiated by
`Accept`, the status codes of each, persisted-document requests, and the answers to requests
it cannot run: JSON bodies in the GraphQL response format (`errors` only, no `data`), each
with a code and the request id.

Codes (docs/security.md): BAD_REQUEST (the body is not a GraphQL request: not UTF-8 JSON,
a batch, a malformed field), METHOD_NOT_ALLOWED (a mutation or subscription over GET),
UNSUPPORTED_MEDIA_TYPE (a POST that is not `application/json`), NOT_ACCEPTABLE (an `Accept`
that allows neither response media type), NOT_FOUND, RESPONSE_TOO_LARGE (an encoded response
over MAX_RESPONSE_BYTES: nothing partial is sent), RATE_LIMITED (429, for requests without a
valid token over their address's budget), and for persisted documents
PERSISTED_QUERY_NOT_FOUND, PERSISTED_QUERY_NOT_SUPPORTED, PERSISTED_QUERY_HASH_MISMATCH and
TRUSTED_DOCUMENT_REQUIRED.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from cross_web import HTTPException
from starlette.responses import Response
from strawberry.http import GraphQLRequestData
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from cityexchange.services.persisted_documents import (
    DocumentError,
    HashMismatch,
    UnknownDocument,
    UntrustedDocument,
)
from cityexchange.services.rate_limits import Charge

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
SUBSCRIPTION = OperationType.SUBSCRIPTION
ACCEPTED_MEDIA_TYPES = frozenset({"application/json"})
# The response media types (GraphQL over HTTP, "Media Types"): the spec's own, whose status
# codes tell request errors apart, and application/json for legacy clients.
GRAPHQL_RESPONSE = "application/graphql-response+json"
LEGACY_JSON = "application/json"

_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def negotiate(accept: str | None) -> str | None:
    """The response media type for an `Accept` header (RFC 9110 §12.5.1: each type gets the
    q of the most specific range that matches it; the highest q wins, then the more specific
    range, then the one listed first), None when neither is acceptable. Without `Accept`, or
    for a wildcard alone, application/json: "the server SHOULD treat the request as if it had
    `Accept: application/json`" (GraphQL over HTTP, legacy watershed)."""
    if accept is None or not accept.strip():
        return LEGACY_JSON
    ranges = _media_ranges(accept)
    best: tuple[float, int, int, int] | None = None
    chosen: str | None = None
    # The legacy type has the lower preference index: on a full tie (`*/*`) it wins.
    for preference, media in enumerate((LEGACY_JSON, GRAPHQL_RESPONSE)):
        matching = [
            (specificity, -position, q)
            for position, (pattern, q) in enumerate(ranges)
            if (specificity := _specificity(pattern, media)) is not None
        ]
        if not matching:
            continue
        specificity, position, q = max(matching)
        rank = (q, specificity, position, -preference)
        if q > 0 and (best is None or rank > best):
            best, chosen = rank, media
    return chosen


def _specificity(pattern: str, media: str) -> int | None:
    """How specifically a media range matches a media type; None when it does not."""
    if pattern == media:
        return 2
    if pattern == media.partition("/")[0] + "/*":
        return 1
    return 0 if pattern == "*/*" else None


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    """(media range, q) of each element of an Accept header; malformed ones are skipped."""
    found: list[tuple[str, float]] = []
    for element in accept.split(","):
        pattern, *parameters = (part.strip() for part in element.split(";"))
        q = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = -1.0
        if "/" in pattern and q >= 0:
            found.append((pattern.lower(), q))
    return found


def content_type(media: str) -> str:
    """The Content-Type of a response: "the server MUST ... use the utf-8 encoding"."""
    return f"{media}; charset=utf-8"


def status_of(media: str, *, has_data: bool) -> int:
    """The status of a GraphQL response when nothing (a limit, an outage) set one: with
    application/json, 200 for every well-formed request; with graphql-response+json, 200
    when the response holds `data` (execution started), else 400 (a request error: it did
    not parse or validate, or its variables did not coerce)."""
    if media == GRAPHQL_RESPONSE and not has_data:
        return 400
    return 200


def request_error(
    status: int,
    code: str,
    message: str,
    *,
    request_id: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, object] | None = None,
    media: str = LEGACY_JSON,
) -> Response:
    """A request error: `{"errors": [...]}` with the code and request id, no `data`."""
    extensions = {"code": code, "requestId": request_id, **(extra or {})}
    body = {"errors": [{"message": message, "extensions": extensions}]}
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type=content_type(media),
        headers=dict(headers or {}),
    )


# How a persisted document's refusal is answered: code, message (None: the error's own), and
# the status with graphql-response+json and with application/json. Apollo clients know a
# hash they must send again with its text by the code and the message "PersistedQueryNotFound".
_DOCUMENT_ERRORS: dict[type[DocumentError], tuple[str, str | None, int, int]] = {
    UnknownDocument: ("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound", 404, 200),
    HashMismatch: ("PERSISTED_QUERY_HASH_MISMATCH", None, 400, 400),
    UntrustedDocument: ("TRUSTED_DOCUMENT_REQUIRED", None, 403, 403),
}


def document_error(error: DocumentError) -> tuple[str, str]:
    """The code and message a persisted document's refusal is answered with."""
    code, message, _, _ = _DOCUMENT_ERRORS.get(type(error), ("BAD_REQUEST", None, 400, 400))
    return code, message or str(error)


def document_refused(error: DocumentError, *, request_id: str, media: str) -> Response:
    """A persisted-document request that cannot run. Never stored by a cache: a document
    not found now may be registered by the next request."""
    code, message, status, legacy = _DOCUMENT_ERRORS.get(
        type(error), ("BAD_REQUEST", None, 400, 400)
    )
    return request_error(
        status if media == GRAPHQL_RESPONSE else legacy,
        code,
        message or str(error),
        request_id=request_id,
        headers={"Cache-Control": "no-store"},
        media=media,
    )


def refused(error: HTTPException, *, request_id: str, media: str = LEGACY_JSON) -> Response:
    """strawberry's refusal of a request, as a JSON request error. A mutation over GET is
    405 with `Allow: POST` (GraphQL over HTTP: mutations are POST only); a subscription over
    HTTP is a BAD_REQUEST (it runs over the WebSocket)."""
    cause = error.__cause__
    if isinstance(cause, InvalidOperationTypeError) and cause.operation_type is SUBSCRIPTION:
        return request_error(
            400,
            "BAD_REQUEST",
            "subscriptions run over the WebSocket (graphql-transport-ws) at this URL",
            request_id=request_id,
            media=media,
        )
    if isinstance(cause, InvalidOperationTypeError):
        return request_error(
            405,
            "METHOD_NOT_ALLOWED",
            "only queries may be sent with GET; send mutations with POST",
            request_id=request_id,
            headers={"Allow": "POST"},
            media=media,
        )
    if isinstance(error, PersistedRequestError):
        return request_error(400, error.code, error.reason, request_id=request_id, media=media)
    if error.status_code == 405:  # a method other than GET and POST (RFC 9110 §15.5.6)
        return request_error(
            405,
            "METHOD_NOT_ALLOWED",
            "send GraphQL requests with GET or POST",
            request_id=request_id,
            headers={"Allow": "GET, POST"},
            media=media,
        )
    return request_error(
        error.status_code,
        _CODES.get(error.status_code, "BAD_REQUEST"),
        error.reason,
        request_id=request_id,
        media=media,
    )


def too_large(size: int, *, request_id: str, media: str = LEGACY_JSON) -> Response:
    """Instead of a response over MAX_RESPONSE_BYTES: ask for less (smaller pages, fewer
    fields) rather than receive part of it. No `data`: with graphql-response+json, 400."""
    return request_error(
        status_of(media, has_data=False),
        "RESPONSE_TOO_LARGE",
        f"the response would be over {size} bytes, over the limit of {MAX_RESPONSE_BYTES}: "
        "ask for smaller pages or fewer fields",
        request_id=request_id,
        extra={"limit": MAX_RESPONSE_BYTES},
        media=media,
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


def throttled(charge: Charge, *, request_id: str, media: str = LEGACY_JSON) -> Response:
    """429 for a request without a valid token from an address over its budget."""
    retry_after = charge.retry_after(time.time())
    return request_error(
        429,
        "RATE_LIMITED",
        f"too many requests without a valid token from this address; retry in {retry_after} s",
        request_id=request_id,
        headers={"Retry-After": str(retry_after), **rate_headers(charge)},
        extra={"retryAfter": retry_after},
        media=media,
    )


@dataclass
class RequestData(GraphQLRequestData):
    """strawberry's request data, and the persisted document it names, if any."""

    document_id: str | None = None


def request_data(data: object) -> RequestData:
    """The parameters of a GraphQL-over-HTTP request (a POST's body, GET's query parameters):
    one operation, not a batch, each parameter of its type or null."""
    if not isinstance(data, dict):
        raise HTTPException(400, "send one operation per request: batches are not supported")
    fields = cast(dict[str, object], data)
    query, variables = fields.get("query"), fields.get("variables")
    name, extensions = fields.get("operationName"), fields.get("extensions")
    for field, value, kind in (
        ("query", query, str),
        ("operationName", name, str),
        ("variables", variables, dict),
        ("extensions", extensions, dict),
    ):
        if value is not None and not isinstance(value, kind):
            shape = "a string" if kind is str else "an object"
            raise HTTPException(400, f"the request's `{field}` must be {shape} or null")
    extensions = cast(dict[str, object] | None, extensions)
    return RequestData(
        query=cast(str | None, query),
        variables=cast(dict[str, object] | None, variables),
        operation_name=cast(str | None, name),
        extensions=extensions,
        document_id=persisted_id(extensions, fields.get("documentId")),
    )


class PersistedRequestError(HTTPException):
    """A malformed persisted-document request: 400, with a code of its own."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(400, reason)
        self.code = code


def persisted_id(extensions: Mapping[str, object] | None, document_id: object) -> str | None:
    """The id of the persisted document a request names, if any: Apollo's
    `extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}`, or `documentId`
    ("sha256:<hex>", or any other registered id)."""
    if document_id is not None:
        if not isinstance(document_id, str) or not document_id.strip():
            raise PersistedRequestError("BAD_REQUEST", "documentId must be a non-empty string")
        prefix, colon, rest = document_id.partition(":")
        return _checked_id(rest if colon and prefix == "sha256" else document_id, "documentId")
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, dict):
        raise PersistedRequestError("BAD_REQUEST", "extensions.persistedQuery must be an object")
    fields = cast(dict[str, object], persisted)
    version = fields.get("version")
    if type(version) is not int or version != 1:  # not True, not 1.0
        # Apollo clients stop sending hashes to a server that answers this.
        raise PersistedRequestError(
            "PERSISTED_QUERY_NOT_SUPPORTED", "Unsupported persisted query version: use 1"
        )
    digest = fields.get("sha256Hash")
    if not isinstance(digest, str) or not digest:
        raise PersistedRequestError(
            "BAD_REQUEST", "extensions.persistedQuery.sha256Hash must be a string"
        )
    return _checked_id(digest, "extensions.persistedQuery.sha256Hash")


MAX_DOCUMENT_ID = 256  # a SHA-256 in hex is 64; Relay's and other tools' ids are shorter


def _checked_id(id: str, field: str) -> str:
    """A document id fit to look up: short, and text the database can store (no lone
    surrogates, which JSON's escapes can carry)."""
    if len(id) > MAX_DOCUMENT_ID:
        raise PersistedRequestError("BAD_REQUEST", f"{field} is over {MAX_DOCUMENT_ID} characters")
    try:
        id.encode("utf-8")
    except UnicodeEncodeError:
        raise PersistedRequestError("BAD_REQUEST", f"{field} is not valid Unicode text") from None
    return id


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
