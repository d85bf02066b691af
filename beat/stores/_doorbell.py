"""A doorbell between the processes sharing one SQLite file: prompt cross-process wake-ups.

SQLite has no ``NOTIFY``. Without help, a process learns of another's enqueue only when it
polls. The doorbell closes that gap on hosts with Unix-domain sockets: every open
:class:`~beat.stores.SQLiteStore` binds one datagram socket in a directory private to its
database file, and after a commit that another process may be waiting for it sends one byte
to every socket there — ``n`` (a job became claimable) or ``f`` (a job finished). The
receiver wakes its waiters, which then look in the database as they would after a poll.

A ring is a hint, never a message: a datagram can be dropped (full buffer), a directory can be
unreachable (another container's ``/tmp``), a process can die without removing its socket.
So the stores keep polling at ``poll_interval`` as the fallback, the sender ignores a full
receiver, and a socket nobody listens on (connection refused) is removed by whoever rings it.

Directory: ``<tempdir>/beat-wake-<digest of the database's real path>``, mode 0700, so only
the same user's processes can ring. Where ``AF_UNIX`` datagrams are missing (Windows) the
doorbell is off and polling alone remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["FINISHED", "NEW", "Doorbell"]

NEW = b"n"
"""Rung after a commit that made a job claimable (enqueue, retry, release, fail with retry)."""
FINISHED = b"f"
"""Rung after a commit that finished a job (its waiters in other processes look again)."""

_AVAILABLE = hasattr(socket, "AF_UNIX") and os.name == "posix"


def wake_directory(database: Path) -> Path:
    digest = hashlib.sha256(str(database.resolve()).encode()).hexdigest()[:24]
    return Path(tempfile.gettempdir()) / f"beat-wake-{digest}"


class Doorbell:
    """One process's end: a bound socket to be rung at, and :meth:`ring` for the others.

    Owned by one store and used on its event loop only. ``on_ring`` gets each distinct kind
    received (``NEW`` / ``FINISHED``), at most once per kind per batch of datagrams read.
    """

    __slots__ = ("_directory", "_loop", "_on_ring", "_path", "_sock")

    def __init__(self, database: Path, on_ring: Callable[[bytes], None]) -> None:
        self._directory = wake_directory(database)
        self._on_ring = on_ring
        self._sock: socket.socket | None = None
        self._path: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def listening(self) -> bool:
        return self._sock is not None

    def open(self) -> None:
        """Bind this process's socket and start reading it on the running loop. Does nothing
        (polling remains) if the platform or the directory does not allow it."""
        if not _AVAILABLE or self._sock is not None:
            return
        loop = asyncio.get_running_loop()
        try:
            self._directory.mkdir(mode=0o700, exist_ok=True)
            path = str(self._directory / f"{os.getpid()}-{secrets.token_hex(4)}")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        except OSError:
            return
        try:
            sock.setblocking(False)
            sock.bind(path)
            loop.add_reader(sock.fileno(), self._read)
        except (OSError, NotImplementedError):  # e.g. a loop without add_reader
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(path)
            return
        self._sock, self._path, self._loop = sock, path, loop

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(sock.fileno())
        sock.close()
        if self._path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._path)

    def _read(self) -> None:
        sock = self._sock
        if sock is None:
            return
        kinds: set[bytes] = set()
        while True:
            try:
                kinds.add(sock.recv(16))
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
        for kind in kinds:
            self._on_ring(kind)

    def ring(self, kind: bytes) -> None:
        """Tell every other process on this database that ``kind`` happened. Non-blocking;
        failures are ignored (the receivers' polling covers them)."""
        sock = self._sock
        if sock is None:
            return
        try:
            names = os.listdir(self._directory)
        except OSError:
            return
        own = os.path.basename(self._path or "")
        for name in names:
            if name == own:
                continue
            target = os.path.join(self._directory, name)
            try:
                sock.sendto(kind, target)
            except (ConnectionRefusedError, FileNotFoundError):
                # Nobody listens there any more (a process died without closing).
                with contextlib.suppress(OSError):
                    os.unlink(target)
            except OSError:  # full buffer (it will wake anyway), permission, ...
                pass
