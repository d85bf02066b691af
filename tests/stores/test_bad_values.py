"""Conformance: values no store could keep (or read back) are refused where they are given.

Every backend alike: a due time past :data:`LATEST_INSTANT` (or one that cannot even be put
in UTC), a duration over :data:`MAX_DURATION`, an integer past 32 bits, text that is not
UTF-8 (lone surrogates), JSON nested past :data:`MAX_JSON_DEPTH` or holding an int too long
to print: a typed error at the call, naming the value, and nothing stored. Error and log text
is the exception: it is recorded with the surrogates replaced, so a failure is never lost.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beat import InvalidJobError, InvalidScheduleError, JobContext, Scheduler
from beat._units import LATEST_INSTANT, MAX_DURATION
from beat.stores import (
    BatchSerializationError,
    JobStatus,
    LogEntry,
    NewJob,
    PruneRule,
    ScheduleSpec,
    SerializationError,
    Store,
    Unique,
)
from beat.stores._base import (
    MAX_INT32,
    MAX_JSON_DEPTH,
    MAX_LIST_LIMIT,
    _check_json,
    _TooDeep,
    encode_json,
)
from beat.testing import _as_stored, drain

from ._util import claim, claim_one, one

pytestmark = pytest.mark.asyncio

SURROGATE = "caf\udce9"  # b"caf\xe9" decoded with errors="surrogateescape"
MICROSECOND = timedelta(microseconds=1)


def nested(depth: int) -> list[Any]:
    """``depth`` lists, each holding the next: ``[[[]]]`` for 3."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


async def assert_nothing_stored(store: Store) -> None:
    assert await store.list_jobs() == []


# -- due times -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "at",
    [
        datetime.max.replace(tzinfo=UTC),
        LATEST_INSTANT + MICROSECOND,
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),  # no UTC form
        datetime(1, 1, 1, 1, tzinfo=timezone(timedelta(hours=5))),  # before year 1 in UTC
    ],
)
async def test_a_due_time_no_store_can_keep_is_refused(store: Store, at: datetime) -> None:
    with pytest.raises(InvalidJobError, match=r"jobs\[1\]\.scheduled_at .*9999-01-01"):
        await store.enqueue([NewJob("t"), NewJob("t", scheduled_at=at)])
    await assert_nothing_stored(store)


async def test_the_latest_due_time_is_kept_and_read_back_by_every_call(store: Store) -> None:
    at = LATEST_INSTANT.astimezone(timezone(timedelta(hours=14)))  # offsets change nothing
    job = await one(store, scheduled_at=at)
    assert job.scheduled_at == LATEST_INSTANT and job.status is JobStatus.SCHEDULED
    assert (await store.get(job.id)).scheduled_at == LATEST_INSTANT  # type: ignore[union-attr]
    assert [r.id for r in await store.list_jobs()] == [job.id]
    assert await claim(store) == []  # not due
    assert (await store.cancel(job.id)).status is JobStatus.CANCELLED
    assert (await store.get(job.id)).status is JobStatus.CANCELLED  # type: ignore[union-attr]


offsets = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(at=st.datetimes(timezones=offsets))
async def test_every_due_time_is_either_refused_or_read_back(store: Store, at: datetime) -> None:
    """Property: no aware datetime can poison a store. Refused (nothing stored) or stored,
    and then every read of it works and gives the instant back (the memory store keeps
    float epochs: exact to a few microseconds this far from 1970)."""
    try:
        utc: datetime | None = at.astimezone(UTC)
    except OverflowError:
        utc = None
    storable = utc is not None and utc <= LATEST_INSTANT
    try:
        job = await one(store, scheduled_at=at)
    except InvalidJobError:
        assert not storable
        return
    assert storable and utc is not None
    for record in (job, await store.get(job.id), await store.cancel(job.id)):
        assert record is not None
        assert abs(record.scheduled_at - utc) <= 64 * MICROSECOND
    assert job.id in {r.id for r in await store.list_jobs(limit=MAX_LIST_LIMIT)}


@pytest.mark.parametrize("delay", [MAX_DURATION * 1.001, 1e13, 1e300, 10**400])
async def test_a_delay_over_100_years_is_refused(store: Store, delay: float) -> None:
    with pytest.raises(InvalidJobError, match=r"jobs\[0\]\.delay must be at most 100 years"):
        await store.enqueue([NewJob("t", delay=delay)])
    await assert_nothing_stored(store)


