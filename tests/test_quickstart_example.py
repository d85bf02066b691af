"""The README's demo keeps working: run examples/quickstart.py on its fake clock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_shows_every_kind_of_job_and_ends_by_itself() -> None:
    done = subprocess.run(
        [sys.executable, "examples/quickstart.py", "--simulate"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    ticks = [line for line in lines if "cycle    tick" in line]
    assert ticks == [
        "11:59:51  cycle    tick",
        "11:59:52  cycle    tick",
        "11:59:53  cycle    tick",
    ]
    assert "11:59:53  oneshot  removed the cycle job at runtime" in lines
    assert "12:00:00  cron     '* * * * *' fired at the top of the minute" in lines
    assert "scheduler shut down cleanly" in lines
    assert "durable  result {'customer': 'acme', 'months': 3, 'attempt': 1}" in lines, done.stdout
    assert "durable  reports.broken is dead: the upstream API said no" in lines
    assert "durable  status of reports.broken: dead, attempts 1" in lines
    assert lines[-1] == "durable jobs done"
