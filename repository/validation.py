"""Input checks shared by the models and the repositories.

They run before anything is written, so a refused request changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import ValidationError

MAX_DOCUMENT_DEPTH = 20


def check_mongo_keys(field: str, value: Any, *, depth: int = 0) -> None:
    """Refuse keys MongoDB would read as operators or paths (``$x``, ``a.b``)."""
    if depth > MAX_DOCUMENT_DEPTH:
        raise ValidationError(field, f"is nested deeper than {MAX_DOCUMENT_DEPTH} levels")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(field, "keys must be strings")
            if key.startswith("$"):
                raise ValidationError(field, f"key {key!r} must not start with '$'")
            if "." in key:
                raise ValidationError(field, f"key {key!r} must not contain '.'")
            if "\x00" in key:
                raise ValidationError(field, f"key {key!r} must not contain a NUL character")
            check_mongo_keys(f"{field}.{key}", item, depth=depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_mongo_keys(f"{field}[{index}]", item, depth=depth + 1)


def check_document(field: str, value: Any, *, max_bytes: int) -> None:
    """A JSON-like mapping with safe keys and a bounded encoded size."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise ValidationError(field, "must be a JSON object")
    check_mongo_keys(field, value)
    size = encoded_size(value)
    if size > max_bytes:
        raise ValidationError(field, f"is {size} bytes encoded; the limit is {max_bytes}")


def encoded_size(value: Any) -> int:
    import bson

    try:
        return len(bson.encode({"v": value}))
    except (bson.errors.InvalidDocument, OverflowError) as exc:
        raise ValidationError("value", f"cannot be stored: {exc}") from exc


def check_text(field: str, value: str | None, *, max_length: int, required: bool = True) -> None:
    if value is None:
        if required:
            raise ValidationError(field, "is required")
        return
    if required and not value.strip():
        raise ValidationError(field, "must not be empty")
    if len(value) > max_length:
        raise ValidationError(field, f"is longer than {max_length} characters")
    if "\x00" in value:
        raise ValidationError(field, "must not contain a NUL character")
