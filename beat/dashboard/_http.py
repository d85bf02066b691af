"""The little HTTP the dashboard needs, on raw ASGI: requests, forms, cookies, responses.

No framework: the dashboard answers a handful of GET pages and urlencoded POST forms, so a
dependency would cost more than these lines. Header names arrive lower-cased (ASGI).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs

__all__ = [
    "MAX_FORM_BYTES",
    "DashboardRequest",
    "FormTooLarge",
    "Receive",
    "Response",
    "Scope",
    "Send",
    "parse_query",
    "read_form",
    "route_path",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_FORM_BYTES = 16 * 1024  # every dashboard form is a token and a name or two


class FormTooLarge(Exception):
    """A POST body longer than :data:`MAX_FORM_BYTES` (answered 413, nothing read further)."""


@dataclass(frozen=True, slots=True)
class DashboardRequest:
    """What the ``authorize`` hook is given: one request, before anything is read or done.

    ``scope`` is the raw ASGI scope (with a Starlette/FastAPI session or authentication
    middleware in front, ``scope["session"]`` / ``scope["user"]`` are there). ``path`` is the
    path inside the dashboard (``/jobs/…``), ``root_path`` where it is mounted. ``action`` is
    ``None`` for a page and the action's name for a POST (``"job.cancel"``, ``"job.retry"``,
    ``"scheduler.pause"``, ``"scheduler.resume"``, ``"scheduler.run"``,
    ``"schedule.pause"``, ``"schedule.resume"``, ``"schedule.run"``), so a hook can let
    some people look and fewer act. Header names are lower-case; repeated headers keep the
    last value.
    """

    scope: Scope = field(repr=False)
    method: str
    path: str
    root_path: str
    headers: Mapping[str, str] = field(repr=False)
    cookies: Mapping[str, str] = field(repr=False)
    client: tuple[str, int] | None
    action: str | None

    @classmethod
    def from_scope(cls, scope: Scope, action: str | None) -> DashboardRequest:
        headers = {
            bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1")
            for k, v in scope.get("headers", ())
        }
        client = scope.get("client")
        return cls(
            scope=scope,
            method=str(scope.get("method", "GET")).upper(),
            path=route_path(scope),
            root_path=_root_path(scope),
            headers=headers,
            cookies=_cookies(headers.get("cookie", "")),
            client=(str(client[0]), int(client[1])) if client else None,
            action=action,
        )


def _root_path(scope: Scope) -> str:
    return str(scope.get("root_path", "")).rstrip("/")


def route_path(scope: Scope) -> str:
    """The path inside the dashboard. Starlette's ``Mount`` (and uvicorn's ``--root-path``)
    keep the full path in ``scope["path"]`` and the prefix in ``root_path``; older servers
    strip it. Both are handled."""
    path = str(scope.get("path", "/")) or "/"
    root = _root_path(scope)
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root) :]
    return path or "/"


def _cookies(header: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:  # one malformed cookie of another app must not break the dashboard
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def parse_query(scope: Scope) -> dict[str, str]:
    """Query parameters, the first value of each (blank values dropped)."""
    raw = bytes(scope.get("query_string", b"")).decode("latin-1")
    return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=False).items()}


async def read_form(receive: Receive, headers: Mapping[str, str]) -> dict[str, str]:
    """The urlencoded body of a POST, first value per field; :class:`FormTooLarge` past
    :data:`MAX_FORM_BYTES`. Any other content type reads as an empty form (then the CSRF
    check refuses it)."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormTooLarge
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        body += message.get("body", b"")
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge
        if not message.get("more_body", False):
            break
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    text = body.decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


# Every answer forbids framing (the actions are buttons: no clickjacking), sniffing, caching
# (pages show job data) and, through the CSP set per page, any script.
_SECURITY_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)


@dataclass(slots=True)
class Response:
    """One answer: status, body, and the extra headers (content type, CSP, cookies...)."""

    status: int
    body: str = ""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    async def send(self, send: Send, *, head: bool = False) -> None:
        payload = self.body.encode("utf-8")
        headers = [
            (b"content-type", self.content_type.encode("latin-1")),
            (b"content-length", str(len(payload)).encode("latin-1")),
            *_SECURITY_HEADERS,
            *((k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers),
        ]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else payload})
