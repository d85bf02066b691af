"""Stored text is the application's and may be anyone's (an exception message echoing user
input). The CLI prints its control characters escaped, never raw: a newline in a task name
cannot split a table row, an ESC sequence cannot clear or recolour the operator's terminal.
Tracebacks keep their lines; ``--json`` stays JSON that decodes to the stored values; wide
(CJK) characters count two columns, so tables stay aligned."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from beat.stores import LogEntry, NewJob, ScheduleSpec, SQLiteStore
from tests.test_cli_jobs import cli

pytestmark = pytest.mark.slow  # interpreter starts

NEWLINE = "two\nlines"
ESCAPES = "esc\x1b[2J\x1b[31mRED"
WIDE = "宽字符任务名"
MESSAGE = "bad input \x1b]0;pwned\x07 \u202egnp.exe\nsecond line"
TRACEBACK = 'Traceback (most recent call last):\n  File "app.py", line 1\x1b[8m\nValueError: x\n'
RAW = ("\x1b", "\x07", "\u202e", "\r")


@pytest.fixture
def store_url(tmp_path: Path) -> tuple[str, dict[str, str]]:
    path = tmp_path / "jobs.db"
    ids: dict[str, str] = {}

    async def create() -> None:
        async with SQLiteStore(path) as store:
            for task in ("ok.task", NEWLINE, ESCAPES, WIDE):
                (job,) = await store.enqueue([NewJob(task)])
                ids[task] = str(job.id)
            (dead,) = await store.enqueue([NewJob("failing", queue="q", max_attempts=1)])
            await store.claim("w\x1b[31m1", queues=["q"], tasks=["failing"], limit=1, lease=60)
            await store.fail(
                dead.id,
                1,
                "w\x1b[31m1",
                error_type="ValueError",
                message=MESSAGE,
                traceback=TRACEBACK,
            )
            at = (await store.now()).replace(microsecond=0)
            await store.add_logs(dead.id, 1, [LogEntry(1, at, "ERROR", "app", MESSAGE)])
            ids["dead"] = str(dead.id)
            await store.put_schedule(ScheduleSpec("nightly\x1b[2J", ESCAPES, every=60))

    asyncio.run(create())
    return f"sqlite:///{path}", ids


def test_tables_escape_control_characters_and_align_wide_ones(
    store_url: tuple[str, dict[str, str]],
) -> None:
    url, ids = store_url
    listing = cli("jobs", "list", "--store", url)
    assert listing.code == 0, listing
    assert not any(raw in listing.out for raw in RAW)
    _, *rows = listing.out.splitlines()
    assert len(rows) == 5  # one line per job: no name split a row
    tasks = {row.split()[0]: row.split()[1] for row in rows}
    assert tasks[ids[NEWLINE]] == "two\\nlines"
    assert tasks[ids[ESCAPES]] == "esc\\x1b[2J\\x1b[31mRED"
    assert tasks[ids[WIDE]] == WIDE
    # every QUEUE cell starts in the same terminal column (CJK characters are two wide)
    columns = {row.index("default") + sum(1 for c in row if c in WIDE) for row in rows[:4]}
    assert len(columns) == 1
    schedules = cli("schedules", "list", "--store", url)
    assert schedules.code == 0
    assert not any(raw in schedules.out for raw in RAW)
    escaped = "esc\\x1b[2J\\x1b[31mRED"
    assert schedules.out.splitlines()[1].split()[:2] == ["nightly\\x1b[2J", escaped]


def test_show_escapes_stored_text_and_keeps_traceback_lines(
    store_url: tuple[str, dict[str, str]],
) -> None:
    url, ids = store_url
    show = cli("jobs", "show", ids["dead"], "--logs", "--store", url)
    assert show.code == 0, show
    assert not any(raw in show.out for raw in RAW)
    lines = show.out.splitlines()
    assert "worker:        w\\x1b[31m1" in lines
    assert (
        "error:         ValueError: bad input \\x1b]0;pwned\\x07 \\u202egnp.exe\\nsecond line"
        in lines
    )
    at = lines.index("traceback:")
    assert lines[at + 1 : at + 4] == [
        "  Traceback (most recent call last):",
        '    File "app.py", line 1\\x1b[8m',
        "  ValueError: x",
    ]
    assert lines[-1].endswith(
        "ERROR app: bad input \\x1b]0;pwned\\x07 \\u202egnp.exe\\nsecond line"
    )
    # --json is JSON: the stored values come back exactly, and nothing raw reaches the terminal
    scripted = cli("jobs", "show", ids["dead"], "--logs", "--json", "--store", url)
    assert not any(raw in scripted.out for raw in RAW)
    record = json.loads(scripted.out)
    assert (record["error_message"], record["error_traceback"]) == (MESSAGE, TRACEBACK)
    assert record["logs"][0]["message"] == MESSAGE
