"""Backoff: a retry's delay always fits what a store keeps (see docs/stores.md "Ranges").

``initial`` and ``cap`` are at most 100 years and every value is finite, so ``now + delay``
is a due time every store keeps; and the growth ``factor ** (retry - 1)``, which leaves the
floats after about a thousand doublings, ends at the cap instead of raising in the worker's
failure path (a job failing for the 1,025th time of ``retries=5000``).
"""

from __future__ import annotations

from typing import Any

import pytest

from beat import Backoff, InvalidJobError
from beat._units import MAX_DURATION


@pytest.mark.parametrize(
    "options", [{"cap": 1e300}, {"initial": MAX_DURATION * 2}, {"cap": float("inf")}]
)
def test_a_backoff_cannot_push_a_retry_past_what_a_store_keeps(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidJobError, match="at most 100 years"):
        Backoff(**options)


@pytest.mark.parametrize("options", [{"factor": float("inf")}, {"jitter": float("nan")}])
def test_a_backoff_factor_and_jitter_are_finite(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidJobError, match="finite non-negative number"):
        Backoff(**options)


def test_a_backoff_after_thousands_of_retries_is_its_cap() -> None:
    """``factor ** (retry - 1)`` leaves the floats after ~1,000 doublings: the delay is the
    cap (``0`` for ``initial=0``), not an OverflowError in the worker's failure path."""
    assert Backoff().delay(5000) == 300.0
    assert Backoff(initial=0, factor=10).delay(5000) == 0.0
    assert Backoff(initial=1, factor=10).delay(3) == 100.0
