"""``python -m beat next``: run in-process through ``main()``, and once as a real process."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from beat._cli import build_parser, main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(["next", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_prints_next_fires_with_offsets(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = run(
        capsys, "0 9 * * 1-5", "--tz", "America/New_York", "--after", "2025-03-07T10:00", "-n", "3"
    )
    assert (code, err) == (0, "")
    assert lines == [
        "2025-03-10T09:00:00-04:00",
        "2025-03-11T09:00:00-04:00",
        "2025-03-12T09:00:00-04:00",
    ]


def test_default_count_is_five_and_zone_utc(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(capsys, "@hourly", "--after", "2025-01-01T00:30")
    assert code == 0
    assert lines == [f"2025-01-01T{h:02d}:00:00+00:00" for h in range(1, 6)]


def test_marks_fire_moved_by_spring_forward(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(
        capsys, "30 2 * * *", "--tz", "Europe/Berlin", "--after", "2025-03-29T12:00", "-n", "2"
    )
    assert code == 0
    assert lines == [
        "2025-03-30T03:00:00+02:00  (moved: 02:30 does not exist, spring-forward gap)",
        "2025-03-31T02:30:00+02:00",
    ]


def test_marks_suppressed_repeat_on_fall_back(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(
        capsys, "30 2 * * *", "--tz", "Europe/Berlin", "--after", "2025-10-25T12:00", "-n", "2"
    )
    assert code == 0
    assert lines == [
        "2025-10-26T02:30:00+02:00  (fall-back: 02:30 repeats; fired on first occurrence only)",
        "2025-10-27T02:30:00+01:00",
    ]


def test_marks_both_passes_of_wildcard_job(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(
        capsys, "0 * * * *", "--tz", "America/New_York", "--after", "2025-11-02T00:30", "-n", "3"
    )
    assert code == 0
    assert lines == [
        "2025-11-02T01:00:00-04:00  (fall-back: 01:00 repeats; this is the first occurrence)",
        "2025-11-02T01:00:00-05:00  (fall-back: 01:00 repeats; this is the second occurrence)",
        "2025-11-02T02:00:00-05:00",
    ]


def test_after_with_offset_is_an_instant(capsys: pytest.CaptureFixture[str]) -> None:
    # 23:30Z on Mar 29 is 00:30 CET on Mar 30 in Berlin.
    code, lines, _ = run(
        capsys, "0 * * * *", "--tz", "Europe/Berlin", "--after", "2025-03-29T23:30:00Z", "-n", "2"
    )
    assert code == 0
    assert lines == ["2025-03-30T01:00:00+01:00", "2025-03-30T03:00:00+02:00"]


def test_after_defaults_to_now(capsys: pytest.CaptureFixture[str]) -> None:
    before = datetime.now(UTC)
    code, lines, _ = run(capsys, "* * * * *", "-n", "1")
    assert code == 0
    assert datetime.fromisoformat(lines[0]) > before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["61 * * * *"],
            "beat: invalid cron expression '61 * * * *': minute value 61 out of range 0-59\n",
        ),
        (
            ["0 0 30 2 *"],
            "beat: invalid cron expression '0 0 30 2 *': "
            "day of month 30 never occurs in February\n",
        ),
        (["* * * * *", "--tz", "Mars/Base"], "beat: unknown time zone 'Mars/Base'\n"),
        (
            ["* * * * *", "--after", "yesterday"],
            "beat: invalid --after value 'yesterday': "
            "expected ISO-8601, e.g. 2025-03-30T01:00:00+01:00\n",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, lines, err = run(capsys, *argv)
    assert (code, lines, err) == (2, [], message)


@pytest.mark.parametrize("count", ["0", "-1", "x", "10001"])
def test_bad_count_is_a_usage_error(capsys: pytest.CaptureFixture[str], count: str) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["next", "* * * * *", "-n", count])
    assert caught.value.code == 2
    assert "-n/--count" in capsys.readouterr().err


def test_missing_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    assert "required: command" in capsys.readouterr().err


def test_running_past_year_9999_prints_what_exists_then_fails(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines, err = run(capsys, "@hourly", "--after", "9999-12-31T22:30Z")
    assert code == 1
    assert lines == ["9999-12-31T23:00:00+00:00"]
    assert err == "beat: Cron('@hourly', tz='UTC') has no fire time before year 10000\n"


def test_parser_has_next_command_for_others_to_extend() -> None:
    parser = build_parser()
    args = parser.parse_args(["next", "@daily"])
    assert args.command == "next"
    assert callable(args.handler)


def test_real_process_exits_2_on_bad_expression() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "beat", "next", "5-3 * * * *"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "beat: invalid cron expression '5-3 * * * *': minute range '5-3' is reversed (5 > 3)\n"
    )


def test_real_process_prints_fires() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "beat", "next", "0 0 29 2 *", "-n", "2", "--after", "2025-01-01"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "2028-02-29T00:00:00+00:00\n2032-02-29T00:00:00+00:00\n"