async def test_a_delay_of_100_years_is_kept_and_read_back(store: Store) -> None:
    job = await one(store, delay=MAX_DURATION)
    assert job.scheduled_at - job.created_at == timedelta(seconds=MAX_DURATION)
    assert (await store.get(job.id)).status is JobStatus.SCHEDULED  # type: ignore[union-attr]
    assert (await store.cancel(job.id)).status is JobStatus.CANCELLED


async def test_a_retry_time_no_store_can_keep_is_refused_and_the_job_left_running(
    store: Store,
) -> None:
    await one(store)
    job = await claim_one(store)
    with pytest.raises(InvalidJobError, match="retry_at"):
        await store.fail(
            job.id, job.attempt, "w1", error_type="E", message="m", retry_at=datetime.max
        )
    with pytest.raises(InvalidJobError, match="retry_at"):
        await store.fail(
            job.id,
            job.attempt,
            "w1",
            error_type="E",
            message="m",
            retry_at=LATEST_INSTANT + MICROSECOND,
        )
    assert (await store.get(job.id)).status is JobStatus.RUNNING  # type: ignore[union-attr]


async def test_a_stored_schedule_past_the_latest_instant_is_refused(store: Store) -> None:
    for at in (LATEST_INSTANT + MICROSECOND, datetime.max.replace(tzinfo=UTC)):
        with pytest.raises(InvalidScheduleError, match="'once': at must lie between"):
            await store.put_schedule(ScheduleSpec("once", "t", at=at))
        with pytest.raises(InvalidScheduleError, match="at must lie between"):
            await store.put_schedule(ScheduleSpec("once", "t", args=[SURROGATE], at=at))
    with pytest.raises(SerializationError, match=r"'once': args\[0\]: .*lone surrogates"):
        await store.put_schedule(ScheduleSpec("once", "t", args=[SURROGATE], every=60))
    assert await store.list_schedules() == []
    kept = await store.put_schedule(ScheduleSpec("once", "t", at=LATEST_INSTANT))
    assert kept.at == LATEST_INSTANT
    assert [r.at for r in await store.list_schedules()] == [LATEST_INSTANT]


# -- integers and durations the databases cannot bind ------------------------------------------
@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"max_attempts": MAX_INT32 + 1}, "max_attempts"),
        ({"max_attempts": 2**63}, "max_attempts"),
        ({"priority": 2**31}, "priority"),
        ({"priority": -(2**31) - 1}, "priority"),
        ({"unique": Unique(period=MAX_DURATION * 2)}, "period"),
        ({"unique": Unique(period=10**400)}, "period"),
        ({"unique": Unique(statuses=frozenset({None}))}, "None"),  # type: ignore[arg-type]
    ],
)
async def test_out_of_range_options_store_nothing(
    store: Store, bad: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidJobError, match=match):
        await store.enqueue([NewJob("t"), NewJob("t", **bad)])
    await assert_nothing_stored(store)


async def test_the_32_bit_extremes_are_kept(store: Store) -> None:
    job = await one(store, max_attempts=MAX_INT32, priority=-(2**31))
    other = await one(store, priority=MAX_INT32)
    assert (await store.get(job.id)).max_attempts == MAX_INT32  # type: ignore[union-attr]
    assert [r.id for r in await claim(store, limit=MAX_INT32)] == [other.id, job.id]


async def test_list_limit_is_at_most_10000(store: Store) -> None:
    await one(store)
    assert len(await store.list_jobs(limit=MAX_LIST_LIMIT)) == 1
    for limit in (MAX_LIST_LIMIT + 1, 2**63):
        with pytest.raises(InvalidJobError, match="limit must be an integer from 1 to 10000"):
            await store.list_jobs(limit=limit)


async def test_claim_and_lease_bounds(store: Store) -> None:
    await one(store)
    with pytest.raises(InvalidJobError, match="limit"):
        await claim(store, limit=2**63)
    for lease in (MAX_DURATION * 2, 1e300, 10**400):
        with pytest.raises(InvalidJobError, match="lease must be at most 100 years"):
            await claim(store, lease=lease)
    job = await claim_one(store)  # nothing was claimed by the refused calls
    assert job.attempt == 1
    with pytest.raises(InvalidJobError, match="lease"):
        await store.heartbeat("w1", [(job.id, job.attempt)], 1e300)


