"""Domain errors, and the catalogue of every code the API reports.

Each error carries its code from where it is raised; ``ErrorCode`` lists every code a
client can receive (in ``extensions.code`` or an HTTP error body) and what it means;
README's Errors table lists the same (a test compares them).
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    CONFLICT = "CONFLICT"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    SUBSCRIPTION_LAGGING = "SUBSCRIPTION_LAGGING"
    SUBSCRIPTION_RESET = "SUBSCRIPTION_RESET"
    TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS"
    SUBSCRIPTIONS_UNAVAILABLE = "SUBSCRIPTIONS_UNAVAILABLE"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    BAD_REQUEST = "BAD_REQUEST"
    UNSUPPORTED_TRANSPORT = "UNSUPPORTED_TRANSPORT"

    @property
    def meaning(self) -> str:
        return MEANINGS[self]


MEANINGS: dict[ErrorCode, str] = {
    ErrorCode.NOT_FOUND: "The object does not exist, or you may not read it.",
    ErrorCode.FORBIDDEN: "You may read the object but not do this to it.",
    ErrorCode.UNAUTHENTICATED: "The bearer token is missing a key, invalid or expired.",
    ErrorCode.INVALID_TRANSITION: "The object is in a state that does not allow this change.",
    ErrorCode.CONFLICT: "Someone else changed the object first (or your lease was lost).",
    ErrorCode.VALIDATION_ERROR: "An argument is out of range or malformed; `field` names it.",
    ErrorCode.DATABASE_UNAVAILABLE: "MongoDB did not answer in time; retry later.",
    ErrorCode.GRAPHQL_PARSE_FAILED: "The document is not valid GraphQL syntax.",
    ErrorCode.GRAPHQL_VALIDATION_FAILED: "The document does not match the schema or variables.",
    ErrorCode.QUERY_TOO_COMPLEX: "The document exceeds a depth, alias, field or token limit.",
    ErrorCode.SUBSCRIPTION_LAGGING: "The subscriber fell behind and was dropped; resubscribe.",
    ErrorCode.SUBSCRIPTION_RESET: "Change history was lost; re-query and resubscribe.",
    ErrorCode.TOO_MANY_SUBSCRIPTIONS: "The connection or server holds its most subscriptions.",
    ErrorCode.SUBSCRIPTIONS_UNAVAILABLE: "No change streams (not a replica set), or shutting down.",
    ErrorCode.INTERNAL_SERVER_ERROR: "An unexpected error; details are in the server log only.",
    ErrorCode.PAYLOAD_TOO_LARGE: "The request body exceeds the configured maximum.",
    ErrorCode.NOT_ACCEPTABLE: "The Accept header allows no media type the server answers in.",
    ErrorCode.BAD_REQUEST: "The HTTP request itself is malformed.",
    ErrorCode.UNSUPPORTED_TRANSPORT: "The operation cannot go over this transport (a "
    "subscription asked for as plain JSON; a query in a multipart subscription stream).",
}


class CodedError(Exception):
    """An error that leaves the API with its own code and message (nothing masked)."""

    code: ErrorCode = ErrorCode.INTERNAL_SERVER_ERROR

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class DomainError(CodedError):
    """An expected refusal of the domain's rules."""


class NotFoundError(DomainError):
    """Also raised for objects the caller may not read, so both look the same."""

    code = ErrorCode.NOT_FOUND


class ForbiddenError(DomainError):
    code = ErrorCode.FORBIDDEN


class InvalidTransitionError(DomainError):
    code = ErrorCode.INVALID_TRANSITION


class ConflictError(DomainError):
    code = ErrorCode.CONFLICT


class LeaseLostError(ConflictError):
    """A worker wrote to a job it no longer holds: it must stop, not try again. Its code
    stays CONFLICT, which the README documents and workers already stop on."""


class ValidationError(DomainError):
    code = ErrorCode.VALIDATION_ERROR

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class DatabaseUnavailableError(DomainError):
    code = ErrorCode.DATABASE_UNAVAILABLE


class EmbeddedDatabaseError(DomainError):
    """The embedded server could not be started (extra missing, or it would not answer)."""

    code = ErrorCode.DATABASE_UNAVAILABLE
