"""The batch timeline from audit events (core/timeline.py), the calibration over
batches (core/calibration.py) and the state summary's Markdown (core/state_summary.py):
pure code, fed the events hf writes."""

from __future__ import annotations

from typing import Any

import pytest

from hf_fanout.core import calibration, state_summary, timeline
from hf_fanout.core.audit import Event

T0 = 1_800_000_000.0


def events(*rows: tuple[float, str, dict[str, Any]]) -> list[Event]:
    return [Event(n, {"t": T0 + t, "action": action, "batch": "b1", **fields})
            for n, (t, action, fields) in enumerate(rows, 1)]


def spans(part: timeline.PartTime) -> list[tuple[str, float, float]]:
    return [(s.state, s.start - T0, s.end - T0) for s in part.spans]


def test_a_supervised_part_runs_waits_idles_and_is_done_until_the_join():
    log = events(
        (0, "split", {"parts": ["api", "ui"], "estimates": {"api": 0.1}}),
        (1.2, "worker", {"part": "api"}),  # written a moment after the process began
        (3, "agent-state", {"part": "api", "state": "waiting", "since_t": T0 + 3}),
        (5, "agent-state", {"part": "api", "state": "working", "since_t": T0 + 5}),
        # the idle line is written when the threshold passed; the span starts at since_t
        (7, "worker-idle", {"part": "api", "since_t": T0 + 6}),
        (8, "worker-active", {"part": "api"}),
        (10, "exit", {"part": "api", "done": True, "seconds": 9}),  # it began at 1
        (4, "blocked", {"part": "ui", "reason": "needs the schema"}),
        (9, "done", {"part": "ui", "note": "ok"}),
        (12, "join", {"parts": ["api", "ui"], "seconds": 0.4}),
        (20, "worker", {"part": "api"}),  # after the run ended: not counted
    )
    [run] = timeline.runs(log)
    assert run.end == T0 + 12
    batch = timeline.build(run, now=T0 + 99)
    api, ui = batch.parts
    assert spans(api) == [("running", 1, 3), ("waiting", 3, 5), ("running", 5, 6),
                          ("idle", 6, 8), ("running", 8, 10), ("done", 10, 12)]
    assert api.active == 5 and api.seconds("waiting") == 2 and api.seconds("idle") == 2
    # never run by `hf run`: worked from the split until it was blocked, then done
    assert spans(ui) == [("running", 0, 4), ("blocked", 4, 9), ("done", 9, 12)]
    assert batch.wall == 12 and batch.serial == 9 and batch.join_seconds == 0.4
    assert batch.speedup == pytest.approx(9 / 12)
    assert batch.efficiency == pytest.approx(9 / 12 / 2)
    # Karp-Flatt: (1/S - 1/p) / (1 - 1/p)
    assert batch.serial_fraction == pytest.approx((12 / 9 - 0.5) / 0.5)
    assert api.estimate_minutes == 0.1 and api.ratio == pytest.approx(5 / 6)
    assert ui.ratio is None  # no estimate


def test_an_unfinished_batch_runs_to_now_and_a_reused_id_starts_a_new_run():
    log = events((0, "split", {"parts": ["api"]}), (2, "join", {"parts": ["api"]}),
                 (10, "split", {"parts": ["api"]}), (11, "worker", {"part": "api"}))
    first, second = timeline.runs(log)
    assert first.end == T0 + 2 and second.end is None
    batch = timeline.build(second, now=T0 + 15)
    assert not batch.ended and batch.wall == 5
    assert spans(batch.parts[0]) == [("running", 11, 15)]
    assert timeline.serial_fraction(2.0, 1) is None


def test_a_heartbeat_gap_is_idle_and_columns_show_the_dominant_state():
    log = events((0, "split", {"parts": ["api"]}), (0, "worker", {"part": "api"}),
                 (8, "heartbeat-gap", {"part": "api", "seconds": 4}),
                 (10, "exit", {"part": "api", "done": True}), (10, "join", {"parts": ["api"]}))
    batch = timeline.build(timeline.runs(log)[0], now=T0)
    assert spans(batch.parts[0]) == [("running", 0, 4), ("idle", 4, 8), ("running", 8, 10)]
    [(_name, cells)] = timeline.columns(batch, 5)
    assert cells == ["running", "running", "idle", "idle", "running"]