async def test_a_prune_age_over_100_years_is_refused(store: Store) -> None:
    with pytest.raises(InvalidJobError, match=r"rules\[0\]\.max_age"):
        await store.prune([PruneRule(JobStatus.SUCCEEDED, max_age=1e300)])


# -- text that is not UTF-8 ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("job", "where"),
    [
        (NewJob("t", args=[SURROGATE]), r"args\[0\]"),
        (NewJob("t", args=[1, {"k": ["x", SURROGATE]}]), r"args\[1\]\['k'\]\[1\]"),
        (NewJob("t", kwargs={"name": SURROGATE}), r"kwargs\['name'\]"),
        (NewJob("t", kwargs={SURROGATE: 1}), "kwargs: dict key"),
        (NewJob("t", args=[{SURROGATE: 1}]), r"args\[0\]: dict key"),
        (NewJob("t", meta={"m": SURROGATE}), r"meta\['m'\]"),
    ],
)
async def test_lone_surrogates_in_json_are_refused_naming_the_path(
    store: Store, job: NewJob, where: str
) -> None:
    with pytest.raises(SerializationError, match=rf"jobs\[1\]\.{where}"):
        await store.enqueue([NewJob("t"), job])
    await assert_nothing_stored(store)


@pytest.mark.parametrize(
    "job",
    [
        NewJob(SURROGATE),
        NewJob("t", queue=SURROGATE),
        NewJob("t", unique=Unique(key=SURROGATE)),
    ],
)
async def test_lone_surrogates_in_names_are_refused(store: Store, job: NewJob) -> None:
    with pytest.raises(InvalidJobError, match="lone surrogates"):
        await store.enqueue([job])
    await assert_nothing_stored(store)
    with pytest.raises(InvalidJobError, match="lone surrogates"):
        await store.list_jobs(task=SURROGATE)


async def test_a_result_with_a_lone_surrogate_is_refused_and_the_job_left_running(
    store: Store,
) -> None:
    await one(store)
    await one(store)
    first, second = await claim(store)
    with pytest.raises(SerializationError, match=r"result\[0\]: .*lone surrogates"):
        await store.complete(first.id, first.attempt, "w1", [SURROGATE])
    with pytest.raises(BatchSerializationError) as caught:
        await store.complete_many(
            [
                (first.id, first.attempt, "w1", {"k": SURROGATE}),
                (second.id, second.attempt, "w1", "fine"),
            ]
        )
    assert caught.value.recorded == [False, True] and list(caught.value.errors) == [0]
    assert "lone surrogates" in str(caught.value.errors[0])
    # The store still reads back whole: nothing undecodable was written.
    records = {r.id: r for r in await store.list_jobs()}
    assert records[first.id].status is JobStatus.RUNNING and records[first.id].result is None
    assert records[second.id].status is JobStatus.SUCCEEDED
    assert records[second.id].result == "fine"


async def test_progress_with_a_lone_surrogate_is_refused(store: Store) -> None:
    await one(store)
    job = await claim_one(store)
    assert await store.set_progress(job.id, job.attempt, "w1", {"step": 1})
    with pytest.raises(SerializationError, match="progress"):
        await store.set_progress(job.id, job.attempt, "w1", {"step": SURROGATE})
    assert (await store.get(job.id)).progress == {"step": 1}  # type: ignore[union-attr]


async def test_error_and_log_text_with_lone_surrogates_is_recorded_replaced(
    store: Store,
) -> None:
    await one(store)
    job = await claim_one(store)
    at = datetime.now(UTC)
    await store.add_logs(job.id, 1, [LogEntry(1, at, "ERROR", f"l{SURROGATE}", SURROGATE)])
    assert await store.fail(
        job.id,
        job.attempt,
        "w1",
        error_type=f"mod.{SURROGATE}Error",
        message=f"No such file: {SURROGATE}.txt",
        traceback=f"Traceback ...\n  {SURROGATE}\x00",
    )
    dead = await store.get(job.id)
    assert dead is not None and dead.status is JobStatus.DEAD
    assert dead.error_type == "mod.caf\ufffdError"
    assert dead.error_message == "No such file: caf\ufffd.txt"
    assert dead.error_traceback == "Traceback ...\n  caf\ufffd\ufffd"
    [entry] = await store.get_logs(job.id)
    assert (entry.logger, entry.message) == ("lcaf\ufffd", "caf\ufffd")
    assert [r.id for r in await store.list_jobs()] == [job.id]


