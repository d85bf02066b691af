"""`python -m beat run module:attribute` as a real subprocess with real signals."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def spawn(target: str, *extra: str, job_seconds: float = 0.5) -> subprocess.Popen[str]:
    env = dict(os.environ, BEAT_TEST_JOB_SECONDS=str(job_seconds), PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "beat", "run", target, "--log-level", "WARNING", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line_starting(proc: subprocess.Popen[str], prefix: str, deadline: float = 15) -> str:
    """Block (up to ``deadline`` s) until the process prints a line starting with ``prefix``."""
    assert proc.stdout is not None
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        ready, _, _ = select.select([proc.stdout], [], [], end - time.monotonic())
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(prefix):
            return line.strip()
    proc.kill()
    raise AssertionError(
        f"no line starting with {prefix!r}; stderr: {proc.stderr.read() if proc.stderr else ''}"
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_lets_the_running_job_finish(sig: signal.Signals) -> None:
    proc = spawn("tests.fixtures.runner_app:scheduler", job_seconds=0.5)
    started = read_line_starting(proc, "started ")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=15)
    key = started.removeprefix("started ")
    assert f"finished {key}" in out
    assert proc.returncode == 0, err


def test_jobs_past_the_shutdown_timeout_are_cancelled_exit_3() -> None:
    proc = spawn("tests.fixtures.runner_app:make", "--shutdown-timeout", "0.3", job_seconds=30)
    read_line_starting(proc, "started ")
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 3, err
    assert "finished" not in out
    assert time.monotonic() - began < 10
    assert "cancelled" in err


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("tests.fixtures.runner_app:not_a_scheduler", "is not a beat.Scheduler"),
        ("tests.fixtures.no_such_module:x", "cannot import module"),
        ("tests.fixtures.runner_app:missing", "has no attribute"),
        ("no-colon", "must look like"),
    ],
)
def test_bad_targets_exit_2(target: str, message: str) -> None:
    proc = spawn(target)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 2
    assert message in err
