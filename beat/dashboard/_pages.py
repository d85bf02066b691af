"""The pages: plain functions from data already read to HTML (see ``_html`` for the escaping
rule). Nothing here reads a store or changes anything."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any
from uuid import UUID

from .._cron import Cron
from .._history import RunRecord
from .._scheduler import JobInfo
from .._schedules import timer_of_spec
from .._timers import Cycle, Oneshot, Timer
from ..stores import InstanceRecord, JobRecord, JobStatus, LogEntry, ScheduleRecord
from ._html import (
    action_button,
    dt,
    e,
    json_block,
    layout,
    link,
    segment,
    status_badge,
    table,
    zone_named,
)

__all__ = [
    "JobsPage",
    "Overview",
    "SchedulerRow",
    "error_page",
    "job_page",
    "jobs_page",
    "overview_page",
]

STATUSES = tuple(JobStatus)


@dataclass(frozen=True, slots=True)
class Overview:
    """What the overview shows; ``None`` for the parts that need a store when there is none."""

    now: datetime
    counts: Mapping[str, Mapping[JobStatus, int]] | None
    instances: Sequence[InstanceRecord] | None
    schedules: Sequence[ScheduleRecord] | None
    scheduler_jobs: Sequence[SchedulerRow] | None


@dataclass(frozen=True, slots=True)
class SchedulerRow:
    """One in-process job: its snapshot, its last finished run, and for a durable schedule
    defined in code the task each occurrence enqueues."""

    info: JobInfo
    last_run: RunRecord | None
    enqueues: str | None = None


@dataclass(frozen=True, slots=True)
class JobsPage:
    """One page of the job list with its filters and paging cursors."""

    jobs: Sequence[JobRecord]
    status: str | None
    task: str | None
    queue: str | None
    newer: UUID | None  # ``after=`` cursor of the next page, None if there is none
    older: UUID | None  # ``before=`` cursor of the previous page, None if there is none


# -- overview ---------------------------------------------------------------------------------
def overview_page(root: str, title: str, data: Overview, token: str, notice: str | None) -> str:
    parts = ["<h1>Overview</h1>"]
    if data.counts is None:
        parts.append(
            '<section><p class="muted">No job store configured: only the in-process '
            "scheduler's jobs are shown.</p></section>"
        )
    else:
        parts.append(_queues(root, data.counts))
    if data.scheduler_jobs is not None:
        parts.append(_scheduler_jobs(root, data.scheduler_jobs, data.now, token))
    if data.schedules is not None:
        parts.append(_stored_schedules(root, data.schedules, data.now, token))
    if data.instances is not None:
        parts.append(_instances(data.instances, data.now))
    return layout(root, title, "overview", "".join(parts), notice)


def _queues(root: str, counts: Mapping[str, Mapping[JobStatus, int]]) -> str:
    rows = []
    for queue in sorted(counts):
        by_status = counts[queue]
        cells = [link(root, "/jobs", e(queue), {"queue": queue})]
        for status in STATUSES:
            n = by_status.get(status, 0)
            query = {"queue": queue, "status": status.value}
            cells.append(
                link(root, "/jobs", str(n), query) if n else '<span class="muted">0</span>'
            )
        cells.append(str(sum(by_status.values())))
        rows.append(cells)
    headers = ["Queue", *(s.value for s in STATUSES), "Total"]
    body = table(headers, rows, "No jobs stored.")
    return f'<section id="queues" class="counts"><h2>Queues</h2>{body}</section>'


def timer_text(timer: Timer) -> str:
    if isinstance(timer, Cron):
        return f"cron {timer.expr} ({timer.tz})"
    if isinstance(timer, Cycle):
        return f"every {timer.interval}"
    if isinstance(timer, Oneshot):
        return f"once at {timer.at.isoformat()}"
    return repr(timer)


def timer_zone(timer: Timer) -> tzinfo | None:
    """The time zone a timer's instants are meant in (a cron's), else ``None``."""
    return timer.tz if isinstance(timer, Cron) else None


def _last_run(run: RunRecord | None, now: datetime) -> str:
    if run is None:
        return '<span class="muted">never</span>'
    error = f' <span class="mono">{e(run.error)}</span>' if run.error else ""
    return f"{dt(run.finished, now)} {status_badge(run.outcome.value)}{error}"


def _scheduler_jobs(root: str, jobs: Sequence[SchedulerRow], now: datetime, token: str) -> str:
    rows = []
    for job in jobs:
        info, run = job.info, job.last_run
        when = timer_text(info.timer)
        if job.enqueues is not None:
            when += f" → enqueues {job.enqueues}"
        base = f"/scheduler/{segment(info.id)}"
        toggle = (
            action_button(root, base + "/resume", "Resume", token)
            if info.paused
            else action_button(root, base + "/pause", "Pause", token)
        )
        rows.append(
            [
                f'<span class="mono">{e(info.name)}</span>',
                e(when),
                status_badge("paused" if info.paused else "active"),
                dt(info.next_fire, now, timer_zone(info.timer)),
                _last_run(run, now),
                str(info.running),
                toggle + action_button(root, base + "/run", "Run now", token),
            ]
        )
    headers = ["Job", "When", "State", "Next fire", "Last run", "Running", "Actions"]
    body = table(headers, rows, "No in-process scheduler jobs.")
    return f'<section id="scheduler-jobs"><h2>Scheduler jobs (this process)</h2>{body}</section>'


def next_stored_fire(schedule: ScheduleRecord, now: datetime) -> datetime | None:
    """When a stored schedule fires next: its timer as every scheduler builds it (cron in
    its zone, ``every`` on the epoch grid, a oneshot ``at``), ``None`` while paused, once a
    oneshot was enqueued, or for a record this version cannot read."""
    if schedule.paused:
        return None
    try:
        following = timer_of_spec(schedule).next_after(now)
    except (ValueError, OverflowError):
        return None
    if following is not None and schedule.at is not None and schedule.last_instant is not None:
        return None  # the oneshot was enqueued already
    return following


def _stored_when(schedule: ScheduleRecord) -> str:
    if schedule.cron is not None:
        return f"cron {schedule.cron} ({schedule.timezone})"
    if schedule.every is not None:
        return f"every {timedelta(seconds=schedule.every)}"
    if schedule.at is not None:
        return f"once at {schedule.at.isoformat()}"
    return "?"


def _stored_schedules(
    root: str, schedules: Sequence[ScheduleRecord], now: datetime, token: str
) -> str:
    rows = []
    for schedule in schedules:
        fields = {"name": schedule.name}
        zone = zone_named(schedule.timezone) if schedule.cron is not None else None
        toggle = (
            action_button(root, "/schedules/resume", "Resume", token, fields)
            if schedule.paused
            else action_button(root, "/schedules/pause", "Pause", token, fields)
        )
        # ``once`` makes this rendering's Run-now form enqueue one job however often it
        # is submitted (a double click, a resubmitted POST).
        once = {**fields, "once": secrets.token_hex(8)}
        toggle += action_button(root, "/schedules/run", "Run now", token, once)
        rows.append(
            [
                f'<span class="mono">{e(schedule.name)}</span>',
                link(root, "/jobs", e(schedule.task), {"task": schedule.task}),
                e(_stored_when(schedule)),
                e(schedule.queue),
                status_badge("paused" if schedule.paused else "active"),
                dt(next_stored_fire(schedule, now), now, zone),
                dt(schedule.last_instant, now, zone),
                toggle,
            ]
        )
    headers = [
        "Schedule",
        "Task",
        "When",
        "Queue",
        "State",
        "Next fire",
        "Last enqueued",
        "Actions",
    ]
    body = table(headers, rows, "No stored schedules.")
    return f'<section id="schedules"><h2>Stored schedules</h2>{body}</section>'


def _instances(instances: Sequence[InstanceRecord], now: datetime) -> str:
    rows = [
        [
            f'<span class="mono">{e(i.name)}</span>',
            e(i.host),
            e(i.pid),
            dt(i.started_at, now),
            dt(i.last_seen, now),
            " ".join(f'<span class="mono">{e(k)}={e(_short(v))}</span>' for k, v in i.info.items()),
        ]
        for i in instances
    ]
    headers = ["Instance", "Host", "PID", "Started", "Last heartbeat", "Info"]
    body = table(headers, rows, "No live instances.")
    return f'<section id="instances"><h2>Live instances</h2>{body}</section>'


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:79] + "…"


# -- job list ---------------------------------------------------------------------------------
def jobs_page(root: str, title: str, data: JobsPage, now: datetime, notice: str | None) -> str:
    options = ['<option value="">any</option>'] + [
        f'<option value="{e(s.value)}"{" selected" if s.value == data.status else ""}>'
        f"{e(s.value)}</option>"
        for s in STATUSES
    ]
    filters = (
        f'<form method="get" action="{e(root + "/jobs")}" class="filters" id="filters">'
        f'<label>Status<select name="status">{"".join(options)}</select></label>'
        f'<label>Task<input name="task" value="{e(data.task or "")}"></label>'
        f'<label>Queue<input name="queue" value="{e(data.queue or "")}"></label>'
        '<button type="submit">Filter</button></form>'
    )
    rows = [
        [
            link(
                root, f"/jobs/{segment(job.id)}", f'<span class="mono">{e(str(job.id)[:8])}</span>'
            ),
            f'<span class="mono">{e(job.task)}</span>',
            e(job.queue),
            status_badge(job.status.value),
            f"{job.attempt}/{job.max_attempts}",
            dt(job.scheduled_at, now),
            dt(job.finished_at, now),
            e(job.error_type or ""),
        ]
        for job in data.jobs
    ]
    headers = ["Job", "Task", "Queue", "Status", "Attempts", "Due", "Finished", "Error"]
    filters_kept = {"status": data.status, "task": data.task, "queue": data.queue}
    pager = []
    if data.older is not None:
        pager.append(link(root, "/jobs", "← Older", {**filters_kept, "before": data.older}))
    if data.newer is not None:
        pager.append(link(root, "/jobs", "Newer →", {**filters_kept, "after": data.newer}))
    body = (
        "<h1>Jobs</h1>"
        f'<section id="jobs">{filters}{table(headers, rows, "No jobs match.")}'
        f'<div class="pager">{"".join(pager)}</div></section>'
    )
    return layout(root, title + " · jobs", "jobs", body, notice)


# -- one job ----------------------------------------------------------------------------------
def job_page(
    root: str,
    title: str,
    job: JobRecord,
    logs: Sequence[LogEntry],
    now: datetime,
    token: str,
    notice: str | None,
) -> str:
    base = f"/jobs/{segment(job.id)}"
    actions = []
    if not job.status.finished and not job.cancel_requested:
        actions.append(action_button(root, base + "/cancel", "Cancel", token, danger=True))
    if job.status in (JobStatus.DEAD, JobStatus.CANCELLED):
        actions.append(action_button(root, base + "/retry", "Retry", token))
    fields = [
        ("Id", f'<span class="mono">{e(job.id)}</span>'),
        ("Task", f'<span class="mono">{e(job.task)}</span>'),
        (
            "Status",
            status_badge(job.status.value)
            + (' <span class="muted">(cancel requested)</span>' if job.cancel_requested else ""),
        ),
        ("Queue", e(job.queue)),
        ("Priority", e(job.priority)),
        ("Attempts", f"{job.attempt} of {job.max_attempts}"),
        ("Worker", e(job.worker or "—")),
        ("Created", dt(job.created_at, now)),
        ("Due", dt(job.scheduled_at, now)),
        ("Started", dt(job.started_at, now)),
        ("Finished", dt(job.finished_at, now)),
        ("Lease until", dt(job.lease_expires_at, now)),
    ]
    summary = "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in fields)
    sections = [
        f'<h1>Job <span class="mono">{e(job.id)}</span></h1>',
        f'<section id="summary"><dl class="fields">{summary}</dl>'
        + (f'<div id="actions">{"".join(actions)}</div>' if actions else "")
        + "</section>",
        f'<section id="arguments"><h2>Arguments</h2>{json_block(job.args)}'
        f"<h2>Keyword arguments</h2>{json_block(job.kwargs)}</section>",
    ]
    if job.meta:
        sections.append(f'<section id="meta"><h2>Meta</h2>{json_block(job.meta)}</section>')
    if job.progress is not None:
        sections.append(
            f'<section id="progress"><h2>Progress</h2>{_progress_bar(job.progress)}'
            f"{json_block(job.progress)}</section>"
        )
    if job.status is JobStatus.SUCCEEDED:
        sections.append(f'<section id="result"><h2>Result</h2>{json_block(job.result)}</section>')
    if job.error_type or job.error_message or job.error_traceback:
        sections.append(
            '<section id="error"><h2>Last error</h2>'
            f'<p class="error"><strong class="mono">{e(job.error_type or "")}</strong> '
            f"{e(job.error_message or '')}</p>"
            + (
                f'<h2>Traceback</h2><pre id="traceback">{e(job.error_traceback)}</pre>'
                if job.error_traceback
                else ""
            )
            + "</section>"
        )
    sections.append(_logs(logs))
    return layout(root, f"{title} · job {str(job.id)[:8]}", "jobs", "".join(sections), notice)


def _progress_bar(progress: Any) -> str:
    """A bar for the common shapes: a fraction in [0, 1], or ``{"done"|"current": n,
    "total": m}``; nothing for any other value (the JSON is shown either way)."""
    done: Any = progress
    total: Any = 1
    if isinstance(progress, dict):
        done = progress.get("done", progress.get("current"))
        total = progress.get("total")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (done, total))
    if not numbers or not 0 <= done <= total or total <= 0:
        return ""
    return f'<p><progress value="{e(done)}" max="{e(total)}"></progress> {done / total:.0%}</p>'


def _logs(logs: Sequence[LogEntry]) -> str:
    rows = [
        [
            str(entry.attempt),
            dt(entry.at),
            # The class is chosen from a fixed set, never taken from the level text itself.
            f'<span class="log-{_level_class(entry.level)}">{e(entry.level)}</span>',
            f'<span class="mono">{e(entry.logger)}</span>',
            f'<pre class="log">{e(entry.message)}</pre>',
        ]
        for entry in logs
    ]
    body = table(["Attempt", "At", "Level", "Logger", "Message"], rows, "No captured logs.")
    return f'<section id="logs"><h2>Captured logs</h2>{body}</section>'


def _level_class(level: str) -> str:
    return level if level in ("WARNING", "ERROR", "CRITICAL") else "INFO"


# -- errors -----------------------------------------------------------------------------------
def error_page(root: str, title: str, heading: str, message: str) -> str:
    body = f'<h1>{e(heading)}</h1><section><p class="error">{e(message)}</p></section>'
    return layout(root, title, "", body)
