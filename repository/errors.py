"""Domain errors. Each carries the machine-readable code the API reports for it."""

from __future__ import annotations


class DomainError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(DomainError):
    """Also raised for objects the caller may not read, so both look the same."""

    code = "NOT_FOUND"


class ForbiddenError(DomainError):
    code = "FORBIDDEN"


class InvalidTransitionError(DomainError):
    code = "INVALID_TRANSITION"


class ConflictError(DomainError):
    code = "CONFLICT"


class LeaseLostError(ConflictError):
    """A worker wrote to a job it no longer holds: it must stop, not try again. Its code
    stays CONFLICT, which the README documents and workers already stop on."""


class ValidationError(DomainError):
    code = "VALIDATION_ERROR"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class DatabaseUnavailableError(DomainError):
    code = "DATABASE_UNAVAILABLE"


class EmbeddedDatabaseError(DomainError):
    """The embedded server could not be started (extra missing, or it would not answer)."""

    code = "DATABASE_UNAVAILABLE"
