"""SQLiteStore: another process's commit wakes a waiter without polling (the doorbell), and
claims commit without a flush while every other transition keeps its durability.

Every store here polls only once a minute, so a waiter that returns before its timeout was
woken by the doorbell (a ring from the other process), not by a poll.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from beat.stores import JobStatus, NewJob, SQLiteStore
from beat.stores._doorbell import FINISHED, NEW, Doorbell, wake_directory

from ._util import parked

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix-domain sockets"),
]

ROOT = Path(__file__).resolve().parents[2]
NO_POLL = 60.0  # a poll interval no test waits for
WAIT = 30.0

# Opens the store, says "ready", then per input line: "enqueue" or "finish <id>".
_OTHER = textwrap.dedent(
    """
    import asyncio, sys, uuid
    from beat.stores import NewJob, SQLiteStore

    async def main(path):
        async with SQLiteStore(path, poll_interval=60) as store:
            print("ready", flush=True)
            loop = asyncio.get_running_loop()
            while line := (await loop.run_in_executor(None, sys.stdin.readline)).split():
                if line[0] == "enqueue":
                    [job] = await store.enqueue([NewJob("t")])
                    print(job.id, flush=True)
                else:
                    [job] = await store.claim("other", queues=["default"], tasks=["t"],
                                              limit=1, lease=30)
                    await store.complete(job.id, job.attempt, "other", "done")
                    print("finished", flush=True)

    asyncio.run(main(sys.argv[1]))
    """
)


class Other:
    """The other process, driven line by line."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _OTHER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def say(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if line:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        self.proc.communicate(timeout=30)  # closes stdin: the other process exits
        assert self.proc.returncode == 0


