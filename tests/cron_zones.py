"""Zones the cron property and differential tests sweep: UTC, two classic DST zones, a
30-minute-shift zone, DST at midnight, and a half-hour offset without DST."""

ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kolkata",
)
