"""``heap_faults.py PATH``: the page faults of a SQLite store's thread over 50 claims, each
after another connection's enqueue (as a worker sees them). Follows ``_processes``' protocol;
run in a fresh process, as a worker is, since the allocator's state depends on the process's
history. Prints the faults counted."""

from __future__ import annotations

import asyncio
import json
import resource
import sys

from beat.stores import NewJob, SQLiteStore


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt


async def main(path: str) -> None:
    async with SQLiteStore(path) as worker, SQLiteStore(path) as producer:
        print("ready", flush=True)
        sys.stdin.readline()
        loop = asyncio.get_running_loop()

        async def one() -> None:
            await producer.enqueue([NewJob("t")])
            claimed = await worker.claim("w", queues=["default"], tasks=["t"], limit=10, lease=60)
            assert len(claimed) == 1
            assert await worker.complete_many([(claimed[0].id, claimed[0].attempt, "w", 1)])

        for _ in range(20):  # statements prepared, memory in use
            await one()
        before = await loop.run_in_executor(worker._executor, faults)
        for _ in range(50):
            await one()
        after = await loop.run_in_executor(worker._executor, faults)
        print(json.dumps(after - before))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
