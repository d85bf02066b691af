"""HTML building blocks: escaping, the page layout, the stylesheet, small widgets.

The rule that keeps the pages safe: **every value that did not come from this module goes
through** :func:`e` (or a helper that calls it) before it is put into markup — task names,
queue names, arguments, errors, log lines, schedule names, instance info. Helpers that take
markup say so in their parameter name (``*_html``). No page runs a script: the CSP forbids
it, and styles are allowed only by the hash of the one stylesheet below.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "CSP",
    "action_button",
    "dt",
    "e",
    "json_block",
    "layout",
    "link",
    "status_badge",
    "table",
    "zone_named",
]


def e(value: object) -> str:
    """``value`` as text safe inside element content and quoted attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def link(root: str, path: str, label_html: str, query: Mapping[str, object] | None = None) -> str:
    """``<a>`` to a dashboard path; ``path`` segments that hold data must be quoted already."""
    return f'<a href="{e(href(root, path, query))}">{label_html}</a>'


def href(root: str, path: str, query: Mapping[str, object] | None = None) -> str:
    params = {k: str(v) for k, v in (query or {}).items() if v not in (None, "")}
    return f"{root}{path}" + (f"?{urlencode(params)}" if params else "")


def segment(value: object) -> str:
    """One path segment holding data (a job id)."""
    return quote(str(value), safe="")


def dt(value: datetime | None, now: datetime | None = None, zone: tzinfo | None = None) -> str:
    """A time as ``<time>``, in UTC and saying so: ``2026-12-03 02:00:00 UTC``. With ``zone``
    (a schedule's own time zone) other than UTC, also the same instant there:
    ``· 03:00:00 Europe/Berlin`` (with its date when that differs from the UTC date). With
    ``now``, how far away: ``(in 23 h)`` / ``(5 min ago)``. Every time on every page is
    shown this way, so none can be read as local time."""
    if value is None:
        return '<span class="muted">—</span>'
    utc = value.astimezone(UTC)
    iso = utc.isoformat()
    text = f'<time datetime="{e(iso)}" title="{e(iso)}">{e(utc.strftime(_FORMAT))} UTC</time>'
    name = "" if zone is None else str(zone)
    if name and name not in _UTC_NAMES:
        there = utc.astimezone(zone)
        shown = there.strftime("%H:%M:%S" if there.date() == utc.date() else _FORMAT)
        text += f' <span class="zone">· {e(shown)} {e(name)}</span>'
    rel = f' <span class="muted">({e(_relative(utc, now))})</span>' if now is not None else ""
    return f'<span class="when">{text}{rel}</span>'


_FORMAT = "%Y-%m-%d %H:%M:%S"
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Zulu", "Zulu", "Universal"})


def zone_named(name: str | None) -> tzinfo | None:
    """The IANA zone ``name`` for :func:`dt`, or ``None`` (no name, or one this host does
    not know: the time is then shown in UTC only)."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        return None


def _relative(value: datetime, now: datetime) -> str:
    seconds = (value - now).total_seconds()
    amount = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if amount >= size:
            text = f"{amount / size:.0f} {unit}"
            break
    else:
        text = f"{amount:.0f} s"
    return f"in {text}" if seconds > 0 else f"{text} ago"


def json_block(value: Any) -> str:
    """A JSON value pretty-printed in ``<pre>``."""
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):  # not JSON after all: show what it is
        text = repr(value)
    return f'<pre class="json">{e(text)}</pre>'


def status_badge(status: str) -> str:
    # The class is chosen from a fixed set, never taken from the value itself.
    kind = status if status in _BADGES else "other"
    return f'<span class="badge {kind}">{e(status)}</span>'


_BADGES = frozenset(
    {"scheduled", "queued", "running", "succeeded", "dead", "cancelled", "paused", "active"}
    | {"failed", "timed_out"}
)


def table(headers: Iterable[str], rows_html: Iterable[Iterable[str]], empty: str) -> str:
    """A table of already-rendered cells; ``headers`` are plain text."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    rows = ["<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows_html]
    if not rows:
        return f'<p class="muted">{e(empty)}</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def action_button(
    root: str,
    path: str,
    label: str,
    token: str,
    fields: Mapping[str, str] | None = None,
    *,
    danger: bool = False,
) -> str:
    """A one-button POST form carrying the CSRF token (the only way anything changes)."""
    hidden = "".join(
        f'<input type="hidden" name="{e(k)}" value="{e(v)}">'
        for k, v in {"csrf_token": token, **(fields or {})}.items()
    )
    css = "danger" if danger else "act"
    return (
        f'<form method="post" action="{e(root + path)}" class="inline">{hidden}'
        f'<button type="submit" class="{css}">{e(label)}</button></form>'
    )


