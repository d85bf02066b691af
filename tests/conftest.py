from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from beat import Scheduler
from beat.testing import EventRecorder, FakeClock

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest_asyncio.fixture
async def scheduler(clock: FakeClock) -> AsyncIterator[Scheduler]:
    s = Scheduler(clock=clock)
    s.start()
    yield s
    # Fake time does not pass by itself: a shutdown waiting for long runs would wait forever.
    await s.shutdown(timeout=0)


@pytest_asyncio.fixture
async def recorder(scheduler: Scheduler) -> EventRecorder:
    return EventRecorder(scheduler)
