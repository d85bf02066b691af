"""What each page shows and what each action does, over httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from beat import Job, Scheduler
from beat.dashboard import Dashboard
from beat.stores import JobStatus, MemoryStore, NewJob, ScheduleSpec
from beat.testing import FakeClock

from ._seed import TRACEBACK, Seeded, seed
from .conftest import ADMIN, START, dashboard, http, token

pytestmark = pytest.mark.asyncio


def job_links(html: str) -> list[str]:
    return re.findall(r'href="/jobs/([0-9a-f-]{36})"', html)


async def test_the_overview_shows_queues_schedules_and_instances(
    store: MemoryStore, seeded: Seeded, scheduler: Scheduler
) -> None:
    async with http(dashboard(store=store, scheduler=scheduler)) as client:
        page = (await client.get("/", headers=ADMIN)).text
    queues = page[page.index('id="queues"') : page.index("</section>", page.index('id="queues"'))]
    # each non-zero count links to the filtered list
    assert 'href="/jobs?queue=default&amp;status=running">1</a>' in queues
    assert 'href="/jobs?queue=mail&amp;status=queued">1</a>' in queues
    assert 'href="/jobs?queue=default&amp;status=dead">1</a>' in queues
    assert 'href="/jobs?queue=mail&amp;status=dead"' not in queues  # zero: no link
    assert "nightly-report" in page and "cron 0 3 * * * (UTC)" in page  # stored schedule
    assert "worker-1" in page and "host-a" in page and "4242" in page  # live instance
    assert "nightly" in page and "heartbeat" in page  # in-process scheduler jobs
    assert page.count("Run now") == 4  # two in-process jobs, two stored schedules


async def test_the_job_list_filters_by_status_task_and_queue(
    store: MemoryStore, seeded: Seeded
) -> None:
    async with http(dashboard(store=store)) as client:
        dead = (await client.get("/jobs?status=dead", headers=ADMIN)).text
        assert set(job_links(dead)) == {str(seeded.dead), str(seeded.evil)}
        assert '<option value="dead" selected>' in dead
        by_task = (await client.get("/jobs?task=sums.add", headers=ADMIN)).text
        assert job_links(by_task) == [str(seeded.succeeded)]
        by_queue = (await client.get("/jobs?queue=mail&status=queued", headers=ADMIN)).text
        assert job_links(by_queue) == [str(seeded.queued)]
        bad = await client.get("/jobs?status=exploded", headers=ADMIN)
        assert bad.status_code == 400 and "unknown job status &#x27;exploded&#x27;" in bad.text


async def test_the_job_list_pages_both_ways(store: MemoryStore) -> None:
    ids = [r.id for r in await store.enqueue([NewJob("t", [i]) for i in range(5)])]
    async with http(dashboard(store=store, page_size=2)) as client:
        first = (await client.get("/jobs", headers=ADMIN)).text
        assert job_links(first) == [str(i) for i in ids[:2]]
        assert "Older" not in first and f"after={ids[1]}" in first
        second = (await client.get(f"/jobs?after={ids[1]}", headers=ADMIN)).text
        assert job_links(second) == [str(i) for i in ids[2:4]]
        assert f"before={ids[2]}" in second and f"after={ids[3]}" in second
        last = (await client.get(f"/jobs?after={ids[3]}", headers=ADMIN)).text
        assert job_links(last) == [str(ids[4])] and "Newer" not in last
        back = (await client.get(f"/jobs?before={ids[2]}", headers=ADMIN)).text
        assert job_links(back) == [str(i) for i in ids[:2]] and "Older" not in back


async def test_a_job_page_shows_arguments_error_traceback_and_logs(
    store: MemoryStore, seeded: Seeded
) -> None:
    async with http(dashboard(store=store)) as client:
        dead = (await client.get(f"/jobs/{seeded.dead}", headers=ADMIN)).text
        running = (await client.get(f"/jobs/{seeded.running}", headers=ADMIN)).text
        done = (await client.get(f"/jobs/{seeded.succeeded}", headers=ADMIN)).text
        missing = await client.get("/jobs/6d2c8a51-0000-4000-8000-000000000000", headers=ADMIN)
        not_an_id = await client.get("/jobs/42", headers=ADMIN)
    assert "payments.charge" in dead and "&quot;currency&quot;: &quot;EUR&quot;" in dead
    assert "&quot;parent&quot;" in dead  # meta
    assert "ValueError" in dead and "card declined" in dead
    assert TRACEBACK.replace("'", "&#x27;").replace('"', "&quot;") in dead
    assert "charging card ending 4242" in dead and "gateway said: card declined" in dead
    assert "1 of 1" in dead and "worker-1" in dead
    assert ">Retry</button>" in dead and ">Cancel</button>" not in dead
    assert "&quot;done&quot;: 3" in running and ">Cancel</button>" in running  # progress
    assert '<progress value="3" max="10"></progress> 30%' in running
    assert "&quot;sum&quot;: 3" in done and "Retry" not in done  # result
    assert missing.status_code == 404 and not_an_id.status_code == 404


async def test_cancel_and_retry_through_the_forms(store: MemoryStore, seeded: Seeded) -> None:
    async with http(dashboard(store=store)) as client:
        csrf = await token(client, f"/jobs/{seeded.queued}")
        cancel = await client.post(
            f"/jobs/{seeded.queued}/cancel", data={"csrf_token": csrf}, headers=ADMIN
        )
        assert cancel.status_code == 303
        assert cancel.headers["location"] == f"/jobs/{seeded.queued}?notice=cancelled"
        shown = await client.get(cancel.headers["location"], headers=ADMIN)
        assert "Job cancelled." in shown.text
        running = await client.post(
            f"/jobs/{seeded.running}/cancel", data={"csrf_token": csrf}, headers=ADMIN
        )
        assert running.headers["location"].endswith("notice=cancel-requested")
        retry = await client.post(
            f"/jobs/{seeded.dead}/retry", data={"csrf_token": csrf}, headers=ADMIN
        )
        assert retry.headers["location"] == f"/jobs/{seeded.dead}?notice=retried"
        refused = await client.post(
            f"/jobs/{seeded.succeeded}/retry", data={"csrf_token": csrf}, headers=ADMIN
        )
        assert refused.status_code == 409 and "succeeded" in refused.text
    assert (await store.get(seeded.queued)).status is JobStatus.CANCELLED  # type: ignore[union-attr]
    assert (await store.get(seeded.running)).cancel_requested  # type: ignore[union-attr]
    assert (await store.get(seeded.dead)).status is JobStatus.QUEUED  # type: ignore[union-attr]
    assert (await store.get(seeded.succeeded)).status is JobStatus.SUCCEEDED  # type: ignore[union-attr]


async def test_stored_schedules_pause_and_resume(store: MemoryStore, seeded: Seeded) -> None:
    async with http(dashboard(store=store)) as client:
        csrf = await token(client)
        form = {"csrf_token": csrf, "name": "nightly-report"}
        paused = await client.post("/schedules/pause", data=form, headers=ADMIN)
        assert paused.headers["location"] == "/?notice=paused"
        assert (await store.get_schedule("nightly-report")).paused  # type: ignore[union-attr]
        page = (await client.get("/", headers=ADMIN)).text
        assert ">Resume</button>" in page
        await client.post("/schedules/resume", data=form, headers=ADMIN)
        assert not (await store.get_schedule("nightly-report")).paused  # type: ignore[union-attr]
        unknown = await client.post(
            "/schedules/pause", data={"csrf_token": csrf, "name": "nope"}, headers=ADMIN
        )
        assert unknown.status_code == 404


async def test_run_now_of_a_stored_schedule_enqueues_one_job_per_form(
    store: MemoryStore, seeded: Seeded
) -> None:
    async with http(dashboard(store=store)) as client:
        page = (await client.get("/", headers=ADMIN)).text
        form = re.search(
            r'action="/schedules/run".*?name="csrf_token" value="(\w+)">'
            r'<input type="hidden" name="name" value="nightly-report">'
            r'<input type="hidden" name="once" value="(\w+)">',
            page,
        )
        assert form is not None
        data = {"csrf_token": form.group(1), "name": "nightly-report", "once": form.group(2)}
        first = await client.post("/schedules/run", data=data, headers=ADMIN)
        again = await client.post("/schedules/run", data=data, headers=ADMIN)  # double click
        assert first.status_code == again.status_code == 303
        assert first.headers["location"] == again.headers["location"]
        other = await client.post(
            "/schedules/run", data={**data, "once": "another-form"}, headers=ADMIN
        )
        assert other.headers["location"] != first.headers["location"]
    jobs = await store.list_jobs(task="reports.build", limit=10)
    manual = [j for j in jobs if j.meta.get("manual")]
    assert len(manual) == 2
    assert manual[0].meta == {"schedule": "nightly-report", "manual": True}
    assert first.headers["location"] == f"/jobs/{manual[0].id}?notice=enqueued"


async def test_without_a_store_only_the_scheduler_jobs_are_shown_and_driven(
    scheduler: Scheduler,
) -> None:
    nightly = next(i.id for i in scheduler.jobs() if i.name == "nightly")
    async with http(dashboard(scheduler=scheduler)) as client:
        page = (await client.get("/", headers=ADMIN)).text
        assert "No job store configured" in page and "Queues" not in page
        assert "cron 0 3 * * * (UTC)" in page and "2026-01-01 03:00:00" in page  # next fire
        assert (await client.get("/jobs", headers=ADMIN)).status_code == 404
        csrf = await token(client)
        await client.post(f"/scheduler/{nightly}/pause", data={"csrf_token": csrf}, headers=ADMIN)
        assert scheduler.job_info(nightly).paused
        await client.post(f"/scheduler/{nightly}/resume", data={"csrf_token": csrf}, headers=ADMIN)
        assert not scheduler.job_info(nightly).paused
        finished = asyncio.ensure_future(scheduler.wait_next_run(nightly))
        run = await client.post(
            f"/scheduler/{nightly}/run", data={"csrf_token": csrf}, headers=ADMIN
        )
        assert run.headers["location"] == "/?notice=run-started"
        record = await asyncio.wait_for(finished, 5)
        assert record.outcome.value == "succeeded" and record.result == "1"
        page = (await client.get("/", headers=ADMIN)).text
        assert "never" in page and page.count('class="badge succeeded"') == 1  # the last run
        gone = await client.post(
            "/scheduler/6d2c8a51-0000-4000-8000-000000000000/run",
            data={"csrf_token": csrf},
            headers=ADMIN,
        )
        assert gone.status_code == 404


async def test_mounted_in_fastapi_every_link_and_cookie_stays_under_the_mount(
    store: MemoryStore, seeded: Seeded
) -> None:
    fastapi = pytest.importorskip("fastapi")
    app = fastapi.FastAPI()
    app.mount("/ops/beat", dashboard(store=store))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        page = await client.get(f"/ops/beat/jobs/{seeded.queued}", headers=ADMIN)
        assert page.status_code == 200
        assert "Path=/ops/beat;" in page.headers["set-cookie"]
        links = re.findall(r'(?:href|action)="([^"]+)"', page.text)
        assert links and all(link.startswith("/ops/beat/") for link in links), links
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
        assert csrf is not None
        cancel = await client.post(
            f"/ops/beat/jobs/{seeded.queued}/cancel",
            data={"csrf_token": csrf.group(1)},
            headers=ADMIN,
        )
        assert cancel.headers["location"] == f"/ops/beat/jobs/{seeded.queued}?notice=cancelled"
    assert (await store.get(seeded.queued)).status is JobStatus.CANCELLED  # type: ignore[union-attr]


async def test_served_alone_it_opens_and_closes_the_store_with_the_lifespan() -> None:
    store = MemoryStore()
    app = Dashboard(store=store, allow_anonymous=True)
    sent: list[str] = []
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> dict[str, str]:
        if len(inbox) == 1:  # between startup and shutdown: the store is open
            assert await store.now()
        return inbox.pop(0)

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])

    await app({"type": "lifespan"}, receive, send)  # type: ignore[arg-type]
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    with pytest.raises(Exception, match=r"not open|closed"):
        await store.now()


async def test_an_unreachable_store_is_a_503_page() -> None:
    store = MemoryStore()  # never opened
    async with http(Dashboard(store=store, allow_anonymous=True)) as client:
        response = await client.get("/")
    assert response.status_code == 503 and "Store unavailable" in response.text


async def test_cancelling_a_finished_job_says_nothing_changed(
    store: MemoryStore, seeded: Seeded
) -> None:
    """A stale page, a second tab or a resubmitted form can post Cancel for a job that is
    already cancelled: the notice must not claim this request cancelled it."""
    before = await store.get(seeded.cancelled)
    async with http(dashboard(store=store)) as client:
        csrf = await token(client)
        for id, notice, text in (
            (seeded.cancelled, "already-cancelled", "The job was already cancelled"),
            (seeded.succeeded, "finished", "The job had already finished"),
            (seeded.dead, "finished", "The job had already finished"),
        ):
            answer = await client.post(
                f"/jobs/{id}/cancel", data={"csrf_token": csrf}, headers=ADMIN
            )
            assert answer.status_code == 303
            assert answer.headers["location"] == f"/jobs/{id}?notice={notice}"
            shown = (await client.get(answer.headers["location"], headers=ADMIN)).text
            assert text in shown and "Job cancelled." not in shown
        missing = await client.post(
            "/jobs/6d2c8a51-0000-4000-8000-000000000000/cancel",
            data={"csrf_token": csrf},
            headers=ADMIN,
        )
        assert missing.status_code == 404
    assert await store.get(seeded.cancelled) == before  # untouched
    assert (await store.get(seeded.dead)).status is JobStatus.DEAD  # type: ignore[union-attr]


# A date and time on the page not followed by the zone it is in ("UTC", or a zone name).
BARE_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?! UTC| [A-Z][A-Za-z_]+/[A-Za-z_])")


def visible(html: str) -> str:
    """The page's text as shown: tags dropped, so attributes (``<time datetime>``) are not."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.split("<main>", 1)[1]))


