"""The kinds of work a worker claims, as the claim machinery shared by all of them sees
each: its name, the status of claimed work, and the fields a claim stamps besides its
holder, token and lease.

``claims`` (who may write), ``abandoned_claims`` (claims whose answer never reached the
caller) and ``leases`` (lapsed leases) serve jobs and documentation jobs alike; what
differs between the two is only this.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import DocumentationJobStatus, JobStatus


@dataclass(frozen=True)
class Claimable:
    kind: str
    """How messages name one: "job", "documentation job"."""
    running: str
    """The status of claimed work (a job's PROCESSING, a documentation job's RUNNING)."""
    claim_fields: tuple[str, ...]
    """Set by a claim, cleared again when the claim is undone."""
    pending: str = "PENDING"
    failed: str = "FAILED"


JOBS = Claimable("job", JobStatus.PROCESSING.value,
                ("processing_started_at", "timeout_at"))  # timeout_at: the claim's deadline
DOCUMENTATION_JOBS = Claimable("documentation job", DocumentationJobStatus.RUNNING.value,
                               ("timestamp_start", "started_at"))
