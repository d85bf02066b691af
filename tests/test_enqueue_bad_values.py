"""Bad values at the enqueue API (tasks, the client), on a MemoryStore and an SQLiteStore.

Each is refused at the call that received it — ``@task(...)``, ``task.options(...)``,
``enqueue*``, ``submit``, ``result`` — with a beat exception naming the value, and nothing is
stored. The stores' own checks are pinned by tests/stores/test_bad_values.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from beat import (
    Client,
    InvalidJobError,
    JobContext,
    JobRequest,
    SerializationError,
    task,
)
from beat._units import LATEST_INSTANT, MAX_DURATION
from beat.stores import JobStatus, MemoryStore, SQLiteStore, Unique
from beat.stores._base import Enqueued

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture(params=["memory", "sqlite"])
async def client(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Client]:
    store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "jobs.db")
    async with Client(store) as opened:
        yield opened


@task(name="echo")
async def echo(ctx: JobContext, x: int) -> int:
    return x


async def assert_nothing_stored(client: Client) -> None:
    assert await client.list() == []


# -- far-future due times (every enqueue path) ---------------------------------------------------
FAR = [
    {"delay": 1e12},
    {"delay": 10**400},
    {"delay": timedelta(days=36_600 * 2)},
    {"at": datetime.max.replace(tzinfo=UTC)},
    {"at": LATEST_INSTANT + timedelta(microseconds=1)},
    {"at": datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))},
    {"at": datetime(1, 1, 1, 1, tzinfo=timezone(timedelta(hours=5)))},
]


@pytest.mark.parametrize("options", FAR)
async def test_a_due_time_past_what_a_store_keeps_is_refused_on_every_path(
    client: Client, options: dict[str, Any]
) -> None:
    (name,) = options
    match = rf"{name} must (be at most 100 years|lie between the year 1 and 9999-01-01)"
    with pytest.raises(InvalidJobError, match=match):
        echo.options(**options)
    with pytest.raises(InvalidJobError, match=match):
        await client.enqueue_by_name("echo", [1], **options)
    with pytest.raises(InvalidJobError, match=match):
        JobRequest.by_name("echo", [1], **options)
    await assert_nothing_stored(client)


async def test_the_latest_due_time_is_usable(client: Client) -> None:
    handle = await client.enqueue(echo.options(at=LATEST_INSTANT), 1)
    later = await client.enqueue(echo.options(delay=MAX_DURATION), 2)
    for h in (handle, later):
        assert (await client.get(h.id)).status is JobStatus.SCHEDULED
    assert len(await client.list()) == 2
    assert (await client.cancel(handle.id)).status is JobStatus.CANCELLED


async def add(ctx: JobContext, a: int, b: int) -> int:
    return a + b


# -- an argument that cannot even be shown ---------------------------------------------------------
class NoRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr failed")


@pytest.mark.parametrize(
    ("arg", "match"),
    [
        (NoRepr(), r"args\[0\]: NoRepr is not JSON.*the value: <NoRepr instance at 0x"),
        (10**5000, r"args\[0\]: an int of 16610 bits .*the value: <int of 16610 bits>"),
        ([1, 10**5000], r"args\[0\]\[1\]: an int of 16610 bits"),
    ],
    ids=["failing-repr", "long-int", "long-int-inside"],
)
async def test_an_unprintable_argument_still_gives_a_serialization_error(
    client: Client, arg: Any, match: str
) -> None:
    with pytest.raises(SerializationError, match=match):
        await client.enqueue("t", arg)
    await assert_nothing_stored(client)


# -- numbers past what is stored -------------------------------------------------------------------
async def test_huge_numbers_are_refused_typed(client: Client) -> None:
    done = await client.enqueue_by_name("t", retries=2**31 - 2)  # max_attempts 2**31 - 1
    assert (await client.get(done.id)).max_attempts == 2**31 - 1
    for options in (
        {"retries": 2**31 - 1},
        {"retries": 2**63},
        {"unique": Unique(period=10**400)},
        {"unique": Unique(period=1e300)},
        {"priority": 2**40},
    ):
        with pytest.raises(InvalidJobError, match=next(iter(options))):
            await client.enqueue_by_name("t", **options)
    with pytest.raises(InvalidJobError, match="limit must be an integer from 1 to 10000"):
        await client.list(limit=2**63)
    assert [r.id for r in await client.list()] == [done.id]


async def test_a_result_timeout_over_100_years_is_refused(client: Client) -> None:
    handle = await client.enqueue("t")
    for timeout in (10**400, 1e300, MAX_DURATION * 2, timedelta(days=36_600 * 2)):
        with pytest.raises(InvalidJobError, match="timeout must be at most 100 years"):
            await client.result(handle.id, timeout=timeout)
    store = client.store
    [job] = await store.claim("w", queues=["default"], tasks=["t"], limit=1, lease=60)
    assert await store.complete(job.id, job.attempt, "w", "done")
    assert await client.result(handle.id, timeout=MAX_DURATION) == "done"


# -- @task(...) refuses at registration what every enqueue would refuse ----------------------------
@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"name": "a\x00b"}, "task name"),
        ({"name": "caf\udce9"}, "task name"),
        ({"queue": "q\x00"}, "queue"),
        ({"queue": ""}, "queue"),
        ({"priority": 2**40}, "priority must fit in 32 bits"),
        ({"retries": 2**63}, "retries"),
        ({"timeout": 10**400}, "timeout"),
        ({"unique": Unique(key="")}, r"unique\.key"),
        ({"unique": Unique(period=-5)}, r"unique\.period"),
        ({"unique": Unique(on_conflict="bogus")}, r"unique\.on_conflict"),  # type: ignore[arg-type]
        ({"unique": Unique(statuses=frozenset({None}))}, r"unique\.statuses"),  # type: ignore[arg-type]
        ({"unique": "nightly"}, "unique must be a beat.stores.Unique"),
    ],
)
async def test_the_task_decorator_refuses_what_no_enqueue_accepts(
    options: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidJobError, match=match):
        task(**options)(add)
    if "name" not in options:
        with pytest.raises(InvalidJobError, match=match):
            echo.options(**options)


# -- meta, nesting, enqueue_many, a parameter named self -----------------------------------------
@pytest.mark.parametrize(
    ("meta", "match"),
    [
        (5, "meta must be a dict"),
        ("ab", "meta must be a dict"),
        ([("a", 1)], "meta must be a dict"),
        ({1: "x"}, "dict key 1"),
        ({"a": "caf\udce9"}, r"meta\['a'\]"),
    ],
)
async def test_submit_refuses_meta_that_is_not_a_json_dict(
    client: Client, meta: Any, match: str
) -> None:
    with pytest.raises(SerializationError, match=match):
        await client.submit("t", [], {}, meta=meta)
    await assert_nothing_stored(client)
    handle = await client.submit("t", [], {}, meta={"a": 1})
    assert (await client.get(handle.id)).meta == {"a": 1}


async def test_an_argument_nested_5000_deep_is_a_serialization_error(client: Client) -> None:
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(SerializationError, match=r"'t' args\[0\]: nested too deeply"):
        await client.enqueue("t", deep)
    await assert_nothing_stored(client)


@pytest.mark.parametrize("requests", [None, 5, JobRequest.by_name("t"), "t"])
async def test_enqueue_many_refuses_what_is_not_a_list_of_requests(
    client: Client, requests: Any
) -> None:
    with pytest.raises(InvalidJobError, match="enqueue_many takes a list"):
        await client.enqueue_many(requests)
    await assert_nothing_stored(client)


@task(name="selfish")
async def selfish(ctx: JobContext, self: int, other: int) -> int:
    return self + other


async def test_a_task_may_have_a_parameter_named_self(client: Client) -> None:
    selfish.bind(client)
    plain = await selfish.enqueue(self=1, other=2)
    with_options = await selfish.options(priority=1).enqueue(self=3, other=4)
    assert (await client.get(plain.id)).kwargs == {"self": 1, "other": 2}
    assert (await client.get(with_options.id)).kwargs == {"self": 3, "other": 4}


# -- a conflict's handle names the job found ---------------------------------------------------
async def test_a_conflicts_handle_names_the_existing_jobs_task_even_when_not_told(
    tmp_path: Path,
) -> None:
    """A store of one's own may answer ``enqueue_prepared`` without the task of a conflict's
    job (``Enqueued(id, True)``): the client then reads it."""

    class Terse(MemoryStore):
        async def enqueue_prepared(self, jobs: Any) -> list[Enqueued]:
            return [Enqueued(e.id, e.conflict) for e in await super().enqueue_prepared(jobs)]

    async with Client(Terse()) as client:
        first = await client.enqueue_by_name("reports.build", unique=Unique(key="nightly"))
        again = await client.enqueue_by_name("emails.send", unique=Unique(key="nightly"))
        assert not first.conflict and first.task == "reports.build"
        assert again.conflict and again.id == first.id and again.task == "reports.build"
