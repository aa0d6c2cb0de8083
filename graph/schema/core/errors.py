"""The one error model: every GraphQL error leaves with ``extensions.code``.

Errors carry their code from where they are raised (``repository.errors.CodedError``,
and the limits and syntax errors of ``graph/engine/documents.py``); what graphql-core's
own validation refuses is GRAPHQL_VALIDATION_FAILED; anything unexpected is logged and
masked, so no stack trace or internal message reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from graphql.error import GraphQLError, GraphQLSyntaxError
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import MaskErrors
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from graph.engine.documents import syntax_error_code
from repository.database import UNREACHABLE_ERRORS
from repository.errors import CodedError, ErrorCode, ValidationError

logger = logging.getLogger("jobgraph.errors")

INTERNAL_MESSAGE = "Internal server error"


def camel_case(path: str) -> str:
    """The API's name for a field the domain names in snake_case (``read_access``)."""
    head, *rest = path.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def code_of(error: GraphQLError) -> str:
    code: str = (error.extensions or {}).get("code", ErrorCode.INTERNAL_SERVER_ERROR.value)
    return code


def client_error(error: GraphQLError) -> GraphQLError:
    coded = _coded(error)
    # An execution's errors are logged (if unexpected) and no longer needed as raised:
    # their tracebacks hold the frames that raised them, and those the executor that holds
    # these errors, a cycle that left a failed request's executor, context and what its
    # loaders read to the garbage collector. (Not one that escaped an operation, path-less
    # and original-less: its handler may raise it on.)
    original: BaseException | None = error
    depth = 0
    if error.path is None and error.original_error is None:
        original = None
    while original is not None and depth < 8:
        original.__traceback__ = None
        original, depth = getattr(original, "original_error", None), depth + 1
    return coded


def _coded(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, GraphQLError) and original is not error:
        inner = _coded(original)
        if error.path is None and code_of(inner) == ErrorCode.GRAPHQL_VALIDATION_FAILED:
            # A bad variable: the outer message names the variable and the path in it.
            return _rebuild(error, error.message, dict(inner.extensions or {}))
        return inner
    extensions = dict(error.extensions or {})
    if isinstance(original, CodedError):
        extensions["code"] = original.code.value
        if isinstance(original, ValidationError):
            extensions["field"] = camel_case(original.field)
        return _rebuild(error, original.message, extensions)
    if isinstance(original, InvalidOperationTypeError):  # inside an SSE or multipart stream
        return _rebuild(error, f"{error.message} over this transport: a multipart subscription "
                        "stream carries only subscriptions, and a mutation needs POST",
                        {"code": ErrorCode.UNSUPPORTED_TRANSPORT.value})
    if isinstance(original, MissingQueryError | CannotGetOperationTypeError):
        # Over plain HTTP Strawberry's view answers these 400 BAD_REQUEST before running
        # anything; in a stream (SSE, multipart) and on a socket they arrive here instead
        message = (original.as_http_error_reason()
                   if isinstance(original, CannotGetOperationTypeError)
                   else "No GraphQL query found in the request")
        return _rebuild(error, message, {"code": ErrorCode.BAD_REQUEST.value})
    if isinstance(original, UNREACHABLE_ERRORS):
        logger.warning("database unavailable: %s", original)
        return _rebuild(error, "The database is unavailable; try again later.",
                        {"code": ErrorCode.DATABASE_UNAVAILABLE.value})
    if "code" in extensions:  # coded where it was raised (limits, syntax)
        return error
    if isinstance(error, GraphQLSyntaxError):  # parsed again by Strawberry while streaming
        extensions["code"] = syntax_error_code(error).value
        return _rebuild(error, error.message, extensions)
    if original is None or (error.path is None and not _is_unexpected(original)):
        # graphql-core's validation rules, and variables its input coercion refused
        extensions["code"] = ErrorCode.GRAPHQL_VALIDATION_FAILED.value
        return _rebuild(error, error.message, extensions)
    logger.error("unexpected error in %s", error.path, exc_info=original)
    return _rebuild(error, INTERNAL_MESSAGE, {"code": ErrorCode.INTERNAL_SERVER_ERROR.value})


def _is_unexpected(original: BaseException) -> bool:
    """Input coercion raises ValueError/TypeError about client values; anything else is ours."""
    return not isinstance(original, ValueError | TypeError)


def _rebuild(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ErrorCodes(MaskErrors):
    """Strawberry's MaskErrors, with the domain mapping applied instead of blanket masking."""

    @staticmethod
    def record(app_context: Any, name: str | None, operation_type: str, seconds: float,
               codes: list[str]) -> None:
        """What an operation run past Strawberry's extensions (``graph/schema/express.py``)
        leaves behind when it ends; the server's extension records it as its own."""

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [client_error(error) for error in errors]

    def _process_result(self, result: object) -> None:
        # MaskErrors tests a runtime-checkable Protocol with isinstance, which costs more
        # than the rest of the hook on every request; every result here has ``errors``.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]
