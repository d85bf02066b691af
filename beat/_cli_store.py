"""The store commands of the command line: ``jobs``, ``schedules``, ``queues``, ``instances``.

Each runs against a store named by a URL (``--store`` or the ``BEAT_STORE`` environment
variable):

* ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` — the file must exist (a
  typo must not create an empty database and report "no such job");
* ``postgresql://user:pass@host:5432/db`` (or ``postgres://``), with ``?schema=NAME`` for a
  schema other than ``public``.

The CLI never creates or migrates a store: it opens stores with ``migrate=False``, which
writes nothing to set a store up (no file, schema, table or migration, no switch to WAL, no
DDL lock: a read-only database role will do) and refuses, exit 1, anything that is not a
beat store at exactly this beat's schema version: another application's database, an empty
file, a mistyped ``?schema=``, an older store (a worker or scheduler of this version
migrates it when it starts) or a newer one (upgrade beat).

No message prints a password: URLs and store errors pass through :func:`_redact`.

Output is plain text for people, or JSON with ``--json`` (one document on stdout: records
with ISO-8601 times and string ids). Stored text is the application's, and may be anyone's
(an exception message echoing user input): its control characters are printed escaped
(:func:`_safe`), never raw, so it cannot break a table's lines or drive the terminal; a
traceback keeps its lines. Errors are one line on stderr, ``beat: <what>``, and a non-zero
exit: 2 for bad input (a bad URL, a malformed id, an unknown status), 1 when the command
could not be done (an unknown id or schedule, a transition the job's state forbids, the
store unreachable or misconfigured, not a beat store at this beat's version).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import enum
import json
import os
import re
import sys
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit
from uuid import UUID

from ._exceptions import (
    InvalidJobError,
    InvalidJobStateError,
    JobNotFoundError,
    StoreConfigError,
    StoreUnavailableError,
)
from ._redact import redact as _redact
from ._schedules import PROGRESS_PREFIX

__all__ = ["add_store_commands", "open_store_url"]

ENV_STORE = "BEAT_STORE"
_STATUSES = ("scheduled", "queued", "running", "succeeded", "dead", "cancelled")


class UsageError(Exception):
    """Bad input (exit 2)."""


class CommandError(Exception):
    """The command could not be done (exit 1)."""


# -------------------------------------------------------------------------------------------
# The store URL
# -------------------------------------------------------------------------------------------
def open_store_url(url: str | None) -> Any:
    """The (unopened) store a URL names; :class:`UsageError` for a bad or missing URL."""
    if not url:
        raise UsageError(f"no store given: pass --store URL or set {ENV_STORE}")
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        if not url.lower().startswith("sqlite:///") or len(url) == len("sqlite:///"):
            raise UsageError(f"bad SQLite URL {url!r}: expected sqlite:///PATH")
        path = Path(url[len("sqlite:///") :])
        if not path.is_file():
            raise UsageError(f"no SQLite database at {str(path)!r} (from {url!r})")
        from .stores import SQLiteStore

        return SQLiteStore(path, migrate=False)
    if scheme in ("postgresql", "postgres"):
        # "postgresql:/host/db" would quietly connect to the default host instead.
        if not url[len(scheme) + 1 :].startswith("//"):
            raise UsageError(f"bad PostgreSQL URL {_redact(url)!r}: expected {scheme}://...")
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # "Invalid IPv6 URL", ...
            raise UsageError(f"bad PostgreSQL URL {_redact(url)!r}: {exc}") from None
        query = parse_qs(parts.query)
        schema = query.pop("schema", ["public"])[-1]
        dsn = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        try:
            from .stores import PostgresStore
        except ImportError:  # pragma: no cover - the test environment has asyncpg
            raise UsageError(
                "PostgreSQL needs asyncpg: pip install 'beat-scheduler[postgres]'"
            ) from None
        try:
            return PostgresStore(dsn, schema=schema, migrate=False)
        except StoreConfigError as exc:
            raise UsageError(str(exc)) from None
    raise UsageError(
        f"unsupported store URL {_redact(url)!r}: expected sqlite:///PATH or postgresql://..."
    )


def _job_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise UsageError(f"{text!r} is not a job id (a UUID)") from None


# -------------------------------------------------------------------------------------------
# Output
# -------------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """JSON-ready form of records: datetimes ISO-8601, UUIDs and enums as strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (list, tuple, frozenset, set)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


