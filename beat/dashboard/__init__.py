"""A web dashboard for beat: an ASGI app to mount into FastAPI/Starlette or serve on its own.

>>> from beat.dashboard import Dashboard                           # doctest: +SKIP
>>> app.mount("/beat", Dashboard(store=store, authorize=is_admin))  # doctest: +SKIP

See ``docs/dashboard.md``: the pages, the actions and the security model (an ``authorize``
hook is required, every action is a CSRF-protected POST, everything shown is escaped).
No dependencies beyond beat itself.
"""

from ._app import Authorize, Dashboard, DashboardConfigError
from ._http import DashboardRequest

__all__ = ["Authorize", "Dashboard", "DashboardConfigError", "DashboardRequest"]