# -- JSON nesting and long ints --------------------------------------------------------------------
async def test_nesting_is_at_most_max_json_depth(store: Store) -> None:
    """The argument list counts as one level: an argument may nest one less."""
    deepest = await one(store, args=[nested(MAX_JSON_DEPTH - 1)])
    assert (await store.get(deepest.id)).args == [nested(MAX_JSON_DEPTH - 1)]  # type: ignore[union-attr]
    for depth in (MAX_JSON_DEPTH, 5000):
        with pytest.raises(SerializationError, match=r"jobs\[0\]\.args: nested too deeply"):
            await store.enqueue([NewJob("t", args=[nested(depth)])])
    deep_dicts: Any = {}
    for _ in range(MAX_JSON_DEPTH):
        deep_dicts = {"k": deep_dicts}
    with pytest.raises(SerializationError, match=r"jobs\[0\]\.kwargs: nested too deeply"):
        await store.enqueue([NewJob("t", kwargs=deep_dicts)])
    assert [r.id for r in await store.list_jobs()] == [deepest.id]


async def test_an_int_too_long_to_print_is_refused_naming_its_path(store: Store) -> None:
    with pytest.raises(SerializationError, match=r"args\[0\]\['n'\]: an int of 16610 bits"):
        await store.enqueue([NewJob("t", args=[{"n": 10**5000}])])
    await assert_nothing_stored(store)


# -- through the worker ----------------------------------------------------------------------------
async def test_a_worker_records_such_failures_instead_of_losing_them(store: Store) -> None:
    """A result with a lone surrogate fails its job with beat.SerializationError; an
    exception whose message holds one (a file name) is recorded with it replaced. Neither
    job is left running, and every later read works."""
    scheduler = Scheduler(store=store)

    @scheduler.task(name="returns_bad_text", retries=0)
    async def returns_bad_text(ctx: JobContext) -> str:
        return SURROGATE

    @scheduler.task(name="raises_bad_text", retries=0)
    async def raises_bad_text(ctx: JobContext) -> None:
        raise FileNotFoundError(f"{SURROGATE}.txt")

    bad_result = await returns_bad_text.enqueue()
    bad_error = await raises_bad_text.enqueue()
    assert await drain(scheduler) == 2
    result = await store.get(bad_result.id)
    assert result is not None and result.status is JobStatus.DEAD
    assert result.error_type == "beat.SerializationError"
    assert "lone surrogates" in (result.error_message or "")
    error = await store.get(bad_error.id)
    assert error is not None and error.status is JobStatus.DEAD
    assert error.error_type == "builtins.FileNotFoundError"
    assert error.error_message == "caf\ufffd.txt"
    assert len(await store.list_jobs()) == 2


# -- the fast path agrees with the walk ------------------------------------------------------------
texts = st.text(alphabet=st.characters(categories=["Ll", "Cs", "Nd"]), max_size=4)
values = st.recursive(
    st.none() | st.integers() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(values, st.integers(0, MAX_JSON_DEPTH + 2))
async def test_encode_json_agrees_with_the_walk_on_surrogates_and_depth(
    value: Any, depth: int
) -> None:
    """``encode_json``'s fast path (no walk unless the text shows a reason) refuses exactly
    what the full walk refuses, for surrogates anywhere and nesting around the limit."""
    for _ in range(depth):
        value = [value]
    try:
        _check_json(value, "v", [])
        walk_refuses = False
    except (SerializationError, _TooDeep):  # _TooDeep: encode_json reports it as too deep
        walk_refuses = True
    try:
        text = encode_json(value, "v")
    except SerializationError:
        assert walk_refuses
        return
    assert not walk_refuses
    assert json.loads(text) == _as_stored(value)
    text.encode("utf-8")  # storable as UTF-8
