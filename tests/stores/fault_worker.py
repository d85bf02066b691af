"""One worker process of the fault tests: ``fault_worker.py KIND TARGET SCHEMA NAME RECORDS``.

Opens the store, starts a :class:`beat._worker.Worker` (8 slots, 2 s lease) running the task
``fault.record``, prints ``ready``, and runs until SIGTERM (then stops gracefully and prints
its stats as JSON). Each execution appends ``S <id> <attempt> <pid> <time>`` when it starts
and ``E …`` when its body ends to ``RECORDS/<pid>.txt`` (``O_APPEND``
writes, unbuffered: a SIGKILL loses nothing already written), sleeps a few ms, and returns
``[pid, attempt]``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from beat._tasks import Task, TaskRegistry
from beat._worker import JobContext, Worker
from beat.stores import Store


async def main(kind: str, target: str, schema: str, name: str, records: str) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    store: Store
    if kind == "sqlite":
        from beat.stores import SQLiteStore

        store = SQLiteStore(target, busy_timeout=30, poll_interval=0.1, synchronous="NORMAL")
    else:
        from beat.stores import PostgresStore

        store = PostgresStore(target, schema=schema, timeout=2, poll_interval=0.5)
    pid = os.getpid()
    fd = os.open(Path(records) / f"{pid}.txt", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    async def record(ctx: JobContext, n: int) -> list[int]:
        os.write(fd, f"S {ctx.id} {ctx.attempt} {pid} {time.time():.6f}\n".encode())
        await asyncio.sleep(0.004)
        os.write(fd, f"E {ctx.id} {ctx.attempt} {pid} {time.time():.6f}\n".encode())
        return [pid, ctx.attempt]

    tasks = TaskRegistry()
    tasks.add(Task(record, name="fault.record"))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with store:
        worker = Worker(store, tasks, name=name, concurrency=8, lease=2.0, poll=0.5)
        await worker.start()
        print("ready", flush=True)
        await stop.wait()
        await worker.stop(5)
    print(json.dumps(dataclasses.asdict(worker.stats)), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
