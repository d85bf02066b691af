"""Throwaway Redis and PostgreSQL servers on loopback, started by the tests themselves.

``redis_server`` / ``postgres_server`` are shared by the whole session (each test uses its own
``namespace``); fault tests that stop or restart a server start a private one with
``RedisServer.start()`` / ``PostgresServer.start()``. Everything lives in a temporary
directory removed at the end.

PostgreSQL refuses to run as root: when the tests run as root (CI does), ``initdb`` and
``postgres`` run as the ``postgres`` user if it exists (the Debian package creates it), else
as ``nobody``; the data directory is handed to that user. The superuser is ``beat`` with
password ``beat``; TCP logins need the password (scram-sha-256), so wrong passwords fail.

A server whose binaries are missing makes its tests skip, naming what to install.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SUPERUSER = "beat"
PASSWORD = "beat"
START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on {port} within {START_TIMEOUT} s")


def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


# ---------------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------------
class RedisServer:
    """One ``redis-server`` without persistence: a restart loses every key."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls, base: Path) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        directory = Path(tempfile.mkdtemp(prefix="redis-", dir=base))
        return cls(binary, directory)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_for_port(self.port, self.proc, "redis-server")
        return self

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------
def _pg_bindir() -> str | None:
    initdb = shutil.which("initdb")
    if initdb is not None:
        return str(Path(os.path.realpath(initdb)).parent)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return str(Path(found[-1]).parent) if found else None


def _pg_user() -> pwd.struct_passwd | None:
    """The unprivileged user to run PostgreSQL as, or None to run as ourselves (not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")


class PostgresServer:
    """One throwaway PostgreSQL cluster (fsync off) with superuser ``beat``/``beat``."""

    def __init__(self, bindir: str, directory: Path) -> None:
        self.bindir = bindir
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.user = _pg_user()

    @classmethod
    def create(cls, base: Path) -> PostgresServer:
        bindir = _pg_bindir()
        if bindir is None:
            pytest.skip("PostgreSQL binaries (initdb, postgres) are not installed")
        # Not under pytest's tmp dirs: those are 0700 root, untraversable by the server user.
        directory = Path(tempfile.mkdtemp(prefix="beat-pg-"))
        server = cls(bindir, directory)
        server.init()
        return server

    def _as_user(self) -> dict[str, Any]:
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def init(self) -> None:
        pwfile = self.directory / "pw"
        pwfile.write_text(PASSWORD)
        if self.user is not None:
            for path in (self.directory, pwfile):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        subprocess.run(
            [
                f"{self.bindir}/initdb",
                "-D", str(self.data),
                "-U", SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E", "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            cwd=self.directory,
            **self._as_user(),
        )  # fmt: skip

    def dsn(
        self, user: str = SUPERUSER, password: str = PASSWORD, database: str = "postgres"
    ) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresServer:
        log = open(self.directory / "postgres.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [
                f"{self.bindir}/postgres",
                "-D", str(self.data),
                "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1",
                "-c", f"unix_socket_directories={self.directory}",
                "-c", "fsync=off",
                "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off",
                "-c", "max_connections=200",
            ],
            stdout=log,
            stderr=log,
            cwd=self.directory,
            **self._as_user(),
        )  # fmt: skip
        log.close()
        _wait_for_port(self.port, self.proc, "postgres")
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            done = subprocess.run(
                [f"{self.bindir}/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                check=False,
            )
            if done.returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("postgres did not become ready")

    def stop(self) -> None:
        # SIGINT = "fast" shutdown: sessions are disconnected, as in a real restart.
        _stop(self.proc, signal.SIGINT)
        self.proc = None

    async def aquery(self, *statements: str, database: str = "postgres") -> list[Any]:
        """Run statements as the superuser; returns the rows of the last one."""
        import asyncpg  # type: ignore[import-untyped]

        conn = await asyncpg.connect(self.dsn(database=database))
        try:
            rows: list[Any] = []
            for statement in statements:
                rows = await conn.fetch(statement)
            return rows
        finally:
            await conn.close()

    def query(self, *statements: str, database: str = "postgres") -> list[Any]:
        return asyncio.run(self.aquery(*statements, database=database))

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def server_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def redis_server(server_dir: Path) -> Iterator[RedisServer]:
    server = RedisServer.create(server_dir).start()
    yield server
    server.stop()


@pytest.fixture
def private_redis(server_dir: Path) -> Iterator[RedisServer]:
    """A server of this test's own, free to stop and restart."""
    server = RedisServer.create(server_dir).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer.create(Path(tempfile.gettempdir())).start()
    yield server
    server.cleanup()


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer.create(Path(tempfile.gettempdir())).start()
    yield server
    server.cleanup()


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:12]}"
