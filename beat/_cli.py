"""The command line: ``python -m beat <command> ...``.

Each command is one ``_add_<name>`` function in :data:`_COMMANDS`: it adds its sub-parser
and sets ``handler``, a function from the parsed arguments to an exit code. A new command
(``run``, say) is a new function and a new entry; nothing else changes.

Exit codes: 0 success, 1 the command ran but failed (for the store commands: an unknown
id, a transition the job's state forbids, the store unreachable), 2 bad input (argparse's
own usage errors, an invalid cron expression, an unknown zone, a malformed ``--after``, a
bad store URL or job id). Errors are reported as one line on stderr, ``beat: <what is
wrong>``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from ._cli_store import CommandError, UsageError, add_store_commands, report
from ._cron import EXTENDED_HINT, Cron
from ._exceptions import CronSyntaxError, InvalidScheduleError

__all__ = ["build_parser", "main"]

_MAX_COUNT = 10_000  # enough for any look at a schedule; bounds the output


class _UsageError(Exception):
    """Bad input found after argparse accepted the command line (exit code 2)."""


def _positive_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= count <= _MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be between 1 and {_MAX_COUNT}, got {count}")
    return count


def _parse_after(text: str | None, tz: ZoneInfo) -> datetime:
    """``--after``: ISO-8601; a naive value is a wall time in ``tz``; default now."""
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _UsageError(
            f"invalid --after value {text!r}: expected ISO-8601, e.g. 2025-03-30T01:00:00+01:00"
        ) from None
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


def _run_next(args: argparse.Namespace) -> int:
    try:
        cron = Cron(args.expression, args.tz, extended=args.extended)
    except CronSyntaxError as exc:
        # The library's advice names its keyword; here the switch is a flag.
        raise _UsageError(str(exc).replace(EXTENDED_HINT, "pass --extended")) from None
    except InvalidScheduleError as exc:
        raise _UsageError(str(exc)) from None
    moment = _parse_after(args.after, cron.tz)
    lines = []
    try:
        for _ in range(args.count):
            moment = cron.next_after(moment)
            note = cron.dst_note(moment)
            lines.append(moment.isoformat() + (f"  ({note})" if note else ""))
    except (InvalidScheduleError, OverflowError) as exc:
        if lines:
            print("\n".join(lines))
        print(f"beat: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def _add_next(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "next",
        help="print the next fire times of a cron expression",
        description=(
            "Print the next fire instants of a cron expression, one per line, as ISO-8601 "
            "with the UTC offset. Fires that a DST transition moved or de-duplicated are "
            "marked."
        ),
    )
    parser.add_argument(
        "expression",
        help='cron expression or alias, e.g. "0 9 * * 1-5" (six fields, seconds first, '
        "with --extended)",
    )
    parser.add_argument(
        "--extended",
        action="store_true",
        help="accept the cron extensions: a leading seconds field (six fields), and L, LW, "
        "nW in day-of-month, d#n and dL in day-of-week (see docs/cron.md)",
    )
    parser.add_argument("--tz", default="UTC", help="IANA time zone (default: UTC)")
    parser.add_argument(
        "-n",
        "--count",
        type=_positive_count,
        default=5,
        help="how many fire times to print (default: 5)",
    )
    parser.add_argument(
        "--after",
        help="start instant, ISO-8601; a value without offset is read in --tz (default: now)",
    )
    parser.set_defaults(handler=_run_next)


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not seconds >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return seconds


def _run_run(args: argparse.Namespace) -> int:
    from ._runner import run  # imports the user's module: only when asked to

    return run(args.target, shutdown_timeout=args.shutdown_timeout, log_level=args.log_level)


def _add_run(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "run",
        help="run a scheduler defined in a module until SIGINT/SIGTERM",
        description=(
            "Import module:attribute (a Scheduler, or a function returning one), run it, and "
            "shut it down gracefully on SIGINT or SIGTERM. Exit codes: 0 stopped, running jobs "
            "finished; 1 failed to start or stopped on its own; 2 bad target; 3 stopped, some "
            "jobs cancelled at the shutdown timeout."
        ),
    )
    parser.add_argument("target", help="package.module:attribute")
    parser.add_argument(
        "--shutdown-timeout",
        type=_positive_seconds,
        default=None,
        help="seconds running jobs get after a signal (default: the scheduler's own, 30)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="level for the root logger (default: INFO)",
    )
    parser.set_defaults(handler=_run_run)


_COMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    _add_next,
    _add_run,
    add_store_commands,  # jobs, schedules, queues, instances (_cli_store.py)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beat", description="beat: an asyncio job scheduler")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for add in _COMMANDS:
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (argparse errors exit 2 by themselves)."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except _UsageError as exc:
        print(f"beat: {exc}", file=sys.stderr)
        return 2
    except (UsageError, CommandError) as exc:
        return report(exc)