def layout(root: str, title: str, active: str, body_html: str, notice: str | None = None) -> str:
    nav = "".join(
        f'<a href="{e(root + path)}"{" class=current" if key == active else ""}>{e(label)}</a>'
        for key, path, label in (("overview", "/", "Overview"), ("jobs", "/jobs", "Jobs"))
    )
    flash = f'<p class="notice" role="status">{e(notice)}</p>' if notice else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} · beat</title><style>{CSS}</style></head>"
        f'<body><header><span class="brand">beat</span><nav>{nav}</nav></header>'
        f"<main>{flash}{body_html}</main></body></html>"
    )


CSS = """
:root{--fg:#1d2330;--muted:#6b7280;--line:#e3e6ec;--bg:#f6f7f9;--card:#fff;--accent:#2f5fd0}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}
header{display:flex;align-items:center;gap:24px;padding:10px 24px;background:#1d2330;color:#fff}
header .brand{font-weight:700;font-size:18px;letter-spacing:.5px}
header nav a{color:#c9d3e6;text-decoration:none;margin-right:16px}
header nav a.current,header nav a:hover{color:#fff}
main{padding:20px 24px;max-width:1280px}
h1{font-size:20px;margin:0 0 16px}h2{font-size:16px;margin:0 0 10px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;
margin-bottom:18px;overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase}
td.num,th.num{text-align:right}
a{color:var(--accent)}
.muted{color:var(--muted)}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
pre{background:#f2f4f8;border:1px solid var(--line);border-radius:6px;padding:10px;margin:0;
white-space:pre-wrap;word-break:break-word;max-height:420px;overflow:auto}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;
background:#e8eaef;color:#3b4252}
.badge.scheduled{background:#e7effd;color:#2f5fd0}.badge.queued{background:#eef0ff;color:#4b4bd6}
.badge.running{background:#fff3d6;color:#8a5a00}.badge.succeeded{background:#e2f5e8;color:#1e7a3d}
.badge.dead,.badge.failed,.badge.timed_out{background:#fde4e4;color:#b42318}
.badge.cancelled{background:#ececec;color:#555}.badge.paused{background:#fff0e0;color:#a15c00}
.badge.active{background:#e2f5e8;color:#1e7a3d}
form.inline{display:inline;margin:0 4px 0 0}td:has(form.inline){white-space:nowrap}
button{font:inherit;font-size:12.5px;padding:3px 10px;border-radius:5px;cursor:pointer;
border:1px solid #b9c3d6;background:#fff;color:var(--fg)}
button.danger{border-color:#e5a3a3;color:#b42318}
button:hover{background:#f0f3f8}
.filters{display:flex;gap:10px;align-items:end;flex-wrap:wrap;margin-bottom:12px}
.filters label{display:flex;flex-direction:column;font-size:12px;color:var(--muted);gap:2px}
.filters input,.filters select{font:inherit;padding:4px 6px;border:1px solid #c8cfdc;
border-radius:5px}
.notice{background:#e7effd;border:1px solid #bcd0f7;padding:8px 12px;border-radius:6px}
.error{background:#fde4e4;border:1px solid #f3b4b4;padding:8px 12px;border-radius:6px}
.pager{display:flex;gap:16px;margin-top:10px}
dl.fields{display:grid;grid-template-columns:max-content 1fr;gap:4px 18px;margin:0}
dl.fields dt{color:var(--muted)}dl.fields dd{margin:0}
.counts td a{text-decoration:none}
.log-ERROR,.log-CRITICAL{color:#b42318}.log-WARNING{color:#8a5a00}
.when{white-space:nowrap}#actions{margin-top:12px}
"""

_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode("utf-8")).digest()).decode("ascii")
CSP = (
    "default-src 'none'; "
    f"style-src 'sha256-{_CSS_HASH}'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""No script at all; the one inline stylesheet allowed by hash; forms post to this origin."""