def test_calibration_sums_the_batches_and_says_how_estimates_run():
    first = calibration.BatchCalibration("c1", T0, 1, 600, 1200)
    second = calibration.BatchCalibration("c2", T0 + 1, 1, 600, 600)
    assert calibration.overall([first, second]) == pytest.approx(1.5)
    assert calibration.sentence([first, second]) == \
        "your estimates run 1.5x long (2 past batches)"
    assert calibration.sentence([]) is None
    assert calibration.trend([first, second]) == "closer"
    fast = calibration.BatchCalibration("c3", T0, 2, 1200, 600)
    assert calibration.sentence([fast]) == "your parts take 0.5x their estimates (1 past batch)"


def test_the_progress_bar_fills_by_the_parts_done():
    assert state_summary.progress_bar(1, 4, width=8) == "[##------] 1/4"
    assert state_summary.progress_bar(0, 0, width=4) == "[----] 0/0"


def test_a_join_taken_back_reopens_the_run_until_the_next_join():
    log = events((0, "split", {"parts": ["api"]}), (0, "worker", {"part": "api"}),
                 (2, "exit", {"part": "api", "done": True}), (3, "join", {"parts": ["api"]}),
                 (5, "undo", {}), (9, "join", {"parts": ["api"]}))
    [run] = timeline.runs(log)
    assert run.end == T0 + 9 and run.joins == 2
    batch = timeline.build(run, now=T0)
    assert spans(batch.parts[0]) == [("running", 0, 2), ("done", 2, 3), ("done", 5, 9)]


def test_a_worker_gone_without_its_exit_line_stops_where_it_was_last_seen():
    log = events((0, "split", {"parts": ["api"]}), (1, "worker", {"part": "api"}))
    run = timeline.runs(log)[0]
    batch = timeline.build(run, now=T0 + 10, last_seen={"api": T0 + 4})
    assert spans(batch.parts[0]) == [("running", 1, 4)]
    # a heartbeat older than the last start is another run's: not applied
    again = timeline.build(run, now=T0 + 10, last_seen={"api": T0 + 0.5})
    assert spans(again.parts[0]) == [("running", 1, 10)]


def test_an_undo_of_a_partial_join_takes_back_only_its_parts():
    """api joined, then ui (the run ends); ui's join taken back: the run goes on until
    ui is joined again, not until any join."""
    log = events((0, "split", {"parts": ["api", "ui"]}),
                 (3, "join", {"parts": ["api"]}), (4, "join", {"parts": ["ui"]}),
                 (5, "undo", {"parts": ["ui"]}), (9, "join", {"parts": ["ui"]}))
    [run] = timeline.runs(log)
    assert run.end == T0 + 9 and run.joins == 3
    # taken back while the run is still open: api must be joined again before it ends
    log = events((0, "split", {"parts": ["api", "ui"]}), (3, "join", {"parts": ["api"]}),
                 (4, "undo", {"parts": ["api"]}), (5, "join", {"parts": ["ui"]}),
                 (8, "join", {"parts": ["api"]}))
    [run] = timeline.runs(log)
    assert run.end == T0 + 8


def test_the_trend_looks_at_the_batches_the_overall_ratio_counts():
    """A batch older than the last WINDOW counts neither in the ratio nor the trend."""
    from hf_fanout.core import calibration

    old = calibration.BatchCalibration("old", 0.0, 1, 60.0, 180.0)  # ran 3x long
    recent = [calibration.BatchCalibration(f"b{i}", float(i + 1), 1, 60.0, 60.0)
              for i in range(calibration.WINDOW)]
    assert old.ratio == 3.0
    assert calibration.trend([old, *recent]) == "steady"
    assert calibration.trend([old, *recent[:1]]) == "closer"
