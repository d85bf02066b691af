"""Run a helper script in several processes started together and collect what each printed.

The protocol every helper script follows: open its store, print ``ready``, wait for ``go``
on stdin, do its work, print one JSON value as its last line, exit 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
CLAIMER = HERE / "claimer.py"
ACTOR = HERE / "actor.py"


def run_together(script: Path, argvs: list[list[str]]) -> list[Any]:
    """One process of ``script`` per argument list; once every one is ``ready`` they are all
    told ``go`` at once. The JSON each printed last, in order."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for argv in argvs
    ]
    try:
        for proc in procs:  # every process has opened its store: start them together
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0, out
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def claim_in_processes(kind: str, target: str, schema: str = "", count: int = 4) -> list[list[str]]:
    """``claimer.py`` in ``count`` processes: the job ids each completed."""
    return run_together(CLAIMER, [[kind, target, schema, f"p{n}"] for n in range(count)])


def act_in_processes(kind: str, target: str, schema: str, action: str, count: int) -> list[Any]:
    """``actor.py`` with ``action`` in ``count`` processes: the JSON each printed last."""
    return run_together(ACTOR, [[kind, target, schema, action] for _ in range(count)])