# Characters that break a line, drive the terminal or reorder what it shows: the C0 and C1
# controls and DEL (Unicode category Cc), the line and paragraph separators, bidi controls.
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _safe(text: str) -> str:
    """``text`` for a terminal: each control character (see ``_CONTROL``) written as its
    Python escape (``\\n``, ``\\x1b``, ``\\u202e``); everything else as it is."""
    return _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


def _width(text: str) -> int:
    """Terminal columns of ``text``: 2 for wide (East Asian) characters, 0 for combining."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def _json_text(value: Any) -> str:
    """``value`` as indented JSON, unicode kept, with the control characters ``json.dumps``
    leaves raw (DEL, C1, separators, bidi) escaped as ``\\uXXXX`` too: the same JSON."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    # json.dumps escapes the C0 controls in strings: a raw "\n" is the indent's.
    return _CONTROL.sub(lambda m: m[0] if m[0] == "\n" else f"\\u{ord(m[0]):04x}", text)


def _print_json(value: Any) -> None:
    print(_json_text(_plain(value)))


def _say(line: str) -> None:
    """Print one line for people, control characters (newlines too) escaped."""
    print(_safe(line))


def _time(value: datetime | None) -> str:
    return "-" if value is None else value.isoformat(timespec="seconds")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns; each cell on one line, control characters escaped."""
    lines = [[_safe(cell) for cell in line] for line in [headers, *rows]]
    widths = [max(_width(line[i]) for line in lines) for i in range(len(headers))]
    return "\n".join(
        "  ".join(
            cell + " " * (w - _width(cell)) for cell, w in zip(line, widths, strict=True)
        ).rstrip()
        for line in lines
    )


def _job_line(r: Any) -> list[str]:
    when = r.finished_at if r.finished_at is not None else r.scheduled_at
    return [
        str(r.id),
        r.task,
        r.queue,
        str(r.status),
        f"{r.attempt}/{r.max_attempts}",
        _time(when),
    ]


def _job_details(r: Any) -> str:
    """``jobs show``: one line per field, control characters escaped; the traceback keeps
    its lines (indented), each escaped the same way."""
    lines = [
        f"id:            {r.id}",
        f"task:          {r.task}",
        f"status:        {r.status}" + (" (cancel requested)" if r.cancel_requested else ""),
        f"queue:         {r.queue} (priority {r.priority})",
        f"attempt:       {r.attempt} of {r.max_attempts}",
        f"args:          {json.dumps(r.args, ensure_ascii=False)}",
        f"kwargs:        {json.dumps(r.kwargs, ensure_ascii=False)}",
        f"created:       {_time(r.created_at)}",
        f"scheduled:     {_time(r.scheduled_at)}",
        f"started:       {_time(r.started_at)}",
        f"finished:      {_time(r.finished_at)}",
    ]
    if r.worker:
        lines.append(f"worker:        {r.worker}")
    for name in ("meta", "progress"):
        value = getattr(r, name, None)
        if value:
            lines.append(f"{name + ':':<15}{json.dumps(value, ensure_ascii=False)}")
    if r.result is not None:
        lines.append(f"result:        {json.dumps(r.result, ensure_ascii=False)}")
    if r.error_type:
        lines.append(f"error:         {r.error_type}: {r.error_message}")
    lines = [_safe(line) for line in lines]
    if r.error_traceback:
        lines.append("traceback:")
        lines.extend("  " + _safe(line) for line in r.error_traceback.rstrip().splitlines())
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------
# Running a command against the store
# -------------------------------------------------------------------------------------------
def _run(args: argparse.Namespace, action: Callable[[Any], Awaitable[int]]) -> int:
    """Run ``action`` on the store ``--store`` names, opened with ``migrate=False`` (refused
    unless it is a beat store at this beat's version); store errors become
    :class:`CommandError` or :class:`UsageError`."""
    store = open_store_url(args.store)

    async def go() -> int:
        try:
            await store.open()
        except StoreUnavailableError as exc:
            if isinstance(exc.__cause__, ValueError):  # a URL asyncpg cannot read
                url = _redact(store.dsn)
                raise UsageError(f"bad PostgreSQL URL {url!r}: {exc.__cause__}") from None
            raise
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(go())
    except JobNotFoundError as exc:
        raise CommandError(str(exc)) from None
    except InvalidJobStateError as exc:
        raise CommandError(str(exc)) from None
    except StoreUnavailableError as exc:
        raise CommandError(f"store unavailable: {exc}") from None
    except StoreConfigError as exc:  # it names the store (passwords redacted)
        raise CommandError(_redact(str(exc))) from None
    except InvalidJobError as exc:
        raise UsageError(str(exc)) from None


def _jobs_list(args: argparse.Namespace) -> int:
    after = None if args.after is None else _job_id(args.after)

    async def action(store: Any) -> int:
        records = await store.list_jobs(
            status=args.status, task=args.task, queue=args.queue, limit=args.limit, after=after
        )
        if args.json:
            _print_json(records)
        elif records:
            headers = ["ID", "TASK", "QUEUE", "STATUS", "ATTEMPT", "SCHEDULED/FINISHED"]
            print(_table(headers, [_job_line(r) for r in records]))
        else:
            print("no jobs")
        return 0

    return _run(args, action)


def _jobs_show(args: argparse.Namespace) -> int:
    id = _job_id(args.id)

    async def action(store: Any) -> int:
        record = await store.get(id)
        if record is None:
            raise JobNotFoundError(f"no job {id}")
        logs = await store.get_logs(id) if args.logs else None
        if args.json:
            out = _plain(record)
            if logs is not None:
                out["logs"] = _plain(logs)
            print(_json_text(out))
            return 0
        print(_job_details(record))
        if logs is not None:
            print(f"logs ({len(logs)}):")
            for e in logs:
                _say(f"  [{e.attempt}] {_time(e.at)} {e.level} {e.logger}: {e.message}")
        return 0

    return _run(args, action)


def _jobs_cancel(args: argparse.Namespace) -> int:
    id = _job_id(args.id)

    async def action(store: Any) -> int:
        # A finished job, cancelled included, is refused: store.cancel returns it unchanged,
        # and a cancelled one would read as just cancelled.
        before = await store.get(id)
        if before is None:
            raise JobNotFoundError(f"no job {id}")
        if before.status.finished:
            raise CommandError(f"job {id} already {before.status}: nothing to cancel")
        record = await store.cancel(id)
        if record.status.finished and str(record.status) != "cancelled":  # finished meanwhile
            raise CommandError(f"job {id} already {record.status}: nothing to cancel")
        if args.json:
            _print_json(record)
        else:
            if record.cancel_requested and str(record.status) == "running":
                print(f"cancel requested: job {id} is running; its worker stops it")
            else:
                print(f"cancelled: job {id}")
        return 0

    return _run(args, action)


def _jobs_retry(args: argparse.Namespace) -> int:
    id = _job_id(args.id)

    async def action(store: Any) -> int:
        record = await store.retry(id)
        if args.json:
            _print_json(record)
        else:
            print(f"queued again: job {id} (attempt {record.attempt} of {record.max_attempts})")
        return 0

    return _run(args, action)


def _schedule_line(s: Any) -> list[str]:
    if s.cron is not None:
        timer = f"cron {s.cron} ({s.timezone})"
    elif s.every is not None:
        timer = f"every {s.every:g} s"
    else:
        timer = f"at {_time(s.at)}"
    return [s.name, s.task, timer, "paused" if s.paused else "active", _time(s.last_instant)]


def _schedule_name(name: str) -> str:
    """``name``, unless it names the progress row of a schedule defined in code: bookkeeping
    (its timer and arguments live in the code; no sync loop runs it), which no command acts
    on, as in the dashboard (:class:`CommandError`)."""
    if name.startswith(PROGRESS_PREFIX):
        raise CommandError(
            f"{name!r} is not a stored schedule: it is the progress record of "
            f"{name[len(PROGRESS_PREFIX) :]!r}, a schedule defined in code, which is managed "
            "from the code"
        )
    return name


def _schedules_list(args: argparse.Namespace) -> int:
    async def action(store: Any) -> int:
        # Progress rows of schedules defined in code are bookkeeping, not schedules.
        records = [
            s for s in await store.list_schedules() if not s.name.startswith(PROGRESS_PREFIX)
        ]
        if args.json:
            _print_json(records)
        elif records:
            headers = ["NAME", "TASK", "TIMER", "STATE", "LAST ENQUEUED"]
            print(_table(headers, [_schedule_line(s) for s in records]))
        else:
            print("no schedules")
        return 0

    return _run(args, action)


def _schedules_pause(args: argparse.Namespace, paused: bool) -> int:
    name = _schedule_name(args.name)

    async def action(store: Any) -> int:
        record = await store.set_schedule_paused(name, paused)
        if args.json:
            _print_json(record)
        else:
            _say(f"{'paused' if paused else 'resumed'}: schedule {record.name}")
        return 0

    return _run(args, action)


def _schedules_run(args: argparse.Namespace) -> int:
    name = _schedule_name(args.name)

    async def action(store: Any) -> int:
        from .stores import NewJob

        spec = await store.get_schedule(name)
        if spec is None:
            raise CommandError(f"no schedule {name!r}")
        (record,) = await store.enqueue(
            [
                NewJob(
                    spec.task,
                    args=spec.args,
                    kwargs=spec.kwargs,
                    queue=spec.queue,
                    priority=spec.priority,
                    max_attempts=spec.max_attempts,
                    meta={"schedule": spec.name, "manual": True},
                )
            ]
        )
        if args.json:
            _print_json(record)
        else:
            _say(f"enqueued: job {record.id} ({record.task}) for schedule {spec.name}")
        return 0

    return _run(args, action)


def _queues(args: argparse.Namespace) -> int:
    async def action(store: Any) -> int:
        counts = await store.count_jobs()
        if args.json:
            _print_json(counts)
            return 0
        rows = [
            [queue, *(str(counts[queue].get(s, 0)) for s in _STATUSES)] for queue in sorted(counts)
        ]
        print(_table(["QUEUE", *(s.upper() for s in _STATUSES)], rows) if rows else "no jobs")
        return 0

    return _run(args, action)


def _instances(args: argparse.Namespace) -> int:
    async def action(store: Any) -> int:
        records = await store.list_instances()
        if args.json:
            _print_json(records)
        elif records:
            rows = [
                [i.name, i.host, str(i.pid), _time(i.started_at), _time(i.last_seen)]
                for i in records
            ]
            print(_table(["NAME", "HOST", "PID", "STARTED", "LAST SEEN"], rows))
        else:
            print("no live instances")
        return 0

    return _run(args, action)


# -------------------------------------------------------------------------------------------
# The parsers
# -------------------------------------------------------------------------------------------
def _common() -> argparse.ArgumentParser:
    """--store and --json, accepted by every store command after its name."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        default=os.environ.get(ENV_STORE),
        metavar="URL",
        help=f"sqlite:///PATH or postgresql://... (default: ${ENV_STORE})",
    )
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    return common


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"must be between 1 and 10000, got {value}")
    return value


