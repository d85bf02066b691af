"""The coordinators package: backends load lazily, so the extras stay optional."""

from __future__ import annotations

import subprocess
import sys

import pytest

import beat.coordinators


def test_importing_the_package_loads_no_backend_client() -> None:
    code = (
        "import sys, beat, beat.coordinators; "
        "print(sorted(m for m in ('redis', 'asyncpg') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_backends_are_reachable_by_name() -> None:
    from beat.coordinators.postgres import PostgresCoordinator
    from beat.coordinators.redis import RedisCoordinator

    assert beat.coordinators.RedisCoordinator is RedisCoordinator
    assert beat.coordinators.PostgresCoordinator is PostgresCoordinator
    assert issubclass(RedisCoordinator, beat.coordinators.Coordinator)
    assert "RedisCoordinator" not in beat.coordinators.__all__  # import * needs no extras
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = beat.coordinators.Nope
