"""One pruning instance of the multi-process retention test:
``prune_worker.py KIND TARGET SCHEMA NAME``.

Opens the store, prints ``ready``, waits for a line on stdin, then runs a ``Worker`` with
``retention`` (one rule: keep the two newest succeeded jobs of task ``t``) until the period's
``beat.prune`` job has finished; prints the JSON ``{"name": NAME}`` and exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta

from beat._tasks import TaskRegistry
from beat._worker import Worker
from beat.stores import JobStatus, PruneRule, Store


async def main(kind: str, target: str, schema: str, name: str) -> None:
    store: Store
    if kind == "sqlite":
        from beat.stores import SQLiteStore

        store = SQLiteStore(target, busy_timeout=30)
    else:
        from beat.stores import PostgresStore

        store = PostgresStore(target, schema=schema)
    rules = [PruneRule(JobStatus.SUCCEEDED, task="t", max_count=2)]
    async with store:
        print("ready", flush=True)
        sys.stdin.readline()
        worker = Worker(
            store,
            TaskRegistry(),
            name=name,
            poll=0.1,
            retention=rules,
            prune_every=timedelta(days=3650),
        )
        await worker.start()
        try:
            async with asyncio.timeout(30):
                while True:
                    jobs = await store.list_jobs(task="beat.prune")
                    if jobs and all(j.status is JobStatus.SUCCEEDED for j in jobs):
                        break
                    await asyncio.sleep(0.05)
        finally:
            await worker.stop(5)
    print(json.dumps({"name": name}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
