"""One claiming process of the multi-process tests: ``claimer.py KIND TARGET SCHEMA WORKER``.

Opens the store, prints ``ready``, waits for a line on stdin, then claims batches of 5 and
completes them until nothing is left; prints the JSON list of the ids it completed.
"""

from __future__ import annotations

import asyncio
import json
import sys

from beat.stores import Store


async def main(kind: str, target: str, schema: str, worker: str) -> None:
    store: Store
    if kind == "sqlite":
        from beat.stores import SQLiteStore

        store = SQLiteStore(target, busy_timeout=30)
    else:
        from beat.stores import PostgresStore

        store = PostgresStore(target, schema=schema)
    async with store:
        print("ready", flush=True)
        sys.stdin.readline()
        done: list[str] = []
        while True:
            got = await store.claim(worker, queues=["default"], tasks=["t"], limit=5, lease=60)
            if not got:
                break
            for record in got:
                assert await store.complete(record.id, record.attempt, worker, worker)
                done.append(str(record.id))
    print(json.dumps(done), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