async def test_every_time_shown_says_utc_and_a_zoned_schedule_its_own_zone_too() -> None:
    """A cron at 03:00 Europe/Berlin fires at 02:00 UTC in winter: a bare "02:00:00" reads
    as wrong. Every time says UTC, and a zoned schedule's instants are also shown in its
    zone."""
    scheduler = Scheduler(clock=FakeClock(START))
    scheduler.add_job(Job.cron("30 6 * * *", tz="America/New_York").do(_nothing, name="ny-open"))
    async with MemoryStore(clock=START.timestamp) as store:
        seeded = await seed(store)
        for name, cron, zone in (
            ("berlin-report", "0 3 * * *", "Europe/Berlin"),
            ("tokyo-close", "0 1 * * *", "Asia/Tokyo"),
        ):
            await store.put_schedule(
                ScheduleSpec(name=name, task="reports.build", cron=cron, timezone=zone)
            )
        async with scheduler, http(dashboard(store=store, scheduler=scheduler)) as client:
            html = {
                path: (await client.get(path, headers=ADMIN)).text
                for path in ("/", "/jobs", f"/jobs/{seeded.dead}", f"/jobs/{seeded.running}")
            }
            await scheduler.shutdown(timeout=0)
    for path, page in html.items():
        text = visible(page)
        assert " UTC" in text, path
        assert BARE_TIME.findall(text) == [], path
    overview = visible(html["/"])
    # START is 2026-01-01 00:00 UTC, winter: Berlin is UTC+1, New York UTC-5, Tokyo UTC+9.
    assert "2026-01-01 02:00:00 UTC · 03:00:00 Europe/Berlin" in overview  # stored
    assert "2026-01-01 11:30:00 UTC · 06:30:00 America/New_York" in overview  # in-process
    # 01:00 in Tokyo is still the day before in UTC: the zone's own date is shown too.
    assert "2026-01-01 16:00:00 UTC · 2026-01-02 01:00:00 Asia/Tokyo" in overview
    # A schedule in UTC is not shown twice.
    row = re.search(r"nightly-report.*?</tr>", html["/"], re.S)
    assert row is not None and "2026-01-01 03:00:00 UTC" in visible("<main>" + row.group(0))
    assert "·" not in visible("<main>" + row.group(0))


async def _nothing(ctx: object) -> None:
    return None
