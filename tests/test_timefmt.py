"""The one timestamp format: read back exactly as written, and nothing else read."""

from __future__ import annotations

import calendar
import random
import time

from hf_fanout.timefmt import iso, parse_iso


def test_every_written_timestamp_reads_back_as_calendar_reads_it() -> None:
    rng = random.Random(7)
    for _ in range(20000):
        ts = rng.randint(0, 10**10)
        text = iso(ts)
        assert parse_iso(text) == float(ts) == calendar.timegm(time.strptime(
            text, "%Y-%m-%dT%H:%M:%SZ"))
    assert parse_iso("2024-02-29T12:00:00Z") == 1709208000.0  # a leap day


def test_what_is_not_one_is_none() -> None:
    for bad in ["2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-02-28T24:00:00Z",
                "2026-02-28 00:00:00Z", "2026-02-28T00:00:00", "x", "", None, 17,
                "2026-1-01T00:00:00Z0", "2026-02-28T00:00:00+00:00"]:
        assert parse_iso(bad) is None, bad
