"""The Markdown a next session needs to carry a batch on (`hf report --state`):
where it stands, how fast it goes, what was decided, what blocks it, and how
to resume each unfinished part; and the report's figures as Markdown (the
body of a pull request). Pure: facts in, text out."""

from __future__ import annotations

from dataclasses import dataclass, field

from hf_fanout import timefmt
from hf_fanout.core.timeline import BatchTime

BAR_WIDTH = 20


@dataclass(frozen=True)
class Decision:
    part: str
    text: str
    at: float
    kind: str = "decision"  # or `done note`


@dataclass(frozen=True)
class Blocker:
    part: str
    kind: str  # blocked, orphan, missing
    why: str
    saved_at: str = ""  # a rescue ref holding its work


@dataclass(frozen=True)
class Unfinished:
    part: str
    state: str
    worktree: str
    branch: str
    resume: str  # the exact command that carries it on
    saved_at: str = ""
    remote: str = ""  # worked on another machine through this remote (no worktree here)


@dataclass
class StateFacts:
    batch: str
    batch_state: str
    base: str
    time: BatchTime
    states: dict[str, str]  # part -> its state now (liveness applied)
    decisions: list[Decision] = field(default_factory=list)
    blockers: list[Blocker] = field(default_factory=list)
    unfinished: list[Unfinished] = field(default_factory=list)
    calibration: str | None = None

    @property
    def done(self) -> list[str]:
        return [p for p, s in self.states.items() if s in ("done", "joined")]


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    filled = round(width * done / total) if total else 0
    return "[" + "#" * filled + "-" * (width - filled) + f"] {done}/{total}"


def state_markdown(facts: StateFacts) -> str:
    t = facts.time
    total, done = len(facts.states), len(facts.done)
    lines = [f"# State of batch `{facts.batch}`", "",
             "## Current position", "",
             f"Batch `{facts.batch}` is {facts.batch_state}, base `{facts.base[:12]}`, "
             f"{done} of {total} parts done; "
             + (f"it ran for {timefmt.span(t.wall)}." if t.ended else
                f"running for {timefmt.span(t.wall)} so far."), "",
             f"`{progress_bar(done, total)}`", "",
             "| part | state | active | idle | waiting | estimate |",
             "|---|---|---|---|---|---|"]
    for p in t.parts:
        estimate = f"{p.estimate_minutes:g} min" if p.estimate_minutes else "-"
        lines.append(f"| {p.name} | {facts.states.get(p.name, p.state)} | "
                     f"{timefmt.span(p.active)} | {timefmt.span(p.seconds('idle'))} | "
                     f"{timefmt.span(p.seconds('waiting'))} | {estimate} |")
    lines += ["", *_velocity(facts), "", f"## Decisions ({len(facts.decisions)})", ""]
    lines += [f"- **{d.part}** ({d.kind}, {timefmt.iso(d.at)}): {_one_line(d.text)}"
              for d in facts.decisions] or ["None recorded (`hf note --decision TEXT` in a "
                                            "part, `hf done --note TEXT`)."]
    lines += ["", f"## Blockers ({len(facts.blockers)})", ""]
    lines += [f"- **{b.part}** ({b.kind}): {_one_line(b.why)}"
              + (f"; its work is saved at `{b.saved_at}`" if b.saved_at else "")
              for b in facts.blockers] or ["None."]
    lines += ["", f"## Continuity ({len(facts.unfinished)} unfinished)", ""]
    for u in facts.unfinished:
        where = (f"worked on another machine through `{u.remote}`" if u.remote else
                 f"work in `{u.worktree}`")
        lines.append(f"- **{u.part}** ({u.state}): {where} on branch "
                     f"`{u.branch}`" + (f", saved at `{u.saved_at}`" if u.saved_at else ""))
        lines.append(f"  - resume: `{u.resume}`" + (" there" if u.remote else ""))
    if not facts.unfinished:
        lines.append("Every part is done" + ("." if t.ended else
                                            f": `hf join {facts.batch}` brings them in."))
    return "\n".join(lines) + "\n"


def _velocity(facts: StateFacts) -> list[str]:
    t = facts.time
    finished = sorted((p for p in t.parts if p.done_at is not None),
                      key=lambda p: p.done_at or 0.0)
    lines = ["## Velocity", "", f"- Parts completed: {len(finished)} of {len(t.parts)}"]
    if finished:
        took = [(p.done_at or t.start) - t.start for p in finished]
        lines.append(f"- Average: {timefmt.span(sum(took) / len(took))} from the split to "
                     f"done, {timefmt.span(sum(p.active for p in finished) / len(finished))} "
                     "active")
        lines.append("- Per part: " + ", ".join(
            f"{p.name} {timefmt.span(d)} ({timefmt.span(p.active)} active)"
            for p, d in zip(finished, took, strict=True)))
        lines.append(f"- Recent trend: {_trend([p.active for p in finished])}")
    if facts.calibration:
        lines.append(f"- Estimates: {facts.calibration}")
    return lines


def _trend(actives: list[float]) -> str:
    """The later half of the finished parts against the earlier half, by active time."""
    if len(actives) < 2:
        return "one part finished so far"
    half = len(actives) // 2
    early, late = sum(actives[:half]) / half, sum(actives[half:]) / (len(actives) - half)
    if early <= 0:
        return "-"
    change = late / early
    word = "slower" if change > 1.1 else "faster" if change < 0.9 else "steady"
    return (f"{word}: the later parts took {timefmt.span(late)} active on average, the "
            f"earlier {timefmt.span(early)}")


def report_markdown(t: BatchTime, calibration: str | None = None) -> str:
    """The report's figures as Markdown (a pull request's body uses it)."""

    def number(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    lines = [f"Wall time {timefmt.span(t.wall)}"
             + ("" if t.ended else " so far") + f", serial {timefmt.span(t.serial)}, speedup "
             f"{number(t.speedup, '.2f')}x, parallel efficiency {number(t.efficiency, '.0%')}, "
             f"serial fraction {number(t.serial_fraction, '.2f')}"
             + (f", join {timefmt.span(t.join_seconds)}" if t.join_seconds is not None else "")
             + ".", "",
             "| part | active | idle | waiting | blocked | estimate | actual/estimate |",
             "|---|---|---|---|---|---|---|"]
    for p in t.parts:
        estimate = f"{p.estimate_minutes:g} min" if p.estimate_minutes else "-"
        ratio = "-" if p.ratio is None else f"{p.ratio:.2f}"
        lines.append(f"| {p.name} | {timefmt.span(p.active)} | "
                     f"{timefmt.span(p.seconds('idle'))} | "
                     f"{timefmt.span(p.seconds('waiting'))} | "
                     f"{timefmt.span(p.seconds('blocked'))} | {estimate} | {ratio} |")
    if calibration:
        lines += ["", f"Calibration: {calibration}."]
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split())
