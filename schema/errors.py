"""Errors at the edge: payload `userErrors` for input and business errors, top-level
`extensions.code` for authentication, authorization, limits and the unexpected."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from enum import Enum
from typing import TypeVar

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from cityexchange.auth.errors import Unauthenticated
from cityexchange.schema.context import Context, OutOfTime
from cityexchange.schema.limits import TooComplex
from cityexchange.schema.rate_limits import RateLimited
from cityexchange.schema.retries import Retry, fingerprint
from cityexchange.services import idempotency
from cityexchange.services.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    KeyReused,
    NotFound,
    OutcomeUnknown,
    ServiceError,
    Unavailable,
)
from cityexchange.services.live import SubscriberTooSlow

log = logging.getLogger("cityexchange.graphql")
T = TypeVar("T")

PAYLOAD_ERRORS = (InvalidInput, NotFound, Conflict, KeyReused)
MAX_ERRORS = 5  # per response; a document with hundreds of mistakes gets the first few


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


async def attempt(
    work: Callable[[], Awaitable[T]], retry: Retry[T] | None = None
) -> tuple[T | None, list[UserError]]:
    """Run a use case, once per clientMutationId when `retry` says how to answer a retry;
    its input and business errors become the payload's userErrors."""
    try:
        key = retry.input.client_mutation_id if retry else None
        if retry is None or key is None:
            return await work(), []
        ctx = retry.info.context
        mutation = idempotency.key_of(
            actor=ctx.actor(),
            name=retry.info.field_name,
            key=key,
            input_hash=fingerprint(retry.input),
        )
        result = await idempotency.once(
            db=ctx.db,
            key=mutation,
            work=work,
            result_id=retry.result_id,
            reload=retry.reload,
        )
        return result, []
    except PAYLOAD_ERRORS as exc:
        return None, [user_error(exc)]


def user_error(exc: InvalidInput | NotFound | Conflict | KeyReused) -> UserError:
    """The payload form of a domain error."""
    if isinstance(exc, InvalidInput):
        return UserError(
            code=UserErrorCode.BAD_USER_INPUT, field=["input", *exc.field], message=exc.message
        )
    if isinstance(exc, NotFound):
        return UserError(code=UserErrorCode.NOT_FOUND, field=None, message=str(exc))
    if isinstance(exc, KeyReused):
        return UserError(
            code=UserErrorCode.CONFLICT, field=["input", "clientMutationId"], message=str(exc)
        )
    return UserError(code=UserErrorCode.CONFLICT, field=["input", "version"], message=str(exc))


# graphql-core's parser refuses a document over its token limit with a syntax error that
# only its text tells apart.
_TOO_MANY_TOKENS = re.compile(r"Document contains more than \d+ tokens")
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
OUTCOME_UNKNOWN_MESSAGE = (
    "The time budget ran out before the change was confirmed: it may or may not have been "
    "made. Send the same mutation again with the same clientMutationId to get its result; it "
    "is applied at most once."
)


def _code(error: GraphQLError) -> str | None:
    original = error.original_error
    if isinstance(original, Unauthenticated):
        return "UNAUTHENTICATED"
    if isinstance(original, Forbidden):
        return "FORBIDDEN"
    if isinstance(original, OutcomeUnknown):
        return "OUTCOME_UNKNOWN"  # not SERVICE_UNAVAILABLE: the write may have committed
    if isinstance(original, Unavailable):
        return "SERVICE_UNAVAILABLE"
    if isinstance(original, SubscriberTooSlow):
        return "SLOW_CONSUMER"  # resume with `after` set to the last cursor received
    if isinstance(original, InvalidInput):
        return "BAD_USER_INPUT"
    if isinstance(original, TooComplex):
        return "QUERY_TOO_COMPLEX"
    if isinstance(original, OutOfTime):
        return "OPERATION_TIMED_OUT"
    if isinstance(original, RateLimited):
        return "RATE_LIMITED"
    if isinstance(original, NotFound):
        return "NOT_FOUND"
    if isinstance(original, Conflict):
        return "CONFLICT"
    if isinstance(original, CannotGetOperationTypeError | InvalidOperationTypeError):
        return "BAD_REQUEST"  # an operationName the document lacks, a type not allowed here
    if original is None:
        if isinstance(error, GraphQLSyntaxError):
            too_many = _TOO_MANY_TOKENS.search(error.message)
            return "QUERY_TOO_COMPLEX" if too_many else "GRAPHQL_PARSE_FAILED"
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

    Idempotent: an error that already carries a code is left as it is. At most MAX_ERRORS
    come back: past that, the first MAX_ERRORS - 1 and one closing error that counts the rest.
    """
    processed: list[GraphQLError] = []
    kept = errors if len(errors) <= MAX_ERRORS else errors[: MAX_ERRORS - 1]
    for error in kept:
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
        if code in ("SERVICE_UNAVAILABLE", "OUTCOME_UNKNOWN"):
            on_unavailable()
        original = error.original_error
        extra = {"field": list(original.field)} if isinstance(original, InvalidInput) else {}
        if isinstance(original, OutcomeUnknown):
            message = OUTCOME_UNKNOWN_MESSAGE
        elif isinstance(original, ServiceError | Unauthenticated):
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
    if len(errors) > len(kept):
        omitted = len(errors) - len(kept)
        processed.append(
            GraphQLError(
                f"{omitted} more errors were left out",
                extensions={
                    "code": (processed[-1].extensions or {}).get("code", "INTERNAL_SERVER_ERROR"),
                    "requestId": request_id,
                    "omitted": omitted,
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
