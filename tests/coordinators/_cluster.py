"""Start a cluster of ``cluster_worker.py`` processes and read back their records."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("cluster_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def grid_start(lead: float = 3.0) -> int:
    """A whole second at least ``lead`` seconds from now: time for the processes to start."""
    return math.ceil(time.time() + lead)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


@dataclass
class Cluster:
    """Worker processes sharing one config; each writes its own record file."""

    config: dict[str, Any]
    directory: Path
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    records: list[Path] = field(default_factory=list)

    def spawn(self, count: int, tag: str = "w") -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        started = []
        for i in range(len(self.procs), len(self.procs) + count):
            record = self.directory / f"{tag}{i}.csv"
            config = {**self.config, "record": str(record)}
            stderr = open(self.directory / f"{tag}{i}.log", "w")  # noqa: SIM115 - child owns it
            proc = subprocess.Popen(
                [sys.executable, str(WORKER), json.dumps(config)],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=env,
                cwd=ROOT,
            )
            stderr.close()
            self.procs.append(proc)
            self.records.append(record)
            started.append(proc)
        for proc in started:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == "ready", f"worker {proc.pid} failed to start: {self.logs()}"

    def wait(self, timeout: float) -> list[int | None]:
        deadline = time.monotonic() + timeout
        codes: list[int | None] = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                codes.append(None)
        return codes

    def kill_all(self) -> None:
        """Kill what still runs and release the pipes (call in ``finally``)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()

    def lines(self) -> list[list[str]]:
        out = []
        for record in self.records:
            if record.exists():
                out.extend(line.split(",") for line in record.read_text().splitlines())
        return out

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text()[-3000:]}"
            for path in sorted(self.directory.glob("*.log"))
        )


@dataclass
class Tally:
    """Per-occurrence counts from the records."""

    runs: Counter[tuple[str, str]]
    done: Counter[tuple[str, str]]
    run_lines: list[list[str]]
    skips: Counter[str]  # reason -> count

    @classmethod
    def of(cls, lines: list[list[str]]) -> Tally:
        run_lines = [line for line in lines if line[0] == "run"]
        return cls(
            runs=Counter((line[1], line[2]) for line in run_lines),
            done=Counter((line[1], line[2]) for line in lines if line[0] == "done"),
            run_lines=run_lines,
            skips=Counter(line[4] for line in lines if line[0] == "skip"),
        )

    def duplicates(self) -> list[tuple[str, str]]:
        return sorted(key for key, count in self.runs.items() if count > 1)


def expected(jobs: int, start: int, end: int, interval: int = 1) -> set[tuple[str, str]]:
    return {(f"job{i:03d}", iso(t)) for i in range(jobs) for t in range(start, end + 1, interval)}


def wait_until(epoch: float) -> None:
    delay = epoch - time.time()
    if delay > 0:
        time.sleep(delay)
