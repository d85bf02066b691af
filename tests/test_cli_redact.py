"""Passwords are never printed: every form of store URL a password can hide in is redacted
by ``beat._redact.redact``, which the CLI and the PostgreSQL store (its log lines and error
texts) both use; a URL ``urlsplit`` cannot parse is a one-line usage error."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from beat._cli_store import _redact as cli_redact
from beat._redact import redact
from beat.stores._postgres import _redact as store_redact
from tests.test_cli_jobs import cli, one_error_line

# (text, what it must read as)
CASES = [
    ("postgresql://beat:s3cret@127.0.0.1:1/beat", "postgresql://beat:***@127.0.0.1:1/beat"),
    (  # the query form libpq and asyncpg accept
        "postgresql://127.0.0.1:1/app?user=app&password=S3cr3t&sslmode=disable",
        "postgresql://127.0.0.1:1/app?user=app&password=***&sslmode=disable",
    ),
    ("postgresql://h/app?PASSWORD=S3cr3t", "postgresql://h/app?PASSWORD=***"),
    ("postgresql:/app:S3cr3t@127.0.0.1:1/app", "postgresql:/app:***@127.0.0.1:1/app"),
    ("postgresql//app:S3cr3t@127.0.0.1:1/app", "postgresql//app:***@127.0.0.1:1/app"),
    ("postgresql:app:S3cr3t@h/app", "postgresql:***@h/app"),
    ("postgresql://app:pw@[::1/app", "postgresql://app:***@[::1/app"),
    ("postgresql://:S3cr3t@h/app", "postgresql://:***@h/app"),
    ("postgresql://u:S3c@r/3t@h/app", "postgresql://u:***@h/app"),  # raw "@" and "/"
    ("mysql://u:S3cr3t@h/x", "mysql://u:***@h/x"),
    ("host=db password=S3cr3t user=app", "host=db password=*** user=app"),
    ("host=db password='S3c r3t' user=app", "host=db password=*** user=app"),
    (
        "PostgreSQL at 'postgresql://u:S3cr3t@h/d': OSError: [Errno 111] refused",
        "PostgreSQL at 'postgresql://u:***@h/d': OSError: [Errno 111] refused",
    ),
    # nothing to hide: unchanged
    ("postgresql://app@db/app", "postgresql://app@db/app"),
    ("postgresql://db:5432/app", "postgresql://db:5432/app"),
    ("postgresql://h1:5432,h2:5433/app", "postgresql://h1:5432,h2:5433/app"),
    ("no job 6f1c: already succeeded: nothing to cancel", None),
]


@pytest.mark.parametrize(("text", "redacted"), CASES)
def test_every_form_of_password_is_redacted(text: str, redacted: str | None) -> None:
    expected = text if redacted is None else redacted
    assert redact(text) == expected
    assert "S3c" not in expected


def test_the_cli_and_the_postgres_store_redact_with_the_same_function() -> None:
    assert cli_redact is redact and store_redact is redact


@pytest.mark.slow
def test_cli_errors_never_print_the_password() -> None:
    urls = [
        "postgresql://127.0.0.1:1/app?user=app&password=S3cr3t-query",
        "postgresql:/app:S3cr3t-oneslash@127.0.0.1:1/app",
        "postgresql//app:S3cr3t-nocolon@127.0.0.1:1/app",
        "postgresql://app:S3cr3t-ipv6@[::1/app",
        "postgresql://app:S3cr3t-port@127.0.0.1:abc/app",
    ]
    with ThreadPoolExecutor(2) as pool:  # independent processes, side by side
        query, one_slash, no_colon, ipv6, port = pool.map(
            lambda url: cli("jobs", "list", "--store", url), urls
        )
    one_error_line(query, 1, "unavailable", "password=***")
    # one slash would connect to the default host, not the one typed: bad input
    one_error_line(one_slash, 2, "bad PostgreSQL URL", "app:***@")
    one_error_line(no_colon, 2, "unsupported store URL", "app:***@")
    one_error_line(ipv6, 2, "bad PostgreSQL URL", "Invalid IPv6 URL", "app:***@")
    one_error_line(port, 2, "bad PostgreSQL URL", "'abc'", "app:***@")
    for run in (query, one_slash, no_colon, ipv6, port):
        assert "S3cr3t" not in run.err