async def test_an_enqueue_in_another_process_wakes_wait_for_jobs(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with SQLiteStore(path, poll_interval=NO_POLL) as store:
        other = Other(path)
        try:
            assert await asyncio.to_thread(other.say, "") == "ready"
            loop = asyncio.get_running_loop()
            waiting = asyncio.create_task(store.wait_for_jobs(WAIT))
            await asyncio.sleep(0)  # the waiter is registered before the other enqueues
            started = loop.time()
            job_id = await asyncio.to_thread(other.say, "enqueue")
            await asyncio.wait_for(waiting, WAIT)
            assert loop.time() - started < WAIT / 2, "woken by the timeout, not the doorbell"
            [claimed] = await store.claim("me", queues=["default"], tasks=["t"], limit=1, lease=5)
            assert str(claimed.id) == job_id
        finally:
            await asyncio.to_thread(other.close)


async def test_a_completion_in_another_process_wakes_wait_finished(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with SQLiteStore(path, poll_interval=NO_POLL) as store:
        [job] = await store.enqueue([NewJob("t")])
        other = Other(path)
        try:
            assert await asyncio.to_thread(other.say, "") == "ready"
            loop = asyncio.get_running_loop()
            async with parked(store):  # it read the job once (still queued)
                waiting = asyncio.create_task(store.wait_finished(job.id, WAIT))
            started = loop.time()
            assert await asyncio.to_thread(other.say, "finish") == "finished"
            record = await asyncio.wait_for(waiting, WAIT)
            assert loop.time() - started < WAIT / 2, "woken by the timeout, not the doorbell"
            assert record.status is JobStatus.SUCCEEDED
            assert record.result == "done"
        finally:
            await asyncio.to_thread(other.close)


async def test_a_socket_left_by_a_dead_process_is_removed_and_rings_go_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    directory = wake_directory(path)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    # A socket file nobody listens on any more, as a SIGKILLed process leaves behind.
    stale = directory / "999999-dead"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(stale))
    sock.close()
    async with SQLiteStore(path, poll_interval=NO_POLL) as waiter:
        async with SQLiteStore(path, poll_interval=NO_POLL) as enqueuer:
            waiting = asyncio.create_task(waiter.wait_for_jobs(WAIT))
            await asyncio.sleep(0)
            await enqueuer.enqueue([NewJob("t")])
            await asyncio.wait_for(waiting, WAIT / 2)
        assert not stale.exists()
    # Closed stores remove their own sockets, and the last one out the directory.
    assert not directory.exists()


async def test_a_socket_is_bound_on_the_first_wait_and_its_name_says_what_it_wants(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    directory = wake_directory(path)
    async with SQLiteStore(path, poll_interval=NO_POLL) as store:
        [job] = await store.enqueue([NewJob("t")])
        assert not directory.exists() or list(directory.iterdir()) == []  # only enqueues
        await store.wait_for_jobs(0)
        [name] = [p.name for p in directory.iterdir()]
        assert name.startswith(f"{os.getpid()}-") and name.endswith(".n")
        with pytest.raises(TimeoutError):
            await store.wait_finished(job.id, 0)
        assert [p.name for p in directory.iterdir()] == [name[:-1] + "fn"]
    assert not directory.exists()


async def test_the_last_doorbell_to_close_removes_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    directory = wake_directory(path)
    first, second = Doorbell(path, lambda kind: None), Doorbell(path, lambda kind: None)
    for bell in (first, second):
        bell.open()
        bell.listen(NEW)
    assert len(list(directory.iterdir())) == 2
    first.close()
    assert len(list(directory.iterdir())) == 1  # still in use: kept
    second.close()
    assert not directory.exists()


async def test_a_directory_removed_just_before_the_bind_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process's close can remove the (empty) directory between this process's
    # mkdir and its bind; the bind must still happen, or this process would only poll.
    path = tmp_path / "jobs.db"
    directory = wake_directory(path)
    mkdir, raced = Path.mkdir, []

    def mkdir_then_lose_it(self: Path, *args: object, **kwargs: object) -> None:
        mkdir(self, *args, **kwargs)  # type: ignore[arg-type]
        if self == directory and not raced:
            raced.append(self)
            self.rmdir()

    monkeypatch.setattr(Path, "mkdir", mkdir_then_lose_it)
    heard = asyncio.get_running_loop().create_future()
    bell = Doorbell(path, heard.set_result)
    ringer = Doorbell(path, lambda kind: None)
    bell.open()
    ringer.open()
    try:
        bell.listen(NEW)
        assert raced and bell.listening
        ringer.ring(NEW)
        assert await asyncio.wait_for(heard, WAIT) == NEW
    finally:
        bell.close()
        ringer.close()
    assert not directory.exists()


async def test_a_doorbell_is_rung_only_for_the_kinds_it_listens_to(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    heard: list[bytes] = []
    got_new = asyncio.get_running_loop().create_future()

    def on_ring(kind: bytes) -> None:
        heard.append(kind)
        if kind == NEW and not got_new.done():
            got_new.set_result(None)

    worker, finisher = Doorbell(path, on_ring), Doorbell(path, lambda kind: None)
    worker.open()
    finisher.open()
    try:
        worker.listen(NEW)
        finisher.ring(FINISHED)  # not wanted: never sent
        finisher.ring(NEW)
        await asyncio.wait_for(got_new, WAIT)
        assert heard == [NEW]  # datagrams arrive in order: an "f" would have come first
    finally:
        worker.close()
        finisher.close()


async def test_a_claim_leaves_the_configured_durability_for_what_follows(tmp_path: Path) -> None:
    # Claims commit at synchronous=NORMAL; the level the store was opened with must be back
    # for every later transition (a completion must still reach the disk before it returns).
    async with SQLiteStore(tmp_path / "jobs.db", synchronous="FULL") as store:
        await store.enqueue([NewJob("t")])
        [job] = await store.claim("w", queues=["default"], tasks=["t"], limit=1, lease=5)
        level = await store._run(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0])
        assert level == 2  # FULL
        assert await store.complete(job.id, job.attempt, "w", "ok")
