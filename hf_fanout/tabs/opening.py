"""Open a batch's tabs: the agent command per part, one launcher, no second tab.

The agent command is a template (`agent = "claude {prompt}"` in the user's
config or `.hf.toml`); it runs under `hf run` (liveness) in the part's
worktree. With no agent configured the tab opens the user's shell there.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout.core import audit, limits, pauses
from hf_fanout.core.records import BLOCKED, DONE, JOINED, Batch, Part, now
from hf_fanout.core.remote_refs import remote_of
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import BadInput, HfError, LimitReached
from hf_fanout.tabs import agent_hooks, queue, spawns
from hf_fanout.tabs.environment import part_variables
from hf_fanout.tabs.handoff import task_file
from hf_fanout.tabs.launchers import (
    PLACEHOLDER,
    Launcher,
    LaunchFailed,
    Opened,
    Tab,
    check_template,
    choose,
)

AGENT_FIELDS = ("prompt", "handoff", "worktree", "branch", "batch", "part", "port")
PROMPT = ("You are one of several agents working in parallel, each on its own part. "
          "Read {handoff} first: it is your task, the files you own, what you must not "
          "touch and how to finish. Keep its State section current as you work.")


def hf_argv() -> list[str]:
    """How a tab calls hf: this interpreter, so it is the same hf that opened it."""
    return [sys.executable, "-m", "hf_fanout"]


def agent_argv(template: str | None, values: dict[str, str]) -> list[str]:
    """The agent's argv from its template; each placeholder fills one word's part,
    so a value with spaces stays one argument."""
    if not template:
        return [os.environ.get("SHELL") or "/bin/sh"]
    check_template(template, AGENT_FIELDS, "the agent command")
    try:
        words = shlex.split(template)
    except ValueError as exc:
        raise BadInput(f"agent command {template!r}: {exc}", "quote it as for a shell") from None
    return [PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), w) for w in words]


def tab_argv(ws: Workspace, values: dict[str, str], *, supervise: bool) -> list[str]:
    template = ws.settings.get("agent")
    if template is not None and not isinstance(template, str):
        raise BadInput("`agent` in the config must be a string",
                       'e.g. agent = "claude {prompt}"')
    argv = agent_argv(template, values)
    if agent_hooks.agent_kind(ws.settings, argv) == "codex":
        argv = agent_hooks.codex_argv(argv, ws.repo.common_dir, values.get("batch", ""),
                                      values.get("part", ""))
    return [*hf_argv(), "run", "--", *argv] if supervise else argv


def agent_kind(ws: Workspace) -> str:
    """What the configured agent is (claude, codex, or "" for any other)."""
    template = ws.settings.get("agent")
    return agent_hooks.agent_kind(ws.settings, agent_argv(
        template if isinstance(template, str) else None, {}))


def part_tab(ws: Workspace, batch: Batch, part: Part, *, supervise: bool) -> Tab:
    handoff = task_file(Path(part.worktree))
    variables = part_variables(ws, part)
    values = {"handoff": str(handoff), "worktree": part.worktree, "branch": part.branch,
              "batch": batch.id, "part": part.name, "port": variables["HF_PORT"]}
    values["prompt"] = PROMPT.format(handoff=handoff)
    return Tab(name=part.name, group=batch.id, worktree=Path(part.worktree),
               branch=part.branch, batch=batch.id, part=part.name, handoff=handoff,
               variables=variables, argv=tab_argv(ws, values, supervise=supervise))


def open_parts(ws: Workspace, spec: str, launcher: Launcher, *, supervise: bool,
               dry_run: bool = False) -> list[Opened]:
    """Open (or find alive) the tab of each running part of `BATCH` or `BATCH/PART`."""
    batch_id, _, name = spec.partition("/")
    batch = ws.store.load_batch(batch_id)
    if not dry_run:
        pauses.refuse_if_paused(ws, f"hf open {spec}", batch_id)
    if name:  # a part named on its own opens whatever its state, e.g. to fix a blocked one
        parts = [ws.store.load_part(batch.id, name)]
        return open_tabs(ws, batch, parts, launcher, supervise=supervise, dry_run=dry_run,
                         skip=(JOINED,))
    return open_tabs(ws, batch, ws.store.load_parts(batch), launcher, supervise=supervise,
                     dry_run=dry_run)


def open_tabs(ws: Workspace, batch: Batch, parts: list[Part], launcher: Launcher, *,
              supervise: bool, dry_run: bool = False,
              skip: tuple[str, ...] = (DONE, JOINED, BLOCKED)) -> list[Opened]:
    """One tab per part not in a `skip` state; an alive tab is focused, not doubled."""
    results: list[Opened] = []
    for part in parts:
        remote = remote_of(part)
        if remote is not None:  # its worktree is on another machine (docs/remote.md)
            results.append(Opened(part.name, launcher.name, "skipped", "",
                                  hint=f"worked through {remote}: `hf take {remote} "
                                       f"{batch.id}/{part.name}` on its machine"))
            continue
        tab = part_tab(ws, batch, part, supervise=supervise)
        if part.state in skip:
            why = part.reason.splitlines()[0] if part.state == BLOCKED and part.reason else ""
            results.append(Opened(part.name, launcher.name, "skipped", launcher.command(tab),
                                  hint=f"part is {part.state}" + (f": {why}" if why else "")))
            continue
        if not Path(part.worktree).is_dir():
            results.append(Opened(part.name, launcher.name, "skipped", "",
                                  hint=f"worktree {part.worktree} is missing"))
            continue
        if launcher.alive(tab):
            results.append(launcher.focus(tab) if not dry_run else
                           Opened(part.name, launcher.name, "alive", ""))
            continue
        if dry_run:
            results.append(Opened(part.name, launcher.name, "would-open",
                                  launcher.command(tab)))
            continue
        hooks = None
        if agent_kind(ws) == "claude":  # before the agent starts: it reads them once
            hooks = agent_hooks.install_claude(Path(part.worktree), ws.repo.common_dir,
                                               batch.id, part.name)
        opened = launcher.open(tab)
        results.append(opened)
        if opened.action == "opened" or hooks:
            _record(ws, part, opened, hooks)
    return results


def _record(ws: Workspace, part: Part, opened: Opened,
            hooks: dict[str, Any] | None = None) -> None:
    with ws.store.state_lock():
        fresh = ws.store.load_part(part.batch, part.name)
        if opened.action == "opened":
            fresh.extra["tab"] = {"launcher": opened.launcher, "target": opened.target,
                                  "opened": now()}
        if hooks:
            # created: whether hf made the file (then gc may remove it whole)
            created = (fresh.extra.get("agent_hooks") or {}).get("created", hooks["created"])
            fresh.extra["agent_hooks"] = {**hooks, "created": created}
        ws.store.save_part(fresh)
    ws.store.audit("open", batch=part.batch, part=part.name, launcher=opened.launcher,
                   target=opened.target)


# --------------------------------------------------------------------- queue entries

QUEUE_PROMPT = ("A previous agent handed this task on to you. Read {handoff}: the task, "
                "what was done before, the tests and the files involved. Then do it.")


def entry_worktree(ws: Workspace, entry_id: str, *, dry_run: bool = False) -> tuple[Path, str]:
    """A worktree of its own for a queue entry (`hf next --isolated`), at HEAD."""
    from hf_fanout.tabs import isolated

    path = isolated.path_of(ws, entry_id)
    branch = isolated.branch_of(entry_id)
    if not dry_run:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LaunchFailed(f"cannot make {path.parent}: {exc}",
                               "check worktree_root in .hf.toml") from None
        ws.repo.add_worktree(path, branch, ws.main.head() or "HEAD")
        ws.repo.worktree(path).populate(workers=2)
    return path, branch


def entry_tab(ws: Workspace, entry_id: str, task: str, handoff: Path, *, isolated: bool,
              dry_run: bool = False) -> Tab:
    if isolated:
        worktree, branch = entry_worktree(ws, entry_id, dry_run=dry_run)
    else:
        worktree = ws.main.path
        branch = ws.main.head_ref().removeprefix("refs/heads/")
    variables = {"HF_QUEUE_ENTRY": entry_id, "HF_HANDOFF": str(handoff),
                 "HF_WORKTREE": str(worktree)}
    values = {"handoff": str(handoff), "worktree": str(worktree), "branch": branch,
              "batch": "", "part": "", "port": "",
              "prompt": QUEUE_PROMPT.format(handoff=handoff)}
    # Not under `hf run`: a queue tab is not a part, there is no part record to keep alive.
    name = task or entry_id
    return Tab(name=name, group="queue", worktree=worktree, branch=branch, batch="",
               part="", handoff=handoff, variables=variables,
               argv=tab_argv(ws, values, supervise=False))


# --------------------------------------------------------------------- taking entries


@dataclass
class NextPreview:
    """What `hf next --dry-run` would do."""

    launcher: str
    entry: queue.Entry | None
    command: str = ""
    over_limit: str = ""  # why nothing would be taken: max_spawns_per_hour reached

    def to_data(self) -> dict[str, Any]:
        return {"launcher": self.launcher, "dry_run": True,
                "entry": self.entry.to_data() if self.entry else None,
                **({"command": self.command} if self.command else {}),
                **({"over_limit": self.over_limit} if self.over_limit else {})}

    def line(self) -> str:
        first = self.entry
        if first is None:
            return "no pending entry"
        if self.over_limit:
            return f"would take nothing: {self.over_limit}"
        if first.problem:
            return f"would take {first.id} and mark it failed: it is malformed: {first.problem}"
        again = f" (taking it back: {first.lapsed['reason']})" if first.lapsed else ""
        return f"would take {first.id}{again}: {self.command}"


def preview_next(ws: Workspace, launcher_name: str | None, *, isolated: bool) -> NextPreview:
    chosen = choose(ws.settings, launcher_name)
    pending = [e for e in queue.entries(ws, tidy=False) if e.state == "pending"]
    first = pending[0] if pending else None
    preview = NextPreview(chosen.name, first)
    count, most = spawns.count(ws), limits.maximum(ws, limits.MAX_SPAWNS_PER_HOUR)
    if count >= most:
        preview.over_limit = (f"{count} tabs were opened from the queue in the last hour "
                              f"and {limits.MAX_SPAWNS_PER_HOUR} is {most}")
    if first is not None and not first.problem:
        tab = entry_tab(ws, first.id, first.task, first.path, isolated=isolated, dry_run=True)
        preview.command = chosen.command(tab)
    return preview


@dataclass
class TakeReport:
    launcher: str
    taken: list[dict[str, Any]] = field(default_factory=list)

    def to_data(self) -> dict[str, Any]:
        return {"launcher": self.launcher, "taken": self.taken}


def take_queue(ws: Workspace, launcher_name: str | None, *, watch: bool, isolated: bool,
               max_entries: int | None = None, idle_timeout: float | None = None,
               say: Callable[[str], None] | None = None,
               opened: Callable[[Opened], None] | None = None,
               force: bool = False) -> TakeReport:
    """`hf next`: take the oldest pending entry (exactly once: the claim is a lease,
    see tabs/queue.py) and open its tab; with `watch`, go on as entries arrive. A
    tab that cannot be opened marks its entry failed (and, without `watch`, fails
    the command). `say` and `opened` hear of each entry as it is taken. Each
    entry taken is a spawn (audit `spawn`), at most `max_spawns_per_hour`: over
    it `hf next` refuses and a watcher holds until the oldest is an hour old
    (`force` goes over it)."""
    chosen = choose(ws.settings, launcher_name)
    report = TakeReport(chosen.name)
    what = "hf next --watch" if watch else "hf next"
    holding: list[bool] = [False]  # a watcher over the limit says so once

    def may_spawn(count: int) -> bool:
        if holding[0] and count >= limits.maximum(ws, limits.MAX_SPAWNS_PER_HOUR):
            return False
        try:
            limits.refuse_over(ws, limits.MAX_SPAWNS_PER_HOUR, count, what,
                               "tabs were opened from the queue in the last hour",
                               "wait until the oldest is an hour old", force=force)
        except LimitReached as exc:
            if not watch:
                raise
            holding[0] = True
            if say is not None:
                say(f"{exc.message}; holding until the oldest is an hour old")
            return False
        holding[0] = False
        return True

    def claim_one() -> queue.Entry | None:
        """The oldest pending entry, claimed and counted as a spawn, if the limit
        allows one more (the count and the spawn's reservation under one lock, so
        takers racing for the last place take one between them: tabs/spawns.py)."""
        if not queue.has_pending(ws):
            return None
        with spawns.reserved(ws, may_spawn) as reservation:
            if not reservation:
                return None
            entry = queue.take_oldest(ws)
            if entry is not None:
                reservation.spend(entry=entry.id, task=entry.task, by=what)
            return entry

    def take_one() -> queue.Entry | None:
        if watch and pauses.in_force(ws):
            return None  # a watcher spawns nothing while paused, and keeps watching
        if not watch:
            pauses.refuse_if_paused(ws, "hf next")
        entry = claim_one()
        if entry is None:
            return None
        record: dict[str, Any] = {"id": entry.id, "task": entry.task}
        took_over = entry.acks.get("spawned", {}).get("takes_over")
        if took_over:
            record["took_over"] = took_over
            if say is not None:
                say(f"{entry.id}: taken back: {took_over.get('reason')}")
        try:
            entry.check()
            tab = entry_tab(ws, entry.id, entry.task, entry.path, isolated=isolated)
            done = chosen.open(tab)
        except HfError as exc:
            queue.acknowledge(ws, entry, "failed", error=exc.message)
            record.update(state="failed", error=exc.message)
            report.taken.append(record)
            if not watch:
                raise
            if say is not None:
                say(f"{entry.id}: failed: {exc.message}")
            return entry
        queue.acknowledge(ws, entry, "submitted", launcher=done.launcher, target=done.target,
                          worktree=str(tab.worktree))
        record.update(state="submitted", tab=done.to_data())
        report.taken.append(record)
        if opened is not None:
            opened(done)
        return entry

    if watch:
        with audit.acting_as("watcher"):
            queue.watch(ws, take_one, max_entries=max_entries, idle_timeout=idle_timeout)
    else:
        take_one()
    return report
