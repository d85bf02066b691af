"""The dashboard as one ASGI application: routing, authorization, CSRF, actions.

Every request goes through the same steps, in this order, and stops at the first refusal:

1. route it (an unknown path is 404, a known one with the wrong method 405) — no data read;
2. ask the ``authorize`` hook (anything but ``True`` is 403 with an empty body) — still no
   data read and nothing done;
3. for a POST: read the small urlencoded form and check its CSRF token against the signed
   cookie (``_csrf``), and refuse a browser-declared cross-site request (403, nothing done);
4. only then read the store / scheduler, or perform the one action.

GET never changes anything (it may only hand out the CSRF cookie). Actions answer
``303 See Other`` back to a page, so a reload never repeats them.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit
from uuid import UUID

from .._client import Client
from .._exceptions import (
    BeatError,
    InvalidJobError,
    InvalidJobStateError,
    JobLookupError,
    JobNotFoundError,
    SchedulerStateError,
    StoreUnavailableError,
)
from .._scheduler import Scheduler
from .._schedules import PROGRESS_PREFIX, EnqueueOccurrence, is_stored
from ..stores import JobRecord, JobStatus, LogEntry, NewJob, ScheduleRecord, Store, Unique
from ..stores._base import check_name, stored_status
from . import _pages as pages
from ._csrf import COOKIE, FIELD, CsrfGuard
from ._html import CSP, segment
from ._http import (
    DashboardRequest,
    FormTooLarge,
    Receive,
    Response,
    Scope,
    Send,
    parse_query,
    read_form,
    route_path,
)

__all__ = ["Authorize", "Dashboard", "DashboardConfigError"]

logger = logging.getLogger("beat.dashboard")

Authorize = Callable[[DashboardRequest], bool | Awaitable[bool]]
"""``authorize(request) -> bool`` (or an awaitable of it): ``True`` lets the request in."""

MAX_PAGE_SIZE = 500
_ALL_STATUSES = frozenset(JobStatus)  # a run-now key conflicts with its job in any state


class DashboardConfigError(BeatError, ValueError):
    """Raised when a :class:`Dashboard` is built unusably: no ``authorize`` hook and no
    ``allow_anonymous=True``, a hook that is not callable, nothing to show, a bad option."""


# What the action answers tell the page after the redirect: fixed texts, chosen by code, so
# nothing from the query string is ever shown.
NOTICES = {
    "cancelled": "Job cancelled.",
    "cancel-requested": "Cancellation requested: the job's worker stops it at its next heartbeat.",
    "finished": "The job had already finished; nothing changed.",
    "already-cancelled": "The job was already cancelled; nothing changed.",
    "retried": "Job queued again.",
    "paused": "Paused.",
    "resumed": "Resumed.",
    "run-started": "Run started.",
    "enqueued": "Job enqueued.",
}


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    action: str | None  # the name the authorize hook sees; None for pages
    handler: str  # name of the Dashboard method answering it


def _route(method: str, pattern: str, action: str | None, handler: str) -> _Route:
    return _Route(method, re.compile(pattern + r"\Z"), action, handler)


_ROUTES = (
    _route("GET", r"/", None, "_overview"),
    _route("GET", r"/jobs/?", None, "_jobs"),
    _route("GET", r"/jobs/(?P<id>[^/]+)", None, "_job"),
    _route("POST", r"/jobs/(?P<id>[^/]+)/cancel", "job.cancel", "_cancel"),
    _route("POST", r"/jobs/(?P<id>[^/]+)/retry", "job.retry", "_retry"),
    _route("POST", r"/scheduler/(?P<id>[^/]+)/pause", "scheduler.pause", "_scheduler_pause"),
    _route("POST", r"/scheduler/(?P<id>[^/]+)/resume", "scheduler.resume", "_scheduler_resume"),
    _route("POST", r"/scheduler/(?P<id>[^/]+)/run", "scheduler.run", "_scheduler_run"),
    _route("POST", r"/schedules/pause", "schedule.pause", "_schedule_pause"),
    _route("POST", r"/schedules/resume", "schedule.resume", "_schedule_resume"),
    _route("POST", r"/schedules/run", "schedule.run", "_schedule_run"),
)


class _HttpError(Exception):
    """An answer other than the page: status, heading and a message (escaped when shown)."""

    def __init__(self, status: int, heading: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.heading = heading
        self.message = message


@dataclass(frozen=True, slots=True)
class _Call:
    """One routed, authorized request as the handlers see it."""

    request: DashboardRequest
    params: Mapping[str, str]
    query: Mapping[str, str]
    form: Mapping[str, str]
    token: str  # the CSRF token the page's forms carry

    @property
    def root(self) -> str:
        return self.request.root_path


class Dashboard:
    """A web dashboard for beat, as a plain ASGI app (no dependencies).

    Mount it (``app.mount("/beat", Dashboard(...))`` in FastAPI/Starlette) or serve it on its
    own (``uvicorn module:dashboard``). It shows what it is given:

    * ``store`` (or ``client``, or a ``scheduler`` built with ``store=``): queues with counts
      by state, the job list with filters, each job's detail and captured logs, stored
      schedules, live instances; actions cancel / retry a job, pause / resume a schedule;
    * ``scheduler``: its in-process jobs with next fire and last run; actions pause / resume
      / run now. Run-now starts the run on the loop serving the request, so serve the
      dashboard in the scheduler's loop (as a FastAPI app that starts it in its lifespan does).

    Safe by default: ``authorize`` — a callable taking a :class:`DashboardRequest` and
    returning (or awaiting to) ``True`` to let it in — is required unless
    ``allow_anonymous=True`` says that everyone reaching the mount may look and act (only
    behind your own authentication). :class:`DashboardConfigError` otherwise. Every action is
    a POST carrying a CSRF token bound to a cookie and signed with ``secret`` (random per
    process when ``None``: give the same secret to every process serving the dashboard
    behind one address). ``page_size``: jobs per list page.

    The dashboard never opens or closes the store when mounted (the application's lifespan
    does, as for :class:`beat.Client`); served on its own, it answers the ASGI lifespan
    protocol by opening the store at startup (unless already open) and closing it at
    shutdown only if it opened it.
    """

    def __init__(
        self,
        *,
        store: Store | None = None,
        scheduler: Scheduler | None = None,
        client: Client | None = None,
        authorize: Authorize | None = None,
        allow_anonymous: bool = False,
        secret: bytes | str | None = None,
        title: str = "beat",
        page_size: int = 50,
    ) -> None:
        self._authorize = _check_authorization(authorize, allow_anonymous)
        self.store, self.scheduler, self.client = _check_sources(store, scheduler, client)
        problem = CsrfGuard.secret_problem(secret)
        if problem is not None:
            raise DashboardConfigError(problem)
        self._csrf = CsrfGuard(secret.encode() if isinstance(secret, str) else secret)
        if not isinstance(title, str) or not title:
            raise DashboardConfigError(f"title must be a non-empty string, got {title!r}")
        if isinstance(page_size, bool) or not isinstance(page_size, int):
            raise DashboardConfigError(f"page_size must be an integer, got {page_size!r}")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise DashboardConfigError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        self.title = title
        self.page_size = page_size
        self._runs: set[asyncio.Task[Any]] = set()  # run-now tasks, kept until they finish

    def __repr__(self) -> str:
        store = type(self.store).__name__ if self.store is not None else None
        return f"<Dashboard store={store} scheduler={self.scheduler is not None}>"

    # -- ASGI ------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.client is not None:
                        await self.client.open()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.client is not None:
                    await self.client.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = str(scope.get("method", "GET")).upper()
        head = method == "HEAD"
        route, params, allowed = _match("GET" if head else method, route_path(scope))
        request = DashboardRequest.from_scope(scope, route.action if route else None)
        try:
            allowed_in = await self._allowed(request)
        except Exception:  # a broken hook lets nobody in, and says so in the log only
            logger.exception("dashboard: the authorize hook raised; request refused")
            await _plain(500, "Internal error").send(send, head=head)
            return
        if not allowed_in:
            logger.info("dashboard: %s %s refused by authorize", method, request.path)
            await _plain(403, "Forbidden").send(send, head=head)
            return
        if route is None:
            response = (
                _plain(405, "Method Not Allowed", [("allow", ", ".join(allowed))])
                if allowed
                else self._error(request.root_path, 404, "Not found", "No such page.")
            )
            await response.send(send, head=head)
            return
        cookie = request.cookies.get(COOKIE)
        fresh = cookie is None or not self._csrf.plausible_nonce(cookie)
        nonce = self._csrf.new_nonce() if cookie is None or fresh else cookie
        form: dict[str, str] = {}
        if route.method == "POST":
            try:
                form = await read_form(receive, request.headers)
            except FormTooLarge:
                await _plain(413, "Request too large").send(send)
                return
            refusal = self._csrf_refusal(request, form)
            if refusal is not None:
                logger.warning("dashboard: %s %s refused: %s", method, request.path, refusal)
                await _plain(403, f"Forbidden: {refusal}").send(send)
                return
        call = _Call(request, params, parse_query(scope), form, self._csrf.token_for(nonce))
        response = await self._answer(route, call)
        if fresh:
            response.headers.append(("set-cookie", _cookie(request, nonce)))
        await response.send(send, head=head)

    async def _allowed(self, request: DashboardRequest) -> bool:
        if self._authorize is None:  # allow_anonymous=True
            return True
        verdict = self._authorize(request)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        return verdict is True  # anything else (None, a user object, "yes") refuses

    def _csrf_refusal(self, request: DashboardRequest, form: Mapping[str, str]) -> str | None:
        # Browsers say where a request comes from; a cross-site POST is refused even before
        # the token is looked at (requests without the header rely on the token alone).
        if request.headers.get("sec-fetch-site") == "cross-site":
            return "cross-site request"
        if not self._csrf.valid(request.cookies.get(COOKIE), form.get(FIELD)):
            return "missing or invalid CSRF token"
        return None

    async def _answer(self, route: _Route, call: _Call) -> Response:
        handler: Callable[[_Call], Awaitable[Response]] = getattr(self, route.handler)
        try:
            return await handler(call)
        except _HttpError as exc:
            return self._error(call.root, exc.status, exc.heading, exc.message)
        except StoreUnavailableError as exc:
            logger.warning("dashboard: the store is unavailable: %s", exc)
            return self._error(call.root, 503, "Store unavailable", str(exc))
        except (JobNotFoundError, JobLookupError) as exc:
            return self._error(call.root, 404, "Not found", str(exc))
        except (InvalidJobStateError, SchedulerStateError) as exc:
            return self._error(call.root, 409, "Not possible now", str(exc))
        except InvalidJobError as exc:
            return self._error(call.root, 400, "Bad request", str(exc))
        except Exception:
            logger.exception("dashboard: %s %s failed", call.request.method, call.request.path)
            return self._error(call.root, 500, "Internal error", "See the server log.")

    def _error(self, root: str, status: int, heading: str, message: str) -> Response:
        return _page(status, pages.error_page(root, self.title, heading, message))

    # -- pages -----------------------------------------------------------------------------
    async def _now(self) -> datetime:
        if self.store is not None:
            return await self.store.now()
        if self.scheduler is not None:
            return datetime.fromtimestamp(self.scheduler.clock.time(), UTC)
        return datetime.now(UTC)

    async def _overview(self, call: _Call) -> Response:
        now = await self._now()
        store = self.store
        data = pages.Overview(
            now=now,
            counts=await store.count_jobs() if store is not None else None,
            instances=await store.list_instances() if store is not None else None,
            schedules=await self._stored_schedules(store) if store is not None else None,
            scheduler_jobs=self._scheduler_jobs(),
        )
        notice = NOTICES.get(call.query.get("notice", ""))
        return _page(200, pages.overview_page(call.root, self.title, data, call.token, notice))

    @staticmethod
    async def _stored_schedules(store: Store) -> list[ScheduleRecord]:
        # Progress rows of schedules defined in code are bookkeeping, not schedules.
        return [s for s in await store.list_schedules() if not s.name.startswith(PROGRESS_PREFIX)]

    def _scheduler_jobs(self) -> list[pages.SchedulerRow] | None:
        """The in-process jobs, less those that stand for stored schedules (shown, paused
        and run cluster-wide in the stored schedules' table)."""
        if self.scheduler is None:
            return None
        rows = []
        for info in self.scheduler.jobs():
            job = self.scheduler.get_job(info.id)
            if is_stored(job):
                continue
            history = job.history
            fn = job.fn
            enqueues = fn.target.task if isinstance(fn, EnqueueOccurrence) else None
            rows.append(pages.SchedulerRow(info, history[-1] if history else None, enqueues))
        return rows

    async def _jobs(self, call: _Call) -> Response:
        store = self._need_store()
        status = stored_status(call.query.get("status"))
        task = call.query.get("task")
        queue = call.query.get("queue")
        if task is not None:
            check_name(task, "task")
        if queue is not None:
            check_name(queue, "queue")
        after = _cursor(call.query.get("after"), "after")
        before = _cursor(call.query.get("before"), "before")
        n = self.page_size
        rows = await store.list_jobs(
            status=status, task=task, queue=queue, limit=n + 1, after=after, before=before
        )
        # One row more than shown tells whether a further page exists in that direction.
        if before is not None:
            more_older = len(rows) > n
            jobs = rows[1:] if more_older else rows
            older = jobs[0].id if more_older else None
            newer = jobs[-1].id if jobs else None
        else:
            jobs = rows[:n]
            newer = jobs[-1].id if len(rows) > n else None
            older = jobs[0].id if after is not None and jobs else None
        data = pages.JobsPage(
            jobs=jobs,
            status=status.value if status is not None else None,
            task=task,
            queue=queue,
            newer=newer,
            older=older,
        )
        notice = NOTICES.get(call.query.get("notice", ""))
        now = await store.now()
        return _page(200, pages.jobs_page(call.root, self.title, data, now, notice))

    async def _job(self, call: _Call) -> Response:
        store = self._need_store()
        record = await self._record(call)
        try:
            logs: list[LogEntry] = await store.get_logs(record.id)
        except JobNotFoundError:  # deleted (pruned) between the two reads
            logs = []
        now = await store.now()
        notice = NOTICES.get(call.query.get("notice", ""))
        html = pages.job_page(call.root, self.title, record, logs, now, call.token, notice)
        return _page(200, html)

    async def _record(self, call: _Call) -> JobRecord:
        store = self._need_store()
        id = _job_id(call.params["id"])
        record = await store.get(id)
        if record is None:
            raise _HttpError(404, "Not found", f"no job with id {id}")
        return record

    # -- actions ---------------------------------------------------------------------------
    async def _cancel(self, call: _Call) -> Response:
        """Cancel a job. The notice says what this request did: a job already finished
        (``cancelled`` included: a stale page, a second tab, a resubmitted form) is left as
        it is and reported so, never as "Job cancelled."."""
        client = self._need_client()
        id = _job_id(call.params["id"])
        before = await client.store.get(id)  # the store's cancel returns a finished job as is
        if before is not None and before.status.finished:
            record = before
            notice = "already-cancelled" if before.status is JobStatus.CANCELLED else "finished"
        else:
            record = await client.cancel(id)  # JobNotFoundError (404) if there is none
            if record.status is JobStatus.CANCELLED:
                notice = "cancelled"
            elif record.cancel_requested:
                notice = "cancel-requested"
            else:  # it finished between the two calls
                notice = "finished"
        self._audit(call, f"job {record.id} ({record.task}): {notice}")
        return _redirect(call, f"/jobs/{segment(record.id)}", notice)

    async def _retry(self, call: _Call) -> Response:
        client = self._need_client()
        record = await client.retry(_job_id(call.params["id"]))
        self._audit(call, f"job {record.id} ({record.task}) queued again")
        return _redirect(call, f"/jobs/{segment(record.id)}", "retried")

    async def _scheduler_pause(self, call: _Call) -> Response:
        scheduler = self._need_scheduler()
        id = _scheduler_job_id(call.params["id"])
        scheduler.pause_job(id)
        self._audit(call, f"scheduler job {scheduler.job_info(id).name!r} paused")
        return _redirect(call, "/", "paused")

    async def _scheduler_resume(self, call: _Call) -> Response:
        scheduler = self._need_scheduler()
        id = _scheduler_job_id(call.params["id"])
        scheduler.resume_job(id)
        self._audit(call, f"scheduler job {scheduler.job_info(id).name!r} resumed")
        return _redirect(call, "/", "resumed")

    async def _scheduler_run(self, call: _Call) -> Response:
        scheduler = self._need_scheduler()
        id = _scheduler_job_id(call.params["id"])
        info = scheduler.job_info(id)  # JobLookupError (404) before anything starts
        if not scheduler.running:
            raise SchedulerStateError("the scheduler is not running: run now is not possible")
        task = asyncio.get_running_loop().create_task(scheduler.run_now(id))
        self._runs.add(task)
        task.add_done_callback(self._run_finished)
        self._audit(call, f"scheduler job {info.name!r} run now")
        return _redirect(call, "/", "run-started")

    def _run_finished(self, task: asyncio.Task[Any]) -> None:
        self._runs.discard(task)
        # The scheduler already logged and reported the run's outcome; only collect it.
        if not task.cancelled() and task.exception() is not None:
            logger.debug("dashboard: run-now ended with %r", task.exception())

    async def _schedule_pause(self, call: _Call) -> Response:
        return await self._set_schedule_paused(call, True)

    async def _schedule_resume(self, call: _Call) -> Response:
        return await self._set_schedule_paused(call, False)

    async def _set_schedule_paused(self, call: _Call, paused: bool) -> Response:
        store = self._need_store()
        name = _schedule_name(call)
        await store.set_schedule_paused(name, paused)
        self._audit(call, f"stored schedule {name!r} {'paused' if paused else 'resumed'}")
        return _redirect(call, "/", "paused" if paused else "resumed")

    async def _schedule_run(self, call: _Call) -> Response:
        """Enqueue one job of a stored schedule now, outside its timing. The form's ``once``
        value makes it a unique key: the same form submitted twice stores one job."""
        store = self._need_store()
        name = _schedule_name(call)
        once = call.form.get("once", "")
        if not once:
            raise _HttpError(400, "Bad request", "the form has no 'once' value")
        schedule = await store.get_schedule(name)
        if schedule is None:
            raise _HttpError(404, "Not found", f"no schedule named {name!r}")
        [record] = await store.enqueue(
            [
                NewJob(
                    task=schedule.task,
                    args=schedule.args,
                    kwargs=dict(schedule.kwargs),
                    queue=schedule.queue,
                    priority=schedule.priority,
                    max_attempts=schedule.max_attempts,
                    meta={"schedule": name, "manual": True},
                    unique=Unique(key=f"dashboard:run:{name}:{once}", statuses=_ALL_STATUSES),
                )
            ]
        )
        if not record.conflict:
            self._audit(call, f"stored schedule {name!r} run now: job {record.id}")
        return _redirect(call, f"/jobs/{segment(record.id)}", "enqueued")

    def _audit(self, call: _Call, what: str) -> None:
        client = call.request.client
        who = f"{client[0]}:{client[1]}" if client else "?"
        logger.info("dashboard: %s (from %s)", what, who)

    # -- sources ---------------------------------------------------------------------------
    def _need_store(self) -> Store:
        if self.store is None:
            raise _HttpError(404, "No job store", "This dashboard has no job store configured.")
        return self.store

    def _need_client(self) -> Client:
        if self.client is None:
            raise _HttpError(404, "No job store", "This dashboard has no job store configured.")
        return self.client

    def _need_scheduler(self) -> Scheduler:
        if self.scheduler is None:
            raise _HttpError(404, "No scheduler", "This dashboard has no scheduler configured.")
        return self.scheduler


# -- helpers ------------------------------------------------------------------------------------
def _check_authorization(authorize: Any, allow_anonymous: object) -> Authorize | None:
    if not isinstance(allow_anonymous, bool):
        raise DashboardConfigError(
            f"allow_anonymous must be True or False, got {allow_anonymous!r}"
        )
    if authorize is None and not allow_anonymous:
        raise DashboardConfigError(
            "Dashboard needs authorize=<callable(request) -> bool> to decide who may see and "
            "act on jobs, or allow_anonymous=True to let everyone who reaches it in (only "
            "behind your own authentication)"
        )
    if authorize is not None and allow_anonymous:
        raise DashboardConfigError("give authorize or allow_anonymous=True, not both")
    if authorize is not None and not callable(authorize):
        raise DashboardConfigError(f"authorize must be callable, got {authorize!r}")
    hook: Authorize | None = authorize
    return hook


def _check_sources(
    store: object, scheduler: object, client: object
) -> tuple[Store | None, Scheduler | None, Client | None]:
    if store is not None and not isinstance(store, Store):
        raise DashboardConfigError(f"store must be a beat.stores.Store, got {store!r}")
    if scheduler is not None and not isinstance(scheduler, Scheduler):
        raise DashboardConfigError(f"scheduler must be a beat.Scheduler, got {scheduler!r}")
    if client is not None and not isinstance(client, Client):
        raise DashboardConfigError(f"client must be a beat.Client, got {client!r}")
    if client is not None and store is not None and client.store is not store:
        raise DashboardConfigError("client and store name different stores; give one of them")
    resolved = store
    if resolved is None and client is not None:
        resolved = client.store
    if resolved is None and scheduler is not None:
        resolved = scheduler.store
    if resolved is None and scheduler is None:
        raise DashboardConfigError("nothing to show: give a store, a client or a scheduler")
    if client is None and resolved is not None:
        client = Client(resolved)
    return resolved, scheduler, client


def _match(method: str, path: str) -> tuple[_Route | None, dict[str, str], list[str]]:
    """The route and its parameters; else the methods the path allows (empty: no page)."""
    allowed = []
    for route in _ROUTES:
        found = route.pattern.match(path)
        if found is None:
            continue
        if route.method == method:
            return route, found.groupdict(), []
        allowed.append(route.method)
    return None, {}, allowed


def _job_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise _HttpError(404, "Not found", f"{text!r} is not a job id") from None


def _scheduler_job_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise _HttpError(404, "Not found", f"{text!r} is not a scheduler job id") from None


def _schedule_name(call: _Call) -> str:
    name = call.form.get("name", "")
    if not name:
        raise _HttpError(400, "Bad request", "no schedule name given")
    if name.startswith(PROGRESS_PREFIX):  # bookkeeping of a schedule defined in code
        raise _HttpError(404, "Not found", f"no schedule named {name!r}")
    return name


def _cursor(text: str | None, what: str) -> UUID | None:
    if text is None:
        return None
    try:
        return UUID(text)
    except ValueError:
        raise InvalidJobError(f"{what} must be a job id, got {text!r}") from None


def _page(status: int, html: str) -> Response:
    return Response(status, html, headers=[("content-security-policy", CSP)])


def _plain(status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, text + "\n", "text/plain; charset=utf-8", headers or [])


def _redirect(call: _Call, default: str, notice: str) -> Response:
    """303 to ``next`` (a path inside the dashboard, given by the form) or ``default``."""
    target = call.form.get("next") or default
    parts = urlsplit(target)
    inside = (
        target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not parts.scheme
        and not parts.netloc
    )
    if not inside:
        parts = urlsplit(default)
    query = "&".join(q for q in (parts.query, urlencode({"notice": notice})) if q)
    location = f"{call.root}{parts.path}?{query}"
    return Response(303, "", "text/plain; charset=utf-8", [("location", location)])


def _cookie(request: DashboardRequest, nonce: str) -> str:
    secure = "; Secure" if request.scope.get("scheme") in ("https", "wss") else ""
    path = request.root_path or "/"
    return f"{COOKIE}={nonce}; Path={path}; HttpOnly; SameSite=Lax{secure}"
