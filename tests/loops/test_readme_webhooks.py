"""README's two ways of verifying a webhook delivery, run as written on a real one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from repository.access import Principal
from repository.database import Store
from repository.webhooks import WebhookEvent
from tests.helpers.receiver import receiver
from tests.helpers.waiting import eventually

from .test_webhook_delivery import running

README = Path(__file__).resolve().parents[2] / "README.md"


def snippets() -> list[str]:
    text = README.read_text()
    section = text[text.index("### Webhook messages"):text.index("### Delivery, retries")]
    return re.findall(r"^```python\n(.*?)^```\n", section, re.DOTALL | re.MULTILINE)


async def test_the_readme_snippets_verify_a_real_delivery(store: Store) -> None:
    # given: the README's code, and the secret its first snippet names
    library, stdlib = snippets()
    secret = re.search(r'Webhook\("(whsec_[^"]+)"\)', library).group(1)  # type: ignore[union-attr]
    first: dict[str, Any] = {}
    second: dict[str, Any] = {}
    exec(compile(library, "README (standardwebhooks)", "exec"), first)
    exec(compile(stdlib, "README (standard library)", "exec"), second)

    # when: a real delivery arrives
    async with receiver() as hook:
        await store.webhooks.create(Principal("alice"), url=hook.url, secret=secret,
                                    events=[WebhookEvent.JOB_STATUS_CHANGED])
        async with running(store):
            job = await store.jobs.create(Principal("alice"), job_type="pdf")
            await eventually(lambda: hook.requests)
    request = hook.requests[0]

    # then: both accept it, the first drops a repeat, and both refuse a tampered body
    seen: set[str] = set()
    event = first["receive"](request.body, request.headers, seen)
    assert event["data"]["jobId"] == job.job_id
    assert first["receive"](request.body, request.headers, seen) is None
    assert second["verify"](secret, request.body, request.headers) == event
    tampered = request.body.replace(b"PENDING", b"FAILED!")
    with pytest.raises(ValueError, match="bad signature"):
        second["verify"](secret, tampered, request.headers)
    with pytest.raises(Exception, match="signature"):
        first["receive"](tampered, request.headers, set())
