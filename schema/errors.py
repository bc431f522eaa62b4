"""Errors at the edge: payload `userErrors` for input and business errors, top-level
`extensions.code` for authentication, authorization, limits and the unexpected."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from enum import Enum
from typing import TypeVar

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from auth.errors import Unauthenticated
from schema.context import Context
from services.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceError, Unavailable
from services.live import SubscriberTooSlow

log = logging.getLogger("cityexchange.graphql")
T = TypeVar("T")

PAYLOAD_ERRORS = (InvalidInput, NotFound, Conflict)


@strawberry.enum
class UserErrorCode(Enum):
    BAD_USER_INPUT = "BAD_USER_INPUT"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"


@strawberry.type(description="An input or business error; the operation changed nothing.")
class UserError:
    code: UserErrorCode
    field: list[str] | None
    message: str


async def attempt(work: Callable[[], Awaitable[T]]) -> tuple[T | None, list[UserError]]:
    """Run a use case; its input and business errors become the payload's userErrors."""
    try:
        return await work(), []
    except PAYLOAD_ERRORS as exc:
        return None, [user_error(exc)]


def user_error(exc: InvalidInput | NotFound | Conflict) -> UserError:
    """The payload form of a domain error."""
    if isinstance(exc, InvalidInput):
        return UserError(
            code=UserErrorCode.BAD_USER_INPUT, field=["input", *exc.field], message=exc.message
        )
    if isinstance(exc, NotFound):
        return UserError(code=UserErrorCode.NOT_FOUND, field=None, message=str(exc))
    return UserError(code=UserErrorCode.CONFLICT, field=["input", "version"], message=str(exc))


_TOO_COMPLEX = re.compile(
    r"exceeds maximum operation depth|aliases found\. Allowed|Document contains more than \d+ "
    r"tokens"
)
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def _code(error: GraphQLError) -> str | None:
    original = error.original_error
    if isinstance(original, Unauthenticated):
        return "UNAUTHENTICATED"
    if isinstance(original, Forbidden):
        return "FORBIDDEN"
    if isinstance(original, Unavailable):
        return "SERVICE_UNAVAILABLE"
    if isinstance(original, SubscriberTooSlow):
        return "SLOW_CONSUMER"  # resume with `after` set to the last cursor received
    if isinstance(original, InvalidInput):
        return "BAD_USER_INPUT"
    if isinstance(original, NotFound):
        return "NOT_FOUND"
    if isinstance(original, Conflict):
        return "CONFLICT"
    if original is None:
        if _TOO_COMPLEX.search(error.message):
            return "QUERY_TOO_COMPLEX"
        return "GRAPHQL_VALIDATION_FAILED"
    if error.path is None and isinstance(original, ValueError | TypeError | GraphQLError):
        return "BAD_USER_INPUT"  # a variable that does not coerce, e.g. a malformed DateTime
    return None


def coded_errors(
    errors: list[GraphQLError],
    *,
    request_id: str,
    hide_suggestions: bool,
    on_unavailable: Callable[[], None],
) -> list[GraphQLError]:
    """Errors with a machine-readable `extensions.code`; the unexpected masked and logged.

    Idempotent: an error that already carries a code is left as it is.
    """
    processed: list[GraphQLError] = []
    for error in errors:
        if error.extensions and "code" in error.extensions:
            processed.append(error)
            continue
        code = _code(error)
        if code is None:
            log.error(
                "unexpected error at %s (request %s)",
                error.path,
                request_id,
                exc_info=error.original_error,
            )
            processed.append(
                GraphQLError(
                    f"Internal server error (request id {request_id})",
                    nodes=error.nodes,
                    path=error.path,
                    extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
                )
            )
            continue
        if code == "SERVICE_UNAVAILABLE":
            on_unavailable()
        original = error.original_error
        extra = {"field": list(original.field)} if isinstance(original, InvalidInput) else {}
        if isinstance(original, ServiceError | Unauthenticated):
            message = str(original)
        elif hide_suggestions:
            message = _SUGGESTION.sub("", error.message)
        else:
            message = error.message
        processed.append(
            GraphQLError(
                message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                original_error=None,
                extensions={
                    **(error.extensions or {}),
                    "code": code,
                    "requestId": request_id,
                    **extra,
                },
            )
        )
    return processed


class ErrorCodes(SchemaExtension):
    """Give every error of an operation a code; mask and log everything unexpected."""

    hide_suggestions: bool = False

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors: list[GraphQLError] | None = getattr(result, "errors", None)
        context = self.execution_context.context
        if not errors or not isinstance(context, Context):
            return
        result.errors = coded_errors(  # type: ignore[union-attr]
            errors,
            request_id=context.request_id,
            hide_suggestions=self.hide_suggestions,
            on_unavailable=context.on_unavailable,
        )


class ProdErrorCodes(ErrorCodes):
    """ErrorCodes that also strips "Did you mean" suggestions, which leak the schema."""

    hide_suggestions = True
