"""The direction half of every list's ``orderBy``; each list names its own keys."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum(description="Which way a list runs along its order's key.")
class OrderDirection(Enum):
    ASC = strawberry.enum_value("ASC", description="Smallest (oldest, lowest) first.")
    DESC = strawberry.enum_value("DESC", description="Largest (newest, highest) first.")
