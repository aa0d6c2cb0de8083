"""The one error model: every GraphQL error leaves with ``extensions.code``.

Domain exceptions map to their code here and nowhere else; anything unexpected
is logged and masked, so no stack trace or internal message reaches a client.
"""

from __future__ import annotations

import logging

from graphql.error import GraphQLError
from pymongo.errors import AutoReconnect, ConnectionFailure, ExecutionTimeout, NetworkTimeout
from strawberry.extensions import MaskErrors
from strawberry.schema.exceptions import InvalidOperationTypeError

from repository.errors import DomainError, ValidationError

from .auth import UnauthenticatedError

logger = logging.getLogger("jobgraph.errors")

INTERNAL_MESSAGE = "Internal server error"
DATABASE_ERRORS = (AutoReconnect, ConnectionFailure, NetworkTimeout, ExecutionTimeout)
LIMIT_MARKERS = (
    "exceeds maximum operation depth",
    "Document contains more than",
    "aliases found",
)

ERROR_CODES = {
    "NOT_FOUND": "The object does not exist, or you may not read it.",
    "FORBIDDEN": "You may read the object but not do this to it.",
    "UNAUTHENTICATED": "The bearer token is missing a key, invalid or expired.",
    "INVALID_TRANSITION": "The object is in a state that does not allow this change.",
    "CONFLICT": "Someone else changed the object first (or your lease was lost); re-read it.",
    "VALIDATION_ERROR": "An argument is out of range or malformed; `field` names it.",
    "DATABASE_UNAVAILABLE": "MongoDB did not answer in time; retry later.",
    "GRAPHQL_PARSE_FAILED": "The document is not valid GraphQL syntax.",
    "GRAPHQL_VALIDATION_FAILED": "The document does not match the schema or its variables.",
    "QUERY_TOO_COMPLEX": "The document exceeds the depth, alias or token limit.",
    "SUBSCRIPTION_LAGGING": "The subscriber fell behind and was dropped; re-query, resubscribe.",
    "SUBSCRIPTION_RESET": "Change history was lost (token too old); re-query and resubscribe.",
    "TOO_MANY_SUBSCRIPTIONS": "The connection or the server holds its maximum of subscriptions.",
    "SUBSCRIPTIONS_UNAVAILABLE": "The database offers no change streams (not a replica set).",
    "UNSUPPORTED_TRANSPORT": "The operation cannot go over this transport (a subscription asked "
                             "for as plain JSON; a query in a multipart subscription stream).",
    "INTERNAL_SERVER_ERROR": "An unexpected error; details are in the server log only.",
}
"""Every code a client can receive, with what it means (the README lists the same)."""


def camel_case(path: str) -> str:
    """The API's name for a field the domain names in snake_case (``read_access``)."""
    head, *rest = path.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def code_of(error: GraphQLError) -> str:
    return (error.extensions or {}).get("code", "INTERNAL_SERVER_ERROR")


def client_error(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, GraphQLError) and original is not error:
        inner = client_error(original)
        if error.path is None and code_of(inner) == "GRAPHQL_VALIDATION_FAILED":
            # A bad variable: the outer message names the variable and the path in it.
            return _rebuild(error, error.message, dict(inner.extensions or {}))
        return inner
    extensions = dict(error.extensions or {})
    if isinstance(original, DomainError):
        extensions["code"] = original.code
        if isinstance(original, ValidationError):
            extensions["field"] = camel_case(original.field)
        return _rebuild(error, original.message, extensions)
    if isinstance(original, InvalidOperationTypeError):  # inside an SSE or multipart stream
        return _rebuild(error, f"{error.message} over this transport: a multipart subscription "
                        "stream carries only subscriptions, and a mutation needs POST",
                        {"code": "UNSUPPORTED_TRANSPORT"})
    if isinstance(original, UnauthenticatedError):
        return _rebuild(error, original.message, {"code": original.code})
    if isinstance(original, DATABASE_ERRORS):
        logger.warning("database unavailable: %s", original)
        return _rebuild(error, "The database is unavailable; try again later.",
                        {"code": "DATABASE_UNAVAILABLE"})
    if "code" in extensions:
        return error
    if original is None or (error.path is None and not _is_unexpected(original)):
        if any(marker in error.message for marker in LIMIT_MARKERS):
            extensions["code"] = "QUERY_TOO_COMPLEX"
        elif error.message.startswith("Syntax Error"):
            extensions["code"] = "GRAPHQL_PARSE_FAILED"
        else:
            extensions["code"] = "GRAPHQL_VALIDATION_FAILED"
        return _rebuild(error, error.message, extensions)
    logger.error("unexpected error in %s", error.path, exc_info=original)
    return _rebuild(error, INTERNAL_MESSAGE, {"code": "INTERNAL_SERVER_ERROR"})


def _is_unexpected(original: BaseException) -> bool:
    """Input coercion raises ValueError/TypeError about client values; anything else is ours."""
    return not isinstance(original, ValueError | TypeError)


def _rebuild(error: GraphQLError, message: str, extensions: dict) -> GraphQLError:
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

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [client_error(error) for error in errors]

    def _process_result(self, result: object) -> None:
        # MaskErrors tests a runtime-checkable Protocol with isinstance, which costs more
        # than the rest of the hook on every request; every result here has ``errors``.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]
