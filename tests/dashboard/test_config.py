"""Building a dashboard: no authorization hook (nor an explicit allow_anonymous) no dashboard;
every bad option is a DashboardConfigError naming the value."""

from __future__ import annotations

import re
from typing import Any

import pytest

from beat import BeatError
from beat.dashboard import Dashboard, DashboardConfigError
from beat.stores import MemoryStore


def test_a_dashboard_without_authorize_or_allow_anonymous_is_refused() -> None:
    with pytest.raises(DashboardConfigError, match=r"authorize=.*allow_anonymous=True"):
        Dashboard(store=MemoryStore())
    assert issubclass(DashboardConfigError, BeatError)
    assert issubclass(DashboardConfigError, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"authorize": lambda r: True, "allow_anonymous": True}, "not both"),
        ({"authorize": "admin"}, "authorize must be callable, got 'admin'"),
        ({"allow_anonymous": "yes"}, "allow_anonymous must be True or False, got 'yes'"),
        ({"allow_anonymous": True, "secret": b"short"}, "at least 16 bytes"),
        ({"allow_anonymous": True, "page_size": 0}, "page_size must be 1..500, got 0"),
        ({"allow_anonymous": True, "store": "sqlite:///x"}, "store must be a beat.stores.Store"),
    ],
)
def test_bad_options_are_named(kwargs: dict[str, Any], message: str) -> None:
    kwargs.setdefault("store", MemoryStore())
    with pytest.raises(DashboardConfigError, match=re.escape(message)):
        Dashboard(**kwargs)


def test_a_dashboard_with_nothing_to_show_is_refused() -> None:
    with pytest.raises(DashboardConfigError, match="nothing to show"):
        Dashboard(allow_anonymous=True)


def test_the_public_names_are_sorted_and_come_from_private_modules() -> None:
    import beat.dashboard

    assert beat.dashboard.__all__ == sorted(beat.dashboard.__all__)
    for name in beat.dashboard.__all__:
        obj = getattr(beat.dashboard, name)
        if isinstance(obj, type):  # (Authorize is a type alias)
            assert obj.__module__.startswith("beat.dashboard._"), name


@pytest.mark.parametrize(
    ("progress", "bar"),
    [
        (0.25, '<progress value="0.25" max="1"></progress> 25%'),
        ({"current": 2, "total": 8}, '<progress value="2" max="8"></progress> 25%'),
        ({"done": 11, "total": 10}, ""),  # past the end: no bar, the JSON only
        ({"done": 1, "total": 0}, ""),
        ({"done": True, "total": 2}, ""),
        ("half", ""),
        (3, ""),
    ],
)
def test_progress_gets_a_bar_only_for_the_common_shapes(progress: object, bar: str) -> None:
    from beat.dashboard._pages import _progress_bar

    assert _progress_bar(progress) == (f"<p>{bar}</p>" if bar else "")
