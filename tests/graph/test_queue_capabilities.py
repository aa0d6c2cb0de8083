"""``Queue.viewerCanAdmin`` says what the queue mutations then do: for each caller who may
read queues, the flag is read, then ``pauseQueue``, ``resumeQueue`` and
``setQueueConcurrency`` are tried, and each goes through exactly when the flag said so (the
dashboard shows its queue controls by it)."""

from __future__ import annotations

import pytest

from tests.helpers.graphql import Api, Caller

QUEUE = "query($t: String!) { queue(jobType: $t) { paused maxConcurrency viewerCanAdmin } }"
QUEUES = "query { queues { jobType viewerCanAdmin } }"
MUTATIONS = {
    "pauseQueue": "mutation($t: String!) { pauseQueue(jobType: $t) { paused } }",
    "resumeQueue": "mutation($t: String!) { resumeQueue(jobType: $t) { paused } }",
    "setQueueConcurrency": """mutation($t: String!) {
      setQueueConcurrency(jobType: $t, max: 3) { maxConcurrency } }""",
}
CREATE_JOB = "mutation($t: String!) { createJob(input: {jobType: $t}) { jobId } }"
OPERATORS = {
    "admin-role": Caller("root", ("admin",)),
    "worker-role": Caller("worker-1", ("worker",)),
    "admin-and-worker": Caller("both", ("admin", "worker")),
}


@pytest.mark.parametrize("caller", list(OPERATORS))
async def test_queue_admin_flag_says_what_the_queue_mutations_then_do(api: Api,
                                                                      caller: str) -> None:
    who = OPERATORS[caller]
    job_type = f"flagged-{caller}"
    await api.data(CREATE_JOB, {"t": job_type}, as_=Caller("owner"))

    # when the flag is read, in both queries, then each mutation is tried
    said = (await api.data(QUEUE, {"t": job_type}, as_=who))["queue"]["viewerCanAdmin"]
    listed = {queue["jobType"]: queue["viewerCanAdmin"]
              for queue in (await api.data(QUEUES, as_=who))["queues"]}
    done = {}
    for name, mutation in MUTATIONS.items():
        body = await api.execute(mutation, {"t": job_type}, as_=who)
        if body.get("errors"):
            assert {error["extensions"]["code"] for error in body["errors"]} == {"FORBIDDEN"}
        done[name] = not body.get("errors")
    after = (await api.data(QUEUE, {"t": job_type}, as_=who))["queue"]

    # then every mutation went through exactly when the flag said so: the admin role
    assert listed[job_type] is said
    assert done == dict.fromkeys(MUTATIONS, said)
    assert said is ("admin" in who.roles)
    assert (after["paused"], after["maxConcurrency"]) == ((False, 3) if said else (False, None))
