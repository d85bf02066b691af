"""Zones the cron property and differential tests sweep: UTC, two classic DST zones, a
30-minute-shift zone, DST at midnight, and a half-hour offset without DST."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kolkata",
)


def transitions(tz: ZoneInfo, first_year: int, last_year: int) -> list[datetime]:
    """UTC instants where the zone's offset changes (half-hour resolution is enough)."""
    found = []
    moment = datetime(first_year, 1, 1, tzinfo=UTC)
    offset = moment.astimezone(tz).utcoffset()
    while moment.year <= last_year:
        later = moment + timedelta(minutes=30)
        now = later.astimezone(tz).utcoffset()
        if now != offset:
            found.append(later)
        moment, offset = later, now
    return found
