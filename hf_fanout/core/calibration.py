"""Calibration: how the parts' estimates compare with the time they took, per
batch and over the repository's past batches. Pure.

A part counts once it is done and has an estimate; its actual time is its
active time (core/timeline.py). A batch's ratio is its parts' actual time
over their estimated time, summed; the repository's ratio is the same sum
over its last `WINDOW` batches that have one, so a batch of many parts weighs
more than a batch of one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hf_fanout.core.timeline import BatchTime

WINDOW = 10


@dataclass(frozen=True)
class BatchCalibration:
    batch: str
    ended: float
    parts: int  # parts with an estimate that are done
    estimated: float  # seconds
    actual: float  # seconds

    @property
    def ratio(self) -> float:
        return self.actual / self.estimated

    def to_data(self) -> dict[str, Any]:
        return {"batch": self.batch, "ended": round(self.ended, 3), "parts": self.parts,
                "estimated_seconds": round(self.estimated, 3),
                "actual_seconds": round(self.actual, 3), "ratio": round(self.ratio, 3)}


def of_batch(batch: BatchTime) -> BatchCalibration | None:
    """The batch's calibration; None when no done part had an estimate."""
    counted = [p for p in batch.parts if p.ratio is not None]
    if not counted:
        return None
    estimated = sum((p.estimate_minutes or 0) * 60 for p in counted)
    return BatchCalibration(batch.batch, batch.end, len(counted), estimated,
                            sum(p.active for p in counted))


def overall(history: list[BatchCalibration]) -> float | None:
    """Actual over estimated time across the last WINDOW batches; None without any."""
    recent = history[-WINDOW:]
    estimated = sum(c.estimated for c in recent)
    return sum(c.actual for c in recent) / estimated if estimated > 0 else None


def sentence(history: list[BatchCalibration]) -> str | None:
    """`your estimates run 1.6x long (3 past batches)`; None without history."""
    ratio = overall(history)
    if ratio is None:
        return None
    count = len(history[-WINDOW:])
    over = f"{count} past batch{'es' if count != 1 else ''}"
    if ratio >= 1.05:
        return f"your estimates run {ratio:.1f}x long ({over})"
    if ratio <= 0.95:
        return f"your parts take {ratio:.1f}x their estimates ({over})"
    return f"your estimates are about right, {ratio:.1f}x ({over})"


def trend(history: list[BatchCalibration]) -> str:
    """Whether the ratio moves towards 1 over the last WINDOW batches (`closer`,
    `further`, `steady`), or `-` with fewer than two batches."""
    history = history[-WINDOW:]  # the batches the overall ratio counts
    if len(history) < 2:
        return "-"
    first, last = abs(history[0].ratio - 1), abs(history[-1].ratio - 1)
    if abs(first - last) < 0.05:
        return "steady"
    return "closer" if last < first else "further"