def add_store_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = _common()

    jobs = commands.add_parser("jobs", help="list, show, cancel or retry durable jobs")
    sub = jobs.add_subparsers(dest="action", required=True, metavar="action")
    listing = sub.add_parser("list", parents=[common], help="jobs, oldest first")
    listing.add_argument("--status", choices=_STATUSES)
    listing.add_argument("--task")
    listing.add_argument("--queue")
    listing.add_argument("--limit", type=_positive, default=50, help="default: 50")
    listing.add_argument("--after", metavar="ID", help="the page after this job id")
    listing.set_defaults(handler=_jobs_list)
    show = sub.add_parser("show", parents=[common], help="one job in full")
    show.add_argument("id")
    show.add_argument("--logs", action="store_true", help="also the logs its attempts captured")
    show.set_defaults(handler=_jobs_show)
    for name, handler, text in (
        ("cancel", _jobs_cancel, "cancel a waiting job, or ask a running one's worker to stop"),
        ("retry", _jobs_retry, "queue a dead or cancelled job again"),
    ):
        parser = sub.add_parser(name, parents=[common], help=text)
        parser.add_argument("id")
        parser.set_defaults(handler=handler)

    schedules = commands.add_parser("schedules", help="list, pause, resume or run schedules")
    sub = schedules.add_subparsers(dest="action", required=True, metavar="action")
    sub.add_parser("list", parents=[common], help="stored schedules").set_defaults(
        handler=_schedules_list
    )
    for name, handler, text in (
        ("pause", lambda a: _schedules_pause(a, True), "stop enqueueing its occurrences"),
        ("resume", lambda a: _schedules_pause(a, False), "enqueue its occurrences again"),
        ("run", _schedules_run, "enqueue one job for it now"),
    ):
        parser = sub.add_parser(name, parents=[common], help=text)
        parser.add_argument("name")
        parser.set_defaults(handler=handler)

    commands.add_parser(
        "queues", parents=[common], help="durable jobs per queue and status"
    ).set_defaults(handler=_queues)
    commands.add_parser(
        "instances", parents=[common], help="live instances (their heartbeats)"
    ).set_defaults(handler=_instances)


def report(exc: Exception) -> int:
    """Print a store command's error as one line, passwords redacted; its exit code."""
    print(f"beat: {_safe(_redact(str(exc)))}", file=sys.stderr)
    return 2 if isinstance(exc, UsageError) else 1
