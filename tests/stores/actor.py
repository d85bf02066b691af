"""One process of the multi-process tests of issues 12/13: ``actor.py KIND TARGET SCHEMA ACTION``.

Opens the store, prints ``ready``, waits for a line on stdin, runs ACTION, prints one JSON
line with what it saw:

* ``unique`` — enqueue the unique jobs ``k0`` … ``k29`` one call each (a second process
  does the same at the same time): ``[[key, id, conflict], ...]``.
* ``schedule`` — change the stored schedule ``s`` (every 7 s) and report the wall time
  right after the commit: ``{"committed": epoch seconds}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from beat.stores import NewJob, ScheduleSpec, Store, Unique


async def main(kind: str, target: str, schema: str, action: str) -> None:
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
        if action == "unique":
            seen = []
            for i in range(30):
                [record] = await store.enqueue([NewJob("t", unique=Unique(key=f"k{i}"))])
                seen.append([f"k{i}", str(record.id), record.conflict])
            print(json.dumps(seen), flush=True)
        elif action == "schedule":
            await store.put_schedule(ScheduleSpec("s", "t", every=7.0))
            print(json.dumps({"committed": time.time()}), flush=True)
        else:
            raise SystemExit(f"unknown action {action!r}")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
