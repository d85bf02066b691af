"""Headless Chromium driven over the Chrome DevTools Protocol, with no Python dependency.

Chromium is started with ``--remote-debugging-pipe``: it reads protocol messages on file
descriptor 3 and writes them on 4, each a JSON text ended by a NUL byte. So no port, no
websocket library, no chromedriver. A reader thread hands each message to the event loop;
``send`` awaits the reply with the same id. Each test's page is a target in a browser
context of its own (cookies apart), attached with ``flatten=True``, so page commands carry
its ``sessionId``; one Chromium serves the whole module.

Chromium may not reach anything but loopback: every other request goes to a proxy on a
closed local port and every other host name resolves to nothing (``_ISOLATION``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import itertools
import json
import os
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

_TIMEOUT = 10.0  # seconds for any one protocol reply or page load

_ISOLATION = [
    "--proxy-server=http://127.0.0.1:9",  # loopback bypasses a proxy implicitly; nothing else
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--no-pings",
]


def find_chromium() -> str | None:
    """The Chromium binary: $BEAT_CHROMIUM, else the first of the usual names on PATH."""
    configured = os.environ.get("BEAT_CHROMIUM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class CdpError(Exception):
    """Chromium answered a command with an error, or went away."""


class Chromium:
    """One headless Chromium process. :meth:`launch`, then :meth:`new_page` per test (each in
    its own browser context: no cookies shared), then ``await close()``."""

    def __init__(self, pid: int, to_browser: int, from_browser: int) -> None:
        self._pid = pid
        self._out = to_browser
        self._in = from_browser
        self._loop = asyncio.get_running_loop()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pages: dict[str, Page] = {}  # sessionId -> page, for its events
        self._reader = threading.Thread(target=self._read, name="cdp-reader", daemon=True)
        self._reader.start()

    @classmethod
    def launch(cls, binary: str, profile: Path) -> Chromium:
        """Start Chromium (the caller's event loop then serves its replies)."""
        return cls(*_spawn(binary, profile))

    # -- transport --------------------------------------------------------------------------
    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._in, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self._post(None)
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                self._post(json.loads(raw))

    def _post(self, message: dict[str, Any] | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            self._loop.call_soon_threadsafe(self._dispatch, message)

    def _dispatch(self, message: dict[str, Any] | None) -> None:
        if message is None:  # Chromium closed the pipe
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(CdpError("Chromium went away"))
            self._pending.clear()
            return
        if "id" in message:
            future = self._pending.pop(message["id"]) if message["id"] in self._pending else None
            if future is None or future.done():
                return
            if "error" in message:
                future.set_exception(CdpError(str(message["error"])))
            else:
                future.set_result(message.get("result", {}))
        elif message.get("method") == "Page.loadEventFired":
            page = self._pages.get(message.get("sessionId", ""))
            if page is not None:
                page._loaded()

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None
    ) -> dict[str, Any]:
        """Send one command (to a page's ``session``, else to the browser) and await its
        reply."""
        id = next(self._ids)
        message: dict[str, Any] = {"id": id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._pending[id] = future
        os.write(self._out, json.dumps(message).encode() + b"\0")
        async with asyncio.timeout(_TIMEOUT):
            return await future

    async def new_page(self, width: int = 1280, height: int = 900) -> Page:
        """A page in a fresh browser context (its own cookies), ``width`` x ``height``."""
        context = (await self.send("Target.createBrowserContext"))["browserContextId"]
        target = await self.send(
            "Target.createTarget", {"url": "about:blank", "browserContextId": context}
        )
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, context, attached["sessionId"])
        self._pages[page.session] = page
        await page.send("Page.enable")
        await page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        return page

    async def _dispose(self, page: Page) -> None:
        self._pages.pop(page.session, None)
        await self.send("Target.disposeBrowserContext", {"browserContextId": page.context})

    async def close(self) -> None:
        with contextlib.suppress(CdpError, TimeoutError, OSError):
            async with asyncio.timeout(3):
                await self.send("Browser.close")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._pid, signal.SIGKILL)  # helpers that outlived the browser
        await asyncio.to_thread(os.waitpid, self._pid, 0)
        os.close(self._out)
        await asyncio.to_thread(self._reader.join, 5)
        os.close(self._in)


