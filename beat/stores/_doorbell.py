"""A doorbell between the processes sharing one SQLite file: prompt cross-process wake-ups.

SQLite has no ``NOTIFY``. Without help, a process learns of another's enqueue only when it
polls. The doorbell closes that gap on hosts with Unix-domain sockets: a process that waits
for something binds one datagram socket in a directory private to its database file, and
after a commit that another process may be waiting for, the committer sends one byte to every
socket there that wants it — ``n`` (a job became claimable), ``f`` (a job finished) or ``s``
(a stored schedule changed). The receiver wakes its waiters, which then look in the database
as they would after a poll.

A socket's file name says what it wants: ``<pid>-<token>.<kinds>``, e.g. ``4242-9f3a.fn``.
A process binds on its first wait and renames the file when it starts waiting for another
kind, so a worker is not woken by every other worker's completions and a process that only
enqueues binds nothing. A name without ``.`` wants everything.

A ring is a hint, never a message: a datagram can be dropped (full buffer), a directory can be
unreachable (another container's ``/tmp``), a process can die without removing its socket, a
ring can cross a rename. So the stores keep polling at ``poll_interval`` as the fallback, the
sender ignores a full receiver, and a socket nobody listens on (connection refused) is removed
by whoever rings it.

Directory: ``<tempdir>/beat-wake-<digest of the database's real path>``, mode 0700, so only
the same user's processes can ring. The first process to listen makes it; the last one to
leave removes it. Where ``AF_UNIX`` datagrams are missing (Windows) the doorbell is off and
polling alone remains.
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
    """One process's end: :meth:`ring` for the others, and a socket to be rung at for the
    kinds given to :meth:`listen`.

    Owned by one store and used on its event loop, except :meth:`ring`, which the store
    also calls from its thread: it only reads fields and sends (one that reads ``_path``
    mid-rename rings this process too: a spurious hint, harmless), and the store closes the
    doorbell after its thread's last call. ``on_ring`` gets each distinct kind received
    (``NEW`` / ``FINISHED`` / ...), at most once per kind per batch of datagrams read.
    """

    __slots__ = ("_directory", "_kinds", "_loop", "_on_ring", "_path", "_sender", "_sock")

    def __init__(self, database: Path, on_ring: Callable[[bytes], None]) -> None:
        self._directory = wake_directory(database)
        self._on_ring = on_ring
        self._sender: socket.socket | None = None  # unbound: rings need no address
        self._sock: socket.socket | None = None  # bound at _path once something is wanted
        self._path: str | None = None
        self._kinds = ""  # what _path's name asks for, sorted
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def listening(self) -> bool:
        return self._sock is not None

    def open(self) -> None:
        """Get ready to ring, on the running loop. Does nothing (polling remains) if the
        platform does not allow it."""
        if not _AVAILABLE or self._sender is not None:
            return
        try:
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        except OSError:
            return
        sender.setblocking(False)
        self._sender, self._loop = sender, asyncio.get_running_loop()

    def listen(self, kind: bytes) -> None:
        """Be rung for ``kind`` from now on: bind this process's socket (reading it on the
        loop) or rename it to add ``kind``. Nothing changes (polling remains) if the
        directory does not allow it."""
        wanted = kind.decode()
        if self._loop is None or wanted in self._kinds:
            return
        kinds = "".join(sorted(self._kinds + wanted))
        if self._sock is not None and self._path is not None:
            path = f"{self._path.rpartition('.')[0]}.{kinds}"
            try:
                os.rename(self._path, path)
            except OSError:
                return
            self._path, self._kinds = path, kinds
            return
        path = str(self._directory / f"{os.getpid()}-{secrets.token_hex(4)}.{kinds}")
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        except OSError:
            return
        try:
            sock.setblocking(False)
            self._bind(sock, path)
            self._loop.add_reader(sock.fileno(), self._read)
        except (OSError, NotImplementedError):  # e.g. a loop without add_reader
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(path)
            return
        self._sock, self._path, self._kinds = sock, path, kinds

    def _bind(self, sock: socket.socket, path: str) -> None:
        # The last process to leave removes the directory (see close), so it can vanish
        # between our mkdir and our bind: make it again. Three tries, then polling remains.
        for attempt in range(3):
            self._directory.mkdir(mode=0o700, exist_ok=True)
            try:
                sock.bind(path)
                return
            except FileNotFoundError:
                if attempt == 2:
                    raise

    def close(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.close()
        sock, self._sock = self._sock, None
        loop, self._loop = self._loop, None
        self._kinds = ""
        if sock is None:
            return
        if loop is not None and not loop.is_closed():
            loop.remove_reader(sock.fileno())
        sock.close()
        if self._path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._path)
        # The last one out removes the directory, so databases that come and go (one per
        # test, say) leave nothing behind in the temp dir. Fails harmlessly while others
        # are still bound in it (not empty).
        with contextlib.suppress(OSError):
            os.rmdir(self._directory)

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
        """Tell every other process on this database that waits for ``kind`` that it
        happened. Non-blocking; failures are ignored (the receivers' polling covers them)."""
        sock = self._sender
        if sock is None:
            return
        try:
            names = os.listdir(self._directory)
        except OSError:
            return
        own = os.path.basename(self._path or "")
        wanted = kind.decode()
        for name in names:
            if name == own:
                continue
            _, dot, kinds = name.partition(".")
            if dot and wanted not in kinds:
                continue
            target = os.path.join(self._directory, name)
            try:
                sock.sendto(kind, target)
            except (ConnectionRefusedError, FileNotFoundError):
                # Nobody listens there any more (a process died without closing).
                with contextlib.suppress(OSError):
                    os.unlink(target)
                    os.rmdir(self._directory)  # if that was the last one
            except OSError:  # full buffer (it will wake anyway), permission, ...
                pass
