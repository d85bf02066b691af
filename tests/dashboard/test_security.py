"""Safe by default: no hook no dashboard, refused requests see and change nothing, every
action needs a POST with a valid CSRF token, every user-controlled string is escaped.
(Construction without an authorization hook: test_config.py.)"""

from __future__ import annotations

import re

import pytest

from beat import Scheduler
from beat.dashboard import Dashboard, DashboardRequest
from beat.stores import JobStatus, MemoryStore

from ._seed import EVIL, Seeded
from .conftest import ADMIN, dashboard, http, snapshot, token

pytestmark = pytest.mark.asyncio


# -- authorization --------------------------------------------------------------------------
async def test_a_refused_request_gets_403_and_no_data(store: MemoryStore, seeded: Seeded) -> None:
    async with http(dashboard(store=store)) as client:
        for path in ("/", "/jobs", f"/jobs/{seeded.dead}", "/jobs?status=dead", "/nope"):
            for headers in ({}, {"x-user": "mallory"}):
                response = await client.get(path, headers=headers)
                assert response.status_code == 403, path
                assert response.text == "Forbidden\n"
                assert "set-cookie" not in response.headers
        allowed = await client.get(f"/jobs/{seeded.dead}", headers=ADMIN)
        assert allowed.status_code == 200
        assert "card declined" in allowed.text


async def test_a_refused_post_changes_nothing_even_with_a_valid_token(
    store: MemoryStore, seeded: Seeded, scheduler: Scheduler
) -> None:
    app = dashboard(store=store, scheduler=scheduler)
    before = await snapshot(store)
    job = scheduler.jobs()[0].id
    async with http(app) as client:
        csrf = await token(client)  # an admin's page, then the admin is logged out
        for path, form in (
            (f"/jobs/{seeded.queued}/cancel", {}),
            (f"/jobs/{seeded.dead}/retry", {}),
            ("/schedules/pause", {"name": "nightly-report"}),
            (f"/scheduler/{job}/pause", {}),
            (f"/scheduler/{job}/run", {}),
        ):
            response = await client.post(path, data={"csrf_token": csrf, **form})
            assert response.status_code == 403, path
            assert response.text == "Forbidden\n"
    assert await snapshot(store) == before
    assert not scheduler.job_info(job).paused
    assert scheduler.statistics().fires == 0


async def test_the_hook_sees_each_request_and_its_action(
    store: MemoryStore, seeded: Seeded
) -> None:
    seen: list[DashboardRequest] = []

    async def authorize(request: DashboardRequest) -> bool:  # async hooks are awaited
        seen.append(request)
        return request.headers.get("x-user") == "admin"

    async with http(dashboard(store=store, authorize=authorize), root_path="") as client:
        csrf = await token(client)
        await client.post(f"/jobs/{seeded.queued}/cancel", data={"csrf_token": csrf}, headers=ADMIN)
    assert [(r.method, r.path, r.action) for r in seen] == [
        ("GET", "/", None),
        ("POST", f"/jobs/{seeded.queued}/cancel", "job.cancel"),
    ]
    assert seen[1].cookies.keys() == {"beat_csrf"}


@pytest.mark.parametrize("verdict", [None, 1, "yes", object()])
async def test_only_true_lets_a_request_in(store: MemoryStore, verdict: object) -> None:
    async with http(Dashboard(store=store, authorize=lambda r: verdict)) as client:
        assert (await client.get("/")).status_code == 403


async def test_a_raising_hook_refuses_with_a_bare_500(store: MemoryStore, seeded: Seeded) -> None:
    def broken(request: DashboardRequest) -> bool:
        raise KeyError("user")

    async with http(Dashboard(store=store, authorize=broken)) as client:
        response = await client.get(f"/jobs/{seeded.dead}")
    assert response.status_code == 500 and response.text == "Internal error\n"


# -- CSRF -----------------------------------------------------------------------------------
async def test_a_post_without_a_valid_csrf_token_is_refused_and_changes_nothing(
    store: MemoryStore, seeded: Seeded, scheduler: Scheduler
) -> None:
    app = dashboard(store=store, scheduler=scheduler)
    other = dashboard(store=store, scheduler=scheduler)  # another secret
    job = scheduler.jobs()[0].id
    before = await snapshot(store)
    async with http(app) as client, http(other) as elsewhere:
        good = await token(client)
        foreign = await token(elsewhere)
        cookie = client.cookies["beat_csrf"]
        attempts: list[tuple[dict[str, str], dict[str, str]]] = [
            ({}, {}),  # no token at all
            ({"csrf_token": ""}, {}),
            ({"csrf_token": "0" * 64}, {}),
            ({"csrf_token": foreign}, {}),  # signed with another secret
            ({"csrf_token": good}, {"sec-fetch-site": "cross-site"}),  # a foreign page's form
        ]
        for path in (
            f"/jobs/{seeded.queued}/cancel",
            f"/jobs/{seeded.dead}/retry",
            f"/scheduler/{job}/pause",
            f"/scheduler/{job}/run",
        ):
            for form, extra in attempts:
                response = await client.post(path, data=form, headers={**ADMIN, **extra})
                assert response.status_code == 403, (path, form, extra)
                assert response.text.startswith("Forbidden: ")
        # The right token with another browser's cookie (or none) is refused too.
        client.cookies.clear()
        response = await client.post(
            f"/jobs/{seeded.queued}/cancel", data={"csrf_token": good}, headers=ADMIN
        )
        assert response.status_code == 403
        client.cookies.set("beat_csrf", "A" * 43)
        response = await client.post(
            f"/jobs/{seeded.queued}/cancel", data={"csrf_token": good}, headers=ADMIN
        )
        assert response.status_code == 403
        client.cookies.set("beat_csrf", cookie)
        # A JSON body is not a form: no token is read from it.
        response = await client.post(
            f"/jobs/{seeded.queued}/cancel", json={"csrf_token": good}, headers=ADMIN
        )
        assert response.status_code == 403
    assert await snapshot(store) == before
    assert not scheduler.job_info(job).paused
    assert scheduler.statistics().fires == 0


