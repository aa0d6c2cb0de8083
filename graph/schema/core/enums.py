"""Enums of the repository's models, exposed with a description for every value."""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

import strawberry

E = TypeVar("E", bound=type[Enum])


def described_enum(cls: E, description: str, values: dict[str, str]) -> E:
    """``strawberry.enum`` for an enum defined without Strawberry (the repository's), with
    each value's description; every value must have one."""
    strawberry.enum(cls, description=description)
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    missing = {value.name for value in definition.values} - values.keys()
    if missing:
        raise ValueError(f"{cls.__name__}: no description for {sorted(missing)}")
    for value in definition.values:
        value.description = values[value.name]
    return cls
