"""``python -m beat run module:attribute`` — a scheduler as its own process.

The target is a :class:`~beat.Scheduler` (jobs registered at import, e.g. with decorators) or a
callable taking no arguments — plain or ``async`` — that returns one. The runner starts it,
waits for SIGINT or SIGTERM, then shuts down gracefully: no new fires, running jobs get up to
``--shutdown-timeout`` seconds, the rest are cancelled.

Exit codes (:data:`EXIT_CODES`):

====  =======================================================================
0     stopped by a signal; every running job finished in time
1     the scheduler could not start or stopped on its own (e.g. a coordinator
      configuration error) — the error is logged
2     usage error: the target cannot be imported or is not a scheduler
3     stopped by a signal, but some running jobs had to be cancelled at the
      shutdown timeout
====  =======================================================================
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import signal
import sys
from typing import Any

from ._scheduler import Scheduler

__all__ = ["EXIT_CODES", "TargetError", "load_target", "run"]

logger = logging.getLogger("beat.runner")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 3
EXIT_CODES = {
    EXIT_OK: "stopped by a signal; running jobs finished",
    EXIT_FAILED: "the scheduler failed to start or stopped on its own",
    EXIT_USAGE: "bad target",
    EXIT_CANCELLED: "stopped by a signal; some jobs were cancelled at the shutdown timeout",
}


class TargetError(Exception):
    """The ``module:attribute`` target cannot be used (exit code 2)."""


def load_target(spec: str) -> Any:
    """Import ``module:attribute`` (attribute may be dotted) and return the object."""
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name or not attr_path:
        raise TargetError(f"target must look like 'package.module:attribute', got {spec!r}")
    if "" not in sys.path:
        sys.path.insert(0, "")  # like `python -m`, resolve modules from the working directory
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise TargetError(f"cannot import module {module_name!r}: {exc}") from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(f"{module_name!r} has no attribute {attr_path!r}") from None
    return obj


async def _resolve(target: Any, spec: str) -> Scheduler:
    if callable(target) and not isinstance(target, Scheduler):
        target = target()
        if inspect.isawaitable(target):
            target = await target
    if not isinstance(target, Scheduler):
        raise TargetError(f"{spec!r} is not a beat.Scheduler (nor returns one): {target!r}")
    return target


async def _serve(spec: str, target: Any, shutdown_timeout: float | None) -> int:
    scheduler = await _resolve(target, spec)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(signum: int) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        try:
            await scheduler.__aenter__()
        except Exception as exc:
            logger.error("the scheduler could not start: %s", exc)
            return EXIT_FAILED
        logger.info(
            "running %s with %d jobs; SIGINT or SIGTERM stops it", spec, len(scheduler.jobs())
        )
        stopped_alone = asyncio.ensure_future(scheduler._stopped.wait())
        waiter = asyncio.ensure_future(stop.wait())
        await asyncio.wait([waiter, stopped_alone], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopped_alone.cancel()
        if not received:
            logger.error("the scheduler stopped on its own")
            await scheduler.shutdown()
            return EXIT_FAILED
        logger.info("%s received: shutting down gracefully", received[0])
        cancelled = await scheduler.shutdown(timeout=shutdown_timeout)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    if cancelled:
        logger.warning("%d running job(s) were cancelled at the shutdown timeout", cancelled)
        return EXIT_CANCELLED
    return EXIT_OK


def run(spec: str, *, shutdown_timeout: float | None = None, log_level: str = "INFO") -> int:
    """Run the scheduler named by ``spec`` until a signal; return the exit code."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        target = load_target(spec)
    except TargetError as exc:
        print(f"beat: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(_serve(spec, target, shutdown_timeout))
    except TargetError as exc:
        print(f"beat: {exc}", file=sys.stderr)
        return EXIT_USAGE