async def test_processes_sharing_a_secret_accept_each_others_tokens(
    store: MemoryStore, seeded: Seeded
) -> None:
    # Two dashboards stand for two web processes behind one address: no server-side state.
    one = dashboard(store=store, secret="a shared secret of 32 bytes.....")
    two = dashboard(store=store, secret=b"a shared secret of 32 bytes.....")
    async with http(one) as first, http(two) as second:
        csrf = await token(first)
        second.cookies.set("beat_csrf", first.cookies["beat_csrf"])
        response = await second.post(
            f"/jobs/{seeded.queued}/cancel", data={"csrf_token": csrf}, headers=ADMIN
        )
    assert response.status_code == 303
    assert (await store.get(seeded.queued)).status is JobStatus.CANCELLED  # type: ignore[union-attr]


async def test_head_answers_like_get_without_a_body(store: MemoryStore, seeded: Seeded) -> None:
    async with http(dashboard(store=store)) as client:
        refused = await client.head("/jobs")
        allowed = await client.head("/jobs", headers=ADMIN)
    assert refused.status_code == 403 and refused.content == b""
    assert allowed.status_code == 200 and allowed.content == b""
    assert int(allowed.headers["content-length"]) > 0


async def test_get_never_changes_anything(
    store: MemoryStore, seeded: Seeded, scheduler: Scheduler
) -> None:
    app = dashboard(store=store, scheduler=scheduler)
    job = scheduler.jobs()[0].id
    before = await snapshot(store)
    async with http(app) as client:
        for path in (
            f"/jobs/{seeded.queued}/cancel",
            f"/jobs/{seeded.dead}/retry",
            "/schedules/pause?name=nightly-report",
            f"/scheduler/{job}/pause",
            f"/scheduler/{job}/run",
        ):
            response = await client.get(path, headers=ADMIN)
            assert response.status_code == 405, path
            assert response.headers["allow"] == "POST"
        for path in ("/", "/jobs", f"/jobs/{seeded.queued}", f"/jobs/{seeded.dead}"):
            assert (await client.get(path, headers=ADMIN)).status_code == 200
    assert await snapshot(store) == before
    assert not scheduler.job_info(job).paused


async def test_a_form_too_large_is_refused_unread(store: MemoryStore, seeded: Seeded) -> None:
    before = await snapshot(store)
    async with http(dashboard(store=store)) as client:
        csrf = await token(client)
        response = await client.post(
            f"/jobs/{seeded.queued}/cancel",
            data={"csrf_token": csrf, "pad": "x" * 20_000},
            headers=ADMIN,
        )
    assert response.status_code == 413
    assert await snapshot(store) == before


async def test_the_csrf_cookie_is_http_only_and_scoped_to_the_mount(store: MemoryStore) -> None:
    async with http(dashboard(store=store)) as client:
        first = await client.get("/", headers=ADMIN)
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
        second = await client.get("/jobs", headers=ADMIN)
        assert "set-cookie" not in second.headers  # the same nonce is kept
        assert re.findall(r'value="([0-9a-f]{64})"', first.text) == re.findall(
            r'value="([0-9a-f]{64})"', (await client.get("/", headers=ADMIN)).text
        )


# -- escaping and headers ---------------------------------------------------------------------
async def test_every_user_controlled_string_is_escaped(store: MemoryStore, seeded: Seeded) -> None:
    escaped = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
    async with http(dashboard(store=store)) as client:
        pages = {
            "/": 4,  # queue, stored schedule name and task, instance name/host/info
            f"/jobs?queue=q{EVIL}": 2,  # task and the filter's echoed queue
            f"/jobs/{seeded.evil}": 9,  # task, args, kwargs, meta, queue, error x3, logs x3
            f"/jobs?task={EVIL}&status=<b>": 0,  # a bad filter's error message
        }
        for path, at_least in pages.items():
            response = await client.get(path, headers=ADMIN)
            text = response.text
            assert "<script" not in text.lower(), path
            assert "<b>" not in text, path
            assert text.count("&lt;script&gt;") >= at_least, (path, text.count("&lt;script"))
            if at_least:
                assert escaped in text or "&lt;script&gt;alert(&#x27;x&#x27;)" in text, path


async def test_pages_forbid_scripts_and_framing(store: MemoryStore) -> None:
    async with http(dashboard(store=store)) as client:
        response = await client.get("/", headers=ADMIN)
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_redirect_never_leaves_the_dashboard(store: MemoryStore, seeded: Seeded) -> None:
    async with http(dashboard(store=store)) as client:
        csrf = await token(client)
        for target in ("https://evil.example/", "//evil.example/x", "/\\evil", "jobs"):
            response = await client.post(
                f"/jobs/{seeded.queued}/cancel",
                data={"csrf_token": csrf, "next": target},
                headers=ADMIN,
            )
            assert response.status_code == 303, target
            location = response.headers["location"]
            assert location.startswith(f"/jobs/{seeded.queued}?notice="), (target, location)
