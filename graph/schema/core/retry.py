"""Retry policies (``repository.retry``) as the schema shows and takes them."""

from __future__ import annotations

from typing import Any

import strawberry

from repository.retry import Backoff
from repository.retry import RetryPolicy as RetryPolicyModel

from .enums import described_enum

described_enum(Backoff, "How the wait before a retry grows from one attempt to the next.", {
    "FIXED": "Always `baseSeconds`.",
    "EXPONENTIAL": "`baseSeconds` doubled per failed attempt, at most `capSeconds`, with "
                   "full jitter: a random wait between zero and that, so failures that came "
                   "together do not retry together.",
})


@strawberry.type(description="How often failed work runs again, and after how long: a "
                 "retryable failure by its worker, an expired lease (or a job's timeout) put "
                 "it back to PENDING, due after this wait, while attempts remain.")
class RetryPolicy:
    max_attempts: int = strawberry.field(
        description="Claims allowed in all, the first run included.")
    backoff: Backoff = strawberry.field(description="FIXED or EXPONENTIAL waits.")
    base_seconds: float = strawberry.field(
        description="The fixed wait, or the first exponential one.")
    cap_seconds: float = strawberry.field(description="The longest exponential wait.")


@strawberry.input(description="A retry policy; what is left out takes the server's default "
                  "(`JOBGRAPH_DEFAULT_MAX_ATTEMPTS`, `JOBGRAPH_RETRY_*`).")
class RetryPolicyInput:
    max_attempts: int | None = strawberry.field(
        default=None, description="Claims allowed in all, the first run included (1 to 100).")
    backoff: Backoff | None = strawberry.field(
        default=None, description="FIXED or EXPONENTIAL waits.")
    base_seconds: float | None = strawberry.field(
        default=None, description="The fixed wait, or the first exponential one (seconds).")
    cap_seconds: float | None = strawberry.field(
        default=None, description="The longest exponential wait (seconds, at least "
        "`baseSeconds`).")

    def to_dict(self) -> dict[str, Any]:
        """What was given, for a repository that fills in the rest itself (jobs)."""
        return {"max_attempts": self.max_attempts, "backoff": self.backoff,
                "base_seconds": self.base_seconds, "cap_seconds": self.cap_seconds}

    def to_model(self, default: RetryPolicyModel) -> RetryPolicyModel:
        return RetryPolicyModel(
            default.max_attempts if self.max_attempts is None else self.max_attempts,
            default.backoff if self.backoff is None else self.backoff,
            default.base_seconds if self.base_seconds is None else self.base_seconds,
            default.cap_seconds if self.cap_seconds is None else self.cap_seconds)
