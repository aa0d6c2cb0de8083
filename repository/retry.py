"""When a failed attempt runs again: a job's retry policy.

A retryable failure (a worker's ``failJob``, an expired lease, a timeout) puts the job
back to PENDING, not claimable before ``now + delay(attempt)``, while attempts remain;
after the last it stays FAILED. Delays are fixed or grow exponentially from ``base``,
capped at ``cap``; exponential delays take "full jitter" (uniform between zero and the
exponential value, as AWS's architecture note recommends) so a burst of failures does
not come back as a burst of retries.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .errors import ValidationError

MAX_ATTEMPTS = 100
MAX_DELAY_SECONDS = 7 * 24 * 3600.0


class Backoff(StrEnum):
    FIXED = "FIXED"
    EXPONENTIAL = "EXPONENTIAL"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    """Claims allowed in all; the first run counts as one."""
    backoff: Backoff = Backoff.EXPONENTIAL
    base_seconds: float = 5.0
    cap_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS:
            raise ValidationError("retryPolicy.maxAttempts",
                                  f"must be between 1 and {MAX_ATTEMPTS}")
        if not 0 <= self.base_seconds <= MAX_DELAY_SECONDS:
            raise ValidationError("retryPolicy.baseSeconds",
                                  f"must be between 0 and {MAX_DELAY_SECONDS:.0f}")
        if not self.base_seconds <= self.cap_seconds <= MAX_DELAY_SECONDS:
            raise ValidationError("retryPolicy.capSeconds",
                                  f"must be between baseSeconds and {MAX_DELAY_SECONDS:.0f}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before the run after failed attempt number ``attempt`` (1-based)."""
        if self.backoff is Backoff.FIXED:
            return self.base_seconds
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0 ** max(attempt - 1, 0))
        return (rng or random).uniform(0.0, ceiling)

    def to_document(self) -> dict[str, Any]:
        return {"max_attempts": self.max_attempts, "backoff": self.backoff.value,
                "base_seconds": self.base_seconds, "cap_seconds": self.cap_seconds}

    @classmethod
    def from_document(cls, document: dict[str, Any] | None, default: RetryPolicy
                      ) -> RetryPolicy:
        if not document:
            return default
        return cls(int(document.get("max_attempts", default.max_attempts)),
                   Backoff(document.get("backoff", default.backoff.value)),
                   float(document.get("base_seconds", default.base_seconds)),
                   float(document.get("cap_seconds", default.cap_seconds)))