class Page:
    """One tab: navigate, read, click, type, screenshot. ``await close()`` disposes of its
    browser context."""

    def __init__(self, browser: Chromium, context: str, session: str) -> None:
        self._browser = browser
        self.context = context
        self.session = session
        self._loads = 0  # Page.loadEventFired seen so far
        self._load_changed = asyncio.Event()

    def _loaded(self) -> None:
        self._loads += 1
        self._load_changed.set()

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self._browser.send(method, params, session=self.session)

    async def close(self) -> None:
        await self._browser._dispose(self)

    async def set_cookie(self, url: str, name: str, value: str) -> None:
        await self.send("Network.setCookie", {"url": url, "name": name, "value": value})

    async def clear_cookies(self) -> None:
        await self.send("Network.clearBrowserCookies")

    async def goto(self, url: str) -> None:
        seen = self._loads
        reply = await self.send("Page.navigate", {"url": url})
        if reply.get("errorText"):
            raise CdpError(f"navigating to {url}: {reply['errorText']}")
        async with asyncio.timeout(_TIMEOUT):
            # A late load event of the previous page must not pass for this one.
            while True:
                await self._wait_load(seen)
                seen = self._loads
                if await self.evaluate("document.readyState") == "complete" and (
                    await self.url()
                ).startswith(url):
                    return

    async def _wait_load(self, seen: int) -> None:
        async with asyncio.timeout(_TIMEOUT):
            while self._loads <= seen:
                self._load_changed.clear()
                await self._load_changed.wait()

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (DevTools is not bound by
        the page's CSP, which forbids the page's own scripts)."""
        reply = await self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}
        )
        if "exceptionDetails" in reply:
            raise CdpError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def text(self, selector: str) -> str:
        value = await self.evaluate(
            f"(document.querySelector({json.dumps(selector)}) || {{}}).innerText || ''"
        )
        return str(value)

    async def url(self) -> str:
        return str(await self.evaluate("location.href"))

    async def click(self, selector: str, *, navigates: bool = True) -> None:
        """A real mouse click (press + release) in the middle of the element; waits for the
        page it leads to when ``navigates``."""
        point = await self.evaluate(
            f"""(() => {{
                const el = document.querySelector({json.dumps(selector)});
                if (!el) return null;
                el.scrollIntoView({{block: "center"}});
                const r = el.getBoundingClientRect();
                return [r.x + r.width / 2, r.y + r.height / 2];
            }})()"""
        )
        if point is None:
            raise CdpError(f"no element matches {selector!r} on {await self.url()}")
        seen = self._loads
        for kind in ("mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": point[0], "y": point[1], "button": "left", "clickCount": 1},
            )
        if navigates:
            await self._wait_load(seen)

    async def type(self, selector: str, text: str) -> None:
        """Focus a field with a click and type ``text`` into it, replacing its value."""
        await self.click(selector, navigates=False)
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).select()")
        await self.send("Input.insertText", {"text": text})

    async def screenshot(self, path: Path) -> bytes:
        """A PNG of the whole page (not only the viewport), written to ``path``."""
        size = (await self.send("Page.getLayoutMetrics"))["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        reply = await self.send(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
        data = base64.b64decode(reply["data"])
        await asyncio.to_thread(_write, path, data)
        return data


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _spawn(binary: str, profile: Path) -> tuple[int, int, int]:
    """Start Chromium with its protocol pipe on fds 3 and 4: (pid, our write end, our read
    end)."""
    to_child, to_browser = os.pipe()  # we write -> Chromium reads on fd 3
    from_browser, from_child = os.pipe()  # Chromium writes on fd 4 -> we read
    # Move the child's ends above 10 first, so the dup2 to 3 and 4 cannot clobber them.
    ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_child, from_child)]
    os.close(to_child)
    os.close(from_child)
    log = os.open(profile / "chromium.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    argv = [
        binary,
        "--headless",
        "--no-sandbox",  # the tests may run as root (CI does)
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--hide-scrollbars",
        "--mute-audio",
        f"--user-data-dir={profile / 'profile'}",
        "--remote-debugging-pipe",
        *_ISOLATION,
        "about:blank",
    ]
    try:
        pid = os.posix_spawn(
            binary,
            argv,
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, ends[0], 3),
                (os.POSIX_SPAWN_DUP2, ends[1], 4),
                (os.POSIX_SPAWN_DUP2, log, 1),
                (os.POSIX_SPAWN_DUP2, log, 2),
            ],
            setpgroup=0,  # its own group: close() ends Chromium and all its helpers
        )
    except BaseException:
        os.close(to_browser)
        os.close(from_browser)
        raise
    finally:
        for fd in (*ends, log):
            os.close(fd)
    return pid, to_browser, from_browser
