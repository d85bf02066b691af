"""Passwords out of anything printed or logged: :func:`redact`.

Used by the CLI (every message that may hold a store URL) and by the PostgreSQL store (its
log lines and errors name the server). Plain ``re``, so the CLI can use it without asyncpg.
"""

from __future__ import annotations

import re

__all__ = ["redact"]

# A password parameter: "?password=x" / "&password=x" in a URL's query, "password=x" or
# "password='x y'" in a libpq keyword DSN.
_PASSWORD_PARAM = re.compile(
    r"""(?i)((?:^|[?&;\s])password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&;\s'"]*)"""
)
# "user:password@" wherever it stands in a URL-ish string, however mistyped the scheme before
# it ("postgresql://", "postgresql:/", "postgresql//", none). The user starts the text or
# follows a slash, a space, a quote or "(" (never mid-word, so "scheme:" is not taken for a
# user), the password does not start with "/" (so "scheme://" is not one either) and runs to
# the last "@" before a space: a raw "@", "/" or quote in a password is hidden too.
_USERINFO = re.compile(r"""(?<![^\s/'"(])([^\s:/@'"]*:)(?!/)\S*@""")


def redact(text: str) -> str:
    """``text`` (a DSN, or any text holding one) with every password replaced by ``***``:
    the ``user:password@`` of a URL, well-formed or not, and ``password=`` parameters. Text
    without a password is returned unchanged; when in doubt more is hidden, never less."""
    return _USERINFO.sub(r"\1***@", _PASSWORD_PARAM.sub(r"\1***", text))
