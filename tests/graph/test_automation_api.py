"""Schedules and webhooks through the GraphQL API: create, read, list, pause and resume,
delete, access rules, refused input (cron, time zone, URLs that point inward, secrets),
deliveries and redelivery, Relay's ``node``."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from repository.access import Principal
from repository.database import Store
from repository.deliveries import delivery_document
from repository.models import utcnow
from repository.webhooks import WebhookEvent
from tests.helpers.graphql import ADMIN, ANON, BOB, Api, Caller, make_settings, open_api

SCHEDULE_FIELDS = """id scheduleId name cron timezone paused nextFireAt lastFireAt skippedFires
  misfirePolicy catchUpLimit owner nextFireTimes(count: 3)
  jobTemplate { jobType parameters maxAttempts priority
    accessControl { readAccess adminAccess } }
  accessControl { visibility readAccess adminAccess }"""
CREATE_SCHEDULE = f"""mutation Create($input: CreateScheduleInput!) {{
  createSchedule(input: $input) {{ {SCHEDULE_FIELDS} }} }}"""
SCHEDULE = f"query One($id: ID!) {{ schedule(scheduleId: $id) {{ {SCHEDULE_FIELDS} }} }}"
WEBHOOK_FIELDS = "id webhookId url events filter { jobTypes batchId repositoryName } owner secret"
CREATE_WEBHOOK = f"""mutation Create($input: CreateWebhookInput!) {{
  createWebhook(input: $input) {{ {WEBHOOK_FIELDS} }} }}"""


def schedule_input(**fields: Any) -> dict[str, Any]:
    return {"name": "nightly report", "cron": "0 2 * * *", "timezone": "Europe/Berlin",
            "jobTemplate": {"jobType": "report", "parameters": {"scope": "all"}}, **fields}


@pytest.fixture
async def private_ok(mongo_uri: str, database_name: str, store: Store) -> AsyncIterator[Api]:
    """The API with private webhook addresses allowed (as in development), no loops."""
    settings = make_settings(database=database_name, webhook_allow_private=True,
                             dispatcher=False)
    async with open_api(settings, mongo_uri) as api:
        yield api


async def test_create_read_and_list_a_schedule(api: Api) -> None:
    # when
    created = (await api.data(CREATE_SCHEDULE, {"input": schedule_input(
        accessControl={"readAccess": ["bob"]})}))["createSchedule"]

    # then: 02:00 in Berlin, the next three fire times a day apart
    assert created["owner"] == "alice" and not created["paused"]
    assert created["misfirePolicy"] == "SKIP" and created["catchUpLimit"] == 10
    fire = datetime.fromisoformat(created["nextFireAt"])
    assert fire > datetime.now(UTC)
    assert fire.astimezone(UTC).hour in (0, 1)  # 02:00 Berlin is 00:00 or 01:00 UTC
    times = [datetime.fromisoformat(value) for value in created["nextFireTimes"]]
    assert times[0] == fire and len(times) == 3 and times == sorted(times)
    assert created["jobTemplate"]["parameters"] == {"scope": "all"}
    assert created["jobTemplate"]["priority"] == 0
    assert created["accessControl"]["adminAccess"] == ["alice"]
    sid = created["scheduleId"]
    assert (await api.data(SCHEDULE, {"id": sid}, as_=BOB))["schedule"]["name"] == \
        "nightly report"
    error = await api.error(SCHEDULE, {"id": sid}, as_=Caller("carol"))
    assert error["extensions"]["code"] == "NOT_FOUND"
    listed = await api.data("""query List($filter: ScheduleFilterInput) {
      schedules(filter: $filter, first: 10) { totalCount edges { node { scheduleId } } } }""",
                            {"filter": {"paused": False}}, as_=BOB)
    assert listed["schedules"]["totalCount"] == 1
    node = await api.data("query N($id: ID!) { node(id: $id) { __typename id } }",
                          {"id": created["id"]})
    assert node["node"] == {"__typename": "Schedule", "id": created["id"]}
    assert (await api.data("query N($id: ID!) { node(id: $id) { id } }",
                           {"id": created["id"]}, as_=ANON))["node"] is None


@pytest.mark.parametrize(("fields", "field"), [
    ({"cron": "61 * * * *"}, "cron"),
    ({"cron": "* * *"}, "cron"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"catchUpLimit": 0}, "catchUpLimit"),
    ({"jobTemplate": {"jobType": ""}}, "jobType"),
    ({"jobTemplate": {"jobType": "report", "priority": 1001}}, "priority"),
])
async def test_a_bad_schedule_is_refused_naming_its_field(api: Api, fields: dict[str, Any],
                                                           field: str) -> None:
    error = await api.error(CREATE_SCHEDULE, {"input": schedule_input(**fields)})
    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": field}


async def test_anonymous_callers_cannot_create_schedules_or_webhooks(api: Api) -> None:
    error = await api.error(CREATE_SCHEDULE, {"input": schedule_input()}, as_=ANON)
    assert error["extensions"]["code"] == "FORBIDDEN"
    error = await api.error(CREATE_WEBHOOK, {"input": {
        "url": "https://hooks.example.com/x", "events": ["JOB_STATUS_CHANGED"]}}, as_=ANON)
    assert error["extensions"]["code"] == "FORBIDDEN"


async def test_pause_resume_access_and_delete(api: Api) -> None:
    created = (await api.data(CREATE_SCHEDULE, {"input": schedule_input(
        accessControl={"readAccess": ["bob"]})}))["createSchedule"]
    sid = created["scheduleId"]

    paused = await api.data("""mutation P($id: ID!) {
      pauseSchedule(scheduleId: $id) { paused nextFireAt nextFireTimes } }""", {"id": sid})
    assert paused["pauseSchedule"] == {"paused": True, "nextFireAt": None, "nextFireTimes": []}
    forbidden = await api.error("""mutation R($id: ID!) {
      resumeSchedule(scheduleId: $id) { paused } }""", {"id": sid}, as_=BOB)
    assert forbidden["extensions"]["code"] == "FORBIDDEN"
    resumed = await api.data("""mutation R($id: ID!) {
      resumeSchedule(scheduleId: $id) { paused nextFireAt } }""", {"id": sid})
    assert resumed["resumeSchedule"]["paused"] is False
    assert resumed["resumeSchedule"]["nextFireAt"] == created["nextFireAt"]

    shared = await api.data("""mutation A($id: ID!, $acl: AccessControlInput!) {
      setScheduleAccess(scheduleId: $id, accessControl: $acl) {
        accessControl { visibility } } }""",
                            {"id": sid, "acl": {"visibility": "PUBLIC", "adminAccess": ["alice"]}})
    assert shared["setScheduleAccess"]["accessControl"]["visibility"] == "PUBLIC"
    deleted = await api.data("""mutation D($id: ID!) {
      deleteSchedule(scheduleId: $id) { scheduleId } }""", {"id": sid})
    assert deleted["deleteSchedule"]["scheduleId"] == sid
    gone = await api.error(SCHEDULE, {"id": sid})
    assert gone["extensions"]["code"] == "NOT_FOUND"


async def test_a_schedule_lists_the_jobs_it_created(api: Api, store: Store) -> None:
    # given: an hourly schedule fired (as the scheduler would) an hour after creation
    created = (await api.data(CREATE_SCHEDULE, {"input": schedule_input(
        cron="0 * * * *", timezone="UTC")}))["createSchedule"]
    schedule = await store.schedules.get(Principal("alice"), created["scheduleId"])
    assert schedule.next_fire_at is not None
    await store.schedules.fire(schedule, schedule.next_fire_at + timedelta(seconds=1))

    # when
    found = await api.data("""query Jobs($id: ID!) { schedule(scheduleId: $id) {
      lastFireAt jobs(first: 5) { totalCount edges { node { jobType scheduleId scheduledFor
        parameters status } } } } }""", {"id": created["scheduleId"]})

    # then
    jobs = found["schedule"]["jobs"]
    assert jobs["totalCount"] == 1
    [edge] = jobs["edges"]
    assert edge["node"]["scheduleId"] == created["scheduleId"]
    assert edge["node"]["scheduledFor"] == found["schedule"]["lastFireAt"] == \
        created["nextFireAt"]
    assert edge["node"]["parameters"] == {"scope": "all"} and edge["node"]["status"] == \
        "PENDING"


async def test_a_schedules_jobs_take_its_templates_priority(api: Api, store: Store) -> None:
    # given: an older job of the same type at the default priority, and a schedule whose
    # template asks for priority 7
    older = (await api.data("""mutation { createJob(input: {jobType: "report"}) {
      jobId priority } }"""))["createJob"]
    created = (await api.data(CREATE_SCHEDULE, {"input": schedule_input(
        cron="0 * * * *", timezone="UTC",
        jobTemplate={"jobType": "report", "priority": 7})}))["createSchedule"]
    assert created["jobTemplate"]["priority"] == 7 and older["priority"] == 0
    schedule = await store.schedules.get(Principal("alice"), created["scheduleId"])
    assert schedule.next_fire_at is not None

    # when: the scheduler fires it, and a worker claims
    await store.schedules.fire(schedule, schedule.next_fire_at + timedelta(seconds=1))
    claimed = await api.data("""mutation { claimJob(jobTypes: ["report"]) {
      jobId priority scheduleId } }""", as_=Caller("w1", ("worker",)))

    # then: the scheduled job, created later, goes first
    assert claimed["claimJob"]["scheduleId"] == created["scheduleId"]
    assert claimed["claimJob"]["priority"] == 7
    assert claimed["claimJob"]["jobId"] != older["jobId"]


@pytest.mark.parametrize(("url", "why"), [
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://localhost/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://10.1.2.3/hook", "private"),
    ("http://192.168.0.10/hook", "private"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://2130706433/hook", "loopback"),  # 127.0.0.1 written as a number
    ("ftp://hooks.example.com/x", "http"),
    ("https://user:pass@hooks.example.com/x", "password"),
    ("hooks.example.com/x", "http"),
])
async def test_webhook_urls_pointing_inward_are_refused(api: Api, url: str, why: str) -> None:
    error = await api.error(CREATE_WEBHOOK, {"input": {
        "url": url, "events": ["JOB_STATUS_CHANGED"]}})
    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "url"}
    assert why in error["message"]


async def test_a_webhook_is_its_owners_alone(private_ok: Api) -> None:
    api = private_ok
    # when
    created = (await api.data(CREATE_WEBHOOK, {"input": {
        "url": "http://127.0.0.1:9/hook", "events": ["JOB_STATUS_CHANGED", "JOB_PROGRESS"],
        "filter": {"jobTypes": ["pdf"]}}}))["createWebhook"]

    # then: a generated Standard Webhooks secret, seen by its owner only
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"))) == 32
    assert created["events"] == ["JOB_STATUS_CHANGED", "JOB_PROGRESS"]
    assert created["filter"] == {"jobTypes": ["pdf"], "batchId": None, "repositoryName": None}
    wid = created["webhookId"]
    one = "query W($id: ID!) { webhook(webhookId: $id) { webhookId secret } }"
    assert (await api.error(one, {"id": wid}, as_=BOB))["extensions"]["code"] == "NOT_FOUND"
    assert (await api.data(one, {"id": wid}, as_=ADMIN))["webhook"] == {
        "webhookId": wid, "secret": None}
    listing = "query L { webhooks(first: 5) { totalCount edges { node { webhookId } } } }"
    assert (await api.data(listing))["webhooks"]["totalCount"] == 1
    assert (await api.data(listing, as_=BOB))["webhooks"]["totalCount"] == 0
    node = await api.data("query N($id: ID!) { node(id: $id) { __typename } }",
                          {"id": created["id"]}, as_=BOB)
    assert node["node"] is None

    delete = "mutation D($id: ID!) { deleteWebhook(webhookId: $id) { webhookId } }"
    assert (await api.error(delete, {"id": wid}, as_=BOB))["extensions"]["code"] == "NOT_FOUND"
    assert (await api.data(delete, {"id": wid}))["deleteWebhook"]["webhookId"] == wid
    assert (await api.data(listing))["webhooks"]["totalCount"] == 0


@pytest.mark.parametrize("secret", ["plainsecret", "whsec_not*base64",
                                    "whsec_" + base64.b64encode(b"short").decode()])
async def test_a_secret_not_in_standard_webhooks_form_is_refused(private_ok: Api,
                                                                 secret: str) -> None:
    error = await private_ok.error(CREATE_WEBHOOK, {"input": {
        "url": "http://127.0.0.1:9/hook", "events": ["JOB_STATUS_CHANGED"], "secret": secret}})
    assert error["extensions"] == {"code": "VALIDATION_ERROR", "field": "secret"}


async def test_deliveries_are_listed_and_redelivered_by_their_owner(private_ok: Api,
                                                                    store: Store) -> None:
    # given: a dead delivery in the outbox of alice's webhook
    api = private_ok
    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    created = (await api.data(CREATE_WEBHOOK, {"input": {
        "url": "http://127.0.0.1:9/hook", "events": ["JOB_STATUS_CHANGED"],
        "secret": secret}}))["createWebhook"]
    assert created["secret"] == secret
    doc = delivery_document(delivery_id="msg_0001", webhook_id=created["webhookId"],
                            owner="alice", event=WebhookEvent.JOB_STATUS_CHANGED,
                            collection="jobs", object_id="job-1",
                            payload={"type": "job.status_changed", "data": {}}, now=utcnow())
    doc.update(status="DEAD", attempts=10, last_response_code=500, last_error="HTTP 500",
               next_attempt_at=None, finished_at=utcnow())
    await store.deliveries.collection.insert_one(doc)
    deliveries = """query D($id: ID!, $status: DeliveryStatus) {
      webhookDeliveries(webhookId: $id, status: $status, first: 5) {
        totalCount edges { node { id deliveryId event objectId status attempts
          lastResponseCode lastError payload } } } }"""

    # when
    dead = await api.data(deliveries, {"id": created["webhookId"], "status": "DEAD"})

    # then
    [edge] = dead["webhookDeliveries"]["edges"]
    assert edge["node"]["deliveryId"] == "msg_0001" and edge["node"]["attempts"] == 10
    assert edge["node"]["lastResponseCode"] == 500 and edge["node"]["event"] == \
        "JOB_STATUS_CHANGED"
    hidden = await api.error(deliveries, {"id": created["webhookId"]}, as_=BOB)
    assert hidden["extensions"]["code"] == "NOT_FOUND"
    redeliver = """mutation R($id: ID!) {
      redeliverWebhookDelivery(deliveryId: $id) { deliveryId status attempts } }"""
    assert (await api.error(redeliver, {"id": "msg_0001"}, as_=BOB))["extensions"][
        "code"] == "NOT_FOUND"
    again = await api.data(redeliver, {"id": "msg_0001"})
    assert again["redeliverWebhookDelivery"] == {"deliveryId": "msg_0001", "status": "PENDING",
                                                 "attempts": 0}
    node = await api.data("query N($id: ID!) { node(id: $id) { __typename } }",
                          {"id": edge["node"]["id"]})
    assert node["node"] == {"__typename": "WebhookDelivery"}
