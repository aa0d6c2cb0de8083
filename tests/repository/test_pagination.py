"""Keyset pagination over (created_at, _id): cursors, page requests, and paging real data."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from repository.batches import BatchFilter, JobSpec
from repository.database import Store
from repository.documentation_jobs import DocumentationJobFilter, documentation_job_to_document
from repository.errors import ValidationError
from repository.jobs import JobFilter
from repository.limits import Limits
from repository.models import AccessControl, DocumentationJob, JobStatus, SecretaryJob
from repository.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Page,
    PageRequest,
    decode_cursor,
    encode_cursor,
)

from .support import ALICE, BOB, ROOT, at, connect, insert_jobs, make_job, seeded


def raw_cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def newest_first(jobs: list[SecretaryJob]) -> list[str]:
    return [job.job_id for job in sorted(jobs, key=lambda j: (j.created_at, j.job_id),
                                         reverse=True)]


# -- cursors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "created_at",
    [at(0), at(1), at(999), at(86_400_123), datetime(1999, 12, 31, 23, 59, 59, 999000, UTC),
     datetime(2038, 1, 19, 3, 14, 8, 1000, UTC)],
)
def test_cursor_round_trip_gives_the_same_position(created_at: datetime) -> None:
    # when
    cursor = encode_cursor(created_at, "job-42")

    # then
    assert decode_cursor("after", cursor) == (created_at, "job-42")
    assert "=" not in cursor
    assert cursor.isascii()


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!!",
        "not base64 at all",
        raw_cursor({"millis": 1, "id": "x"}),
        raw_cursor([1]),
        raw_cursor([1, 2, 3]),
        raw_cursor(["1", "x"]),
        raw_cursor([1.5, "x"]),
        raw_cursor([True, "x"]),
        raw_cursor([1, None]),
        raw_cursor([10**20, "x"]),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b"[1, \"x\"").decode(),
    ],
    ids=["empty", "bangs", "spaces", "object", "short", "long", "string-millis",
         "float-millis", "bool-millis", "null-id", "overflow", "not-utf8", "broken-json"],
)
def test_decode_malformed_cursor_raises_validation_error(cursor: str) -> None:
    # when / then
    with pytest.raises(ValidationError) as caught:
        decode_cursor("after", cursor)
    assert caught.value.field == "after"
    assert caught.value.message == "after: is not a valid cursor"


# -- page requests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (PageRequest(first=1, last=1), "first"),
        (PageRequest(first=-1), "first"),
        (PageRequest(first=MAX_PAGE_SIZE + 1), "first"),
        (PageRequest(last=-5), "last"),
        (PageRequest(last=MAX_PAGE_SIZE + 1), "last"),
        (PageRequest(first=5, after="garbage!"), "after"),
        (PageRequest(last=5, before="garbage!"), "before"),
    ],
)
def test_validate_bad_page_request_raises_validation_error(
    request_: PageRequest, field: str
) -> None:
    # when / then
    with pytest.raises(ValidationError) as caught:
        request_.validated()
    assert caught.value.field == field


def test_validate_page_request_at_the_bounds_passes() -> None:
    # given
    cursor = encode_cursor(at(0), "x")

    # when / then (nothing raised)
    for request_ in (PageRequest(), PageRequest(first=0), PageRequest(first=MAX_PAGE_SIZE),
                     PageRequest(last=MAX_PAGE_SIZE, before=cursor),
                     PageRequest(first=3, after=cursor)):
        request_.validated()
    assert PageRequest().validated().size == DEFAULT_PAGE_SIZE
    assert PageRequest(last=7).backwards and PageRequest(before=cursor).backwards
    assert not PageRequest(first=3, before=cursor).backwards


def test_the_default_page_size_never_exceeds_the_configured_maximum() -> None:
    cursor = encode_cursor(at(0), "x")

    assert PageRequest().validated(max_page_size=5).size == 5
    assert PageRequest(after=cursor).validated(max_page_size=5).size == 5
    backwards = PageRequest(before=cursor).validated(max_page_size=5)
    assert backwards.size == 5 and backwards.backwards
    assert PageRequest().validated(max_page_size=500).size == DEFAULT_PAGE_SIZE


# -- paging through 1,000 jobs -------------------------------------------------------------------


@pytest.fixture(scope="module")
async def thousand_data(mongo_uri: str) -> AsyncIterator[tuple[str, list[str]]]:
    """1,000 jobs, read by several tests: 400 at distinct instants, 600 in groups of six
    sharing an instant; inserted in one round trip, in an order unrelated to their
    position. Yields the database name and the job ids newest first."""
    jobs = [make_job(job_type="pdf", created_at=at(i * 7 + 3)) for i in range(400)]
    jobs += [make_job(job_type="pdf", created_at=at(5_000 + (i // 6) * 2)) for i in range(600)]

    async def seed(store: Store) -> list[str]:
        await insert_jobs(store, sorted(jobs, key=lambda job: job.job_id))
        return newest_first(jobs)

    async with seeded(mongo_uri, seed) as data:
        yield data


@pytest.fixture
async def thousand(
    mongo_uri: str, thousand_data: tuple[str, list[str]]
) -> AsyncIterator[tuple[Store, list[str]]]:
    name, expected = thousand_data
    async with connect(mongo_uri, name) as store:
        yield store, expected


@pytest.mark.slow
async def test_list_pages_forward_through_1000_jobs_without_duplicate_or_gap(
    thousand: tuple[Store, list[str]],
) -> None:
    store, expected = thousand
    # given
    seen: list[str] = []
    after: str | None = None
    pages: list[Page[SecretaryJob]] = []

    # when
    while True:
        page = await store.jobs.list(ALICE, JobFilter(), PageRequest(first=97, after=after))
        pages.append(page)
        seen += [job.job_id for job in page.items]
        if not page.has_next_page:
            break
        after = page.cursors[-1]
        assert len(pages) <= 20

    # then
    assert seen == expected
    assert [len(page.items) for page in pages] == [97] * 10 + [30]
    assert pages[0].has_previous_page is False
    assert all(page.has_previous_page for page in pages[1:])
    assert all(len(page.cursors) == len(page.items) for page in pages)


async def test_list_pages_backward_through_1000_jobs_without_duplicate_or_gap(
    thousand: tuple[Store, list[str]],
) -> None:
    store, expected = thousand
    # given
    chunks: list[list[str]] = []
    before: str | None = None
    pages: list[Page[SecretaryJob]] = []

    # when
    while True:
        page = await store.jobs.list(ALICE, JobFilter(), PageRequest(last=97, before=before))
        pages.append(page)
        chunks.append([job.job_id for job in page.items])
        if not page.has_previous_page:
            break
        before = page.cursors[0]
        assert len(pages) <= 20

    # then each page is newest first, and the pages cover everything once
    seen = [job_id for chunk in reversed(chunks) for job_id in chunk]
    assert seen == expected
    assert [len(chunk) for chunk in chunks] == [97] * 10 + [30]
    assert pages[0].has_next_page is False
    assert all(page.has_next_page for page in pages[1:])


async def test_list_pages_meet_in_the_middle_from_both_ends(
    thousand: tuple[Store, list[str]],
) -> None:
    store, expected = thousand
    # given the cursor of the 100th job, in the middle of six jobs sharing one instant
    probe = await store.jobs.list(ALICE, JobFilter(), PageRequest(first=100))
    cursor = probe.cursors[-1]
    assert probe.items[-1].job_id == expected[99]
    assert probe.items[-1].created_at == probe.items[-3].created_at == probe.items[-4].created_at

    # when
    older = await store.jobs.list(ALICE, JobFilter(), PageRequest(first=5, after=cursor))
    newer = await store.jobs.list(ALICE, JobFilter(), PageRequest(last=5, before=cursor))

    # then
    assert [job.job_id for job in older.items] == expected[100:105]
    assert [job.job_id for job in newer.items] == expected[94:99]


async def test_list_pages_through_a_filtered_subset(store: Store) -> None:
    # given 90 jobs, every third one FAILED, several sharing an instant
    jobs = [make_job(status=JobStatus.FAILED if i % 3 == 0 else JobStatus.PENDING,
                     created_at=at(i // 4)) for i in range(90)]
    await insert_jobs(store, jobs)
    expected = newest_first([job for job in jobs if job.status is JobStatus.FAILED])
    seen: list[str] = []
    after: str | None = None

    # when
    while True:
        page = await store.jobs.list(ALICE, JobFilter(status=JobStatus.FAILED),
                                     PageRequest(first=7, after=after))
        seen += [job.job_id for job in page.items]
        if not page.has_next_page:
            break
        after = page.cursors[-1]

    # then
    assert seen == expected
    assert len(seen) == 30


async def test_list_with_first_zero_returns_no_items(
    thousand: tuple[Store, list[str]],
) -> None:
    # given
    store, _ = thousand

    # when
    page = await store.jobs.list(ALICE, JobFilter(), PageRequest(first=0))

    # then
    assert page.items == [] and page.cursors == []


async def test_list_with_default_page_size_returns_twenty(
    thousand: tuple[Store, list[str]],
) -> None:
    # given
    store, expected = thousand

    # when
    page = await store.jobs.list(ALICE, JobFilter(), PageRequest())

    # then
    assert [job.job_id for job in page.items] == expected[:DEFAULT_PAGE_SIZE]
    assert page.has_next_page is True


# -- refused page requests ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "page",
    [
        PageRequest(first=10, after="definitely-not-a-cursor"),
        PageRequest(last=10, before=raw_cursor(["x", "y"])),
        PageRequest(first=MAX_PAGE_SIZE + 1),
        PageRequest(last=1000),
        PageRequest(first=1, last=1),
    ],
    ids=["bad-after", "bad-before", "first-too-big", "last-too-big", "first-and-last"],
)
@pytest.mark.parametrize("collection", ["jobs", "batches", "documentation_jobs"])
async def test_list_with_bad_page_request_raises_validation_error(
    thousand: tuple[Store, list[str]], page: PageRequest, collection: str
) -> None:
    # given
    store, _ = thousand
    filters = {"jobs": JobFilter(), "batches": BatchFilter(),
               "documentation_jobs": DocumentationJobFilter()}

    # when / then
    with pytest.raises(ValidationError):
        await getattr(store, collection).list(ALICE, filters[collection], page)


async def test_list_above_a_configured_smaller_maximum_raises_validation_error(
    thousand: tuple[Store, list[str]],
) -> None:
    # given
    store, _ = thousand
    limited = Store(store.client, store.database_name, Limits(max_page_size=10))

    # when / then
    assert len((await limited.jobs.list(ALICE, JobFilter(), PageRequest(last=10))).items) == 10
    with pytest.raises(ValidationError) as caught:
        await limited.jobs.list(ALICE, JobFilter(), PageRequest(first=11))
    assert caught.value.field == "first"
    assert "10" in caught.value.message


async def test_list_up_to_a_configured_larger_maximum_returns_the_full_page(
    thousand: tuple[Store, list[str]],
) -> None:
    # given
    store, expected = thousand
    roomy = Store(store.client, store.database_name, Limits(max_page_size=500))

    # when
    page = await roomy.jobs.list(ALICE, JobFilter(), PageRequest(first=150))

    # then
    assert [job.job_id for job in page.items] == expected[:150]
    assert page.has_next_page is True
    with pytest.raises(ValidationError):
        await roomy.jobs.list(ALICE, JobFilter(), PageRequest(first=501))


# -- the other collections ----------------------------------------------------------------------


async def test_list_batches_pages_without_duplicate_or_gap(store: Store) -> None:
    # given
    ids = []
    for i in range(12):
        batch = await store.batches.create(ALICE, batch_name=f"b{i}", jobs=[JobSpec("a")])
        await store.batches.collection.update_one(
            {"_id": batch.batch_id}, {"$set": {"created_at": at(i // 3)}})
        ids.append((at(i // 3), batch.batch_id))
    expected = [batch_id for _, batch_id in sorted(ids, reverse=True)]
    seen: list[str] = []
    after: str | None = None

    # when
    while True:
        page = await store.batches.list(ALICE, BatchFilter(), PageRequest(first=5, after=after))
        seen += [batch.batch_id for batch in page.items]
        if not page.has_next_page:
            break
        after = page.cursors[-1]

    # then
    assert seen == expected


async def test_list_documentation_jobs_pages_without_duplicate_or_gap(store: Store) -> None:
    # given
    jobs = [DocumentationJob(repository_path="/r", repository_name="r", output_directory="/o",
                             created_at=at(i // 2), updated_at=at(i // 2),
                             access_control=AccessControl(read_access=["bob"]))
            for i in range(11)]
    await store.documentation_jobs.collection.insert_many(
        [documentation_job_to_document(job) for job in jobs])
    expected = [job.job_id for job in sorted(jobs, key=lambda j: (j.created_at, j.job_id),
                                             reverse=True)]
    chunks: list[list[str]] = []
    before: str | None = None

    # when
    while True:
        page = await store.documentation_jobs.list(
            BOB, DocumentationJobFilter(), PageRequest(last=4, before=before))
        chunks.append([job.job_id for job in page.items])
        if not page.has_previous_page:
            break
        before = page.cursors[0]

    # then
    assert [job_id for chunk in reversed(chunks) for job_id in chunk] == expected
    assert (await store.documentation_jobs.list(ROOT, DocumentationJobFilter(),
                                                PageRequest(first=100))).items == sorted(
        jobs, key=lambda j: (j.created_at, j.job_id), reverse=True)
