"""The dashboard in a real browser: headless Chromium (Debian's package) over the DevTools
protocol, the dashboard served by uvicorn on a loopback port over a real SQLite (and
PostgreSQL) store holding jobs in every state.

Each test starts its own store, server and browser (about a second), clicks through the real
pages and forms — the CSRF token is the one the page carries — and asserts what the store
says afterwards. The overview's screenshot is written to ``$BEAT_SCREENSHOT_DIR`` (default:
the system temp directory) as ``beat-dashboard.png``, outside the repository.

Skipped only when no Chromium binary is found (``.ci/run`` installs Debian's ``chromium``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import struct
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from beat import Job, Scheduler
from beat.dashboard import Dashboard, DashboardRequest
from beat.stores import JobStatus, ScheduleSpec, SQLiteStore, Store
from tests.coordinators.conftest import PostgresServer

from ._browser import Chromium, Page, find_chromium
from ._seed import Seeded, seed

uvicorn = pytest.importorskip("uvicorn")
fastapi = pytest.importorskip("fastapi")
CHROMIUM = find_chromium()
# Skipped without Chromium on a developer's machine; in CI (which installs it) a missing
# binary fails the tests instead, so they can never be skipped there unnoticed.
pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),  # the module's one Chromium lives on this loop
    pytest.mark.skipif(
        CHROMIUM is None and not os.environ.get("CI"),
        reason="no chromium binary found (apt-get install chromium, or set BEAT_CHROMIUM)",
    ),
]

SESSION = "s3cr3t-session-of-an-operator"  # the cookie the app's authorize hook accepts


def operator(request: DashboardRequest) -> bool:
    return request.cookies.get("session") == SESSION


@dataclass
class Site:
    store: Store
    seeded: Seeded
    scheduler: Scheduler
    browser: Page
    base: str  # http://127.0.0.1:port/beat

    async def status(self, id: uuid.UUID) -> JobStatus:
        record = await self.store.get(id)
        assert record is not None
        return record.status


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Chromium]:
    """One Chromium for the module (starting one costs about a second); each test gets a
    page in a browser context of its own."""
    if CHROMIUM is None:
        pytest.fail("CI=true but no chromium binary found: .ci/run should have installed it")
    browser = Chromium.launch(CHROMIUM, tmp_path_factory.mktemp("chromium"))
    try:
        yield browser
    finally:
        await browser.close()


@contextlib.asynccontextmanager
async def serve(store: Store, chromium: Chromium) -> AsyncIterator[Site]:
    """The dashboard mounted at /beat in a FastAPI app, under uvicorn on a loopback port."""
    seeded = await seed(store)
    # In-process jobs that do not fire during a test (the store's jobs are not run: the
    # scheduler has no store, so no worker takes them).
    scheduler = Scheduler()
    scheduler.add_job(Job.cron("0 3 * * *").do(_nothing, name="reports.nightly"))
    scheduler.add_job(Job.every(timedelta(hours=1)).do(_nothing, name="cache.refresh"))
    app = fastapi.FastAPI()
    app.mount("/beat", Dashboard(store=store, scheduler=scheduler, authorize=operator))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    browser = None
    scheduler.start()
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes no event for this
                await asyncio.sleep(0.01)
        browser = await chromium.new_page()
        base = f"http://127.0.0.1:{port}/beat"
        await browser.set_cookie(base, "session", SESSION)
        yield Site(store, seeded, scheduler, browser, base)
    finally:
        if browser is not None:
            await browser.close()
        server.should_exit = True
        await serving
        sock.close()
        await scheduler.shutdown(timeout=0)


async def _nothing(ctx: object) -> None:
    return None


@pytest_asyncio.fixture(loop_scope="module")
async def sqlite_site(tmp_path: Path, chromium: Chromium) -> AsyncIterator[Site]:
    async with SQLiteStore(tmp_path / "jobs.db") as store, serve(store, chromium) as site:
        yield site


def screenshot_path() -> Path:
    directory = os.environ.get("BEAT_SCREENSHOT_DIR") or tempfile.gettempdir()
    return Path(directory) / "beat-dashboard.png"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_the_overview_renders_and_is_screenshotted(sqlite_site: Site) -> None:
    site, browser = sqlite_site, sqlite_site.browser
    await browser.goto(site.base + "/")
    assert await browser.text("h1") == "Overview"
    queues = await browser.text("#queues")
    assert "mail" in queues and "default" in queues
    # The count cell of dead jobs in "default" links to the filtered list.
    assert (
        await browser.evaluate(
            "document.querySelector('#queues a[href=\"/beat/jobs?queue=default&status=dead\"]')"
            ".innerText"
        )
        == "1"
    )
    assert "nightly-report" in await browser.text("#schedules")
    assert "worker-1" in await browser.text("#instances")
    assert "cron 0 3 * * * (UTC)" in await browser.text("#scheduler-jobs")
    # Hostile strings are shown as text; no script element ever made it into the page.
    assert "<script>alert('x')</script>" in await browser.text("#schedules")
    assert await browser.evaluate("document.scripts.length") == 0

    path = screenshot_path()
    data = await browser.screenshot(path)
    assert path.read_bytes() == data and len(data) > 10_000
    width, height = png_size(data)
    assert width == 1280 and height >= 600

    # Pause an in-process job through its form.
    nightly = next(i.id for i in site.scheduler.jobs() if i.name == "reports.nightly")
    await browser.click(f'#scheduler-jobs form[action$="/scheduler/{nightly}/pause"] button')
    assert await browser.text(".notice") == "Paused."
    assert site.scheduler.job_info(nightly).paused

    # Without the operator's session cookie: 403 and nothing of the data.
    await browser.clear_cookies()
    await browser.goto(site.base + "/")
    assert (await browser.text("body")).strip() == "Forbidden"


async def test_filter_the_job_list_and_open_a_failed_job(sqlite_site: Site) -> None:
    site, browser = sqlite_site, sqlite_site.browser
    await browser.goto(site.base + "/jobs")
    assert await browser.evaluate("document.querySelectorAll('#jobs tbody tr').length") == 7
    await browser.evaluate("document.querySelector('select[name=status]').value = 'dead'")
    await browser.type("input[name=task]", "payments.charge")
    await browser.click("#filters button")
    url = await browser.url()
    assert "status=dead" in url and "task=payments.charge" in url
    rows = await browser.evaluate(
        "[...document.querySelectorAll('#jobs tbody tr')].map(r => r.innerText)"
    )
    assert len(rows) == 1 and "payments.charge" in rows[0] and "dead" in rows[0]

    await browser.click("#jobs tbody tr a")
    assert await browser.url() == f"{site.base}/jobs/{site.seeded.dead}"
    traceback = await browser.text("#traceback")
    assert traceback.startswith("Traceback (most recent call last):")
    assert traceback.endswith("ValueError: card declined")
    logs = await browser.text("#logs")
    assert "charging card ending 4242" in logs and "gateway said: card declined" in logs
    assert "EUR" in await browser.text("#arguments")


async def _cancel_and_retry(site: Site) -> None:
    browser = site.browser
    await browser.goto(f"{site.base}/jobs/{site.seeded.queued}")
    await browser.click("#actions button.danger")  # Cancel
    assert await browser.text(".notice") == "Job cancelled."
    assert await site.status(site.seeded.queued) is JobStatus.CANCELLED

    await browser.goto(f"{site.base}/jobs/{site.seeded.dead}")
    await browser.click("#actions button.act")  # Retry
    assert await browser.text(".notice") == "Job queued again."
    assert await site.status(site.seeded.dead) is JobStatus.QUEUED
    assert await browser.url() == f"{site.base}/jobs/{site.seeded.dead}?notice=retried"


async def test_cancel_a_queued_job_and_retry_a_dead_one(sqlite_site: Site) -> None:
    await _cancel_and_retry(sqlite_site)


async def test_cancel_on_a_stale_page_of_a_job_cancelled_meanwhile_says_so(
    sqlite_site: Site,
) -> None:
    site, browser = sqlite_site, sqlite_site.browser
    await browser.goto(f"{site.base}/jobs/{site.seeded.queued}")  # its Cancel button shown
    cancelled = await site.store.cancel(site.seeded.queued)  # another operator, meanwhile
    await browser.click("#actions button.danger")
    assert await browser.text(".notice") == "The job was already cancelled; nothing changed."
    assert await browser.url() == (
        f"{site.base}/jobs/{site.seeded.queued}?notice=already-cancelled"
    )
    assert await site.store.get(site.seeded.queued) == cancelled


async def test_every_time_on_the_pages_says_its_zone(sqlite_site: Site) -> None:
    """Times are UTC and say so; a schedule with its own zone shows its next fire there too
    (a bare 02:00 for a "0 3 * * *" Berlin cron reads as a bug)."""
    site, browser = sqlite_site, sqlite_site.browser
    await site.store.put_schedule(
        ScheduleSpec(
            name="berlin-report", task="reports.build", cron="0 3 * * *", timezone="Europe/Berlin"
        )
    )
    shown_times = (
        "[...document.querySelectorAll('time')]"
        ".map(t => t.innerText + ' | ' + t.parentElement.innerText)"
    )
    for path in ("/", "/jobs", f"/jobs/{site.seeded.dead}", f"/jobs/{site.seeded.running}"):
        await browser.goto(site.base + path)
        times = await browser.evaluate(shown_times)
        assert times, path
        for shown in times:
            own, _, cell = shown.partition(" | ")
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", own), (path, shown)
            assert cell.startswith(own), (path, shown)
    await browser.goto(site.base + "/")
    row = await browser.evaluate(
        "[...document.querySelectorAll('#schedules tbody tr')]"
        ".find(r => r.innerText.includes('berlin-report')).innerText"
    )
    # 02:00 UTC in winter, 01:00 UTC in summer: either way 03:00 in Berlin, and said so.
    assert "cron 0 3 * * * (Europe/Berlin)" in row
    assert re.search(r"\d{4}-\d\d-\d\d 0[12]:00:00 UTC · 03:00:00 Europe/Berlin \(in ", row)
    # The in-process jobs (cron in UTC, every hour): UTC only, marked.
    jobs = await browser.text("#scheduler-jobs")
    assert re.search(r"\d\d:00:00 UTC \(in ", jobs) and "·" not in jobs


async def test_a_form_replayed_with_another_browsers_cookie_changes_nothing(
    sqlite_site: Site,
) -> None:
    site, browser = sqlite_site, sqlite_site.browser
    await browser.goto(f"{site.base}/jobs/{site.seeded.queued}")
    # Another CSRF cookie (as a sibling site could plant), the page's token unchanged.
    await browser.set_cookie(site.base, "beat_csrf", "A" * 43)
    await browser.click("#actions button.danger")
    assert "Forbidden" in await browser.text("body")
    assert await site.status(site.seeded.queued) is JobStatus.QUEUED


async def test_cancel_and_retry_on_postgresql(
    store_postgres: PostgresServer,
    chromium: Chromium,
) -> None:
    from beat.stores import PostgresStore

    dsn = store_postgres.dsn()
    store = PostgresStore(dsn, schema=f"d{uuid.uuid4().hex[:12]}")
    async with store, serve(store, chromium) as site:
        await _cancel_and_retry(site)
