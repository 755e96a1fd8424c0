"""Open a batch's tabs: the agent command per part, one launcher, no second tab.

The agent command is a template (`agent = "claude {prompt}"` in the user's
config or `.hf.toml`); it runs under `hf run` (liveness) in the part's
worktree. With no agent configured the tab opens the user's shell there.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from hf_fanout.core.records import BLOCKED, DONE, JOINED, Batch, Part, now
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import BadInput
from hf_fanout.tabs.environment import part_variables
from hf_fanout.tabs.handoff import task_file
from hf_fanout.tabs.launchers import (
    PLACEHOLDER,
    Launcher,
    LaunchFailed,
    Opened,
    Tab,
    check_template,
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
    return [*hf_argv(), "run", "--", *argv] if supervise else argv


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
        opened = launcher.open(tab)
        results.append(opened)
        if opened.action == "opened":
            _record(ws, part, opened)
    return results


def _record(ws: Workspace, part: Part, opened: Opened) -> None:
    with ws.store.state_lock():
        fresh = ws.store.load_part(part.batch, part.name)
        fresh.extra["tab"] = {"launcher": opened.launcher, "target": opened.target,
                              "opened": now()}
        ws.store.save_part(fresh)
    ws.store.audit("open", batch=part.batch, part=part.name, launcher=opened.launcher,
                   target=opened.target)


# --------------------------------------------------------------------- queue entries

QUEUE_PROMPT = ("A previous agent handed this task on to you. Read {handoff}: the task, "
                "what was done before, the tests and the files involved. Then do it.")


def entry_worktree(ws: Workspace, entry_id: str, *, dry_run: bool = False) -> tuple[Path, str]:
    """A worktree of its own for a queue entry (`hf next --isolated`), at HEAD."""
    from hf_fanout.core.workspace import worktree_root

    path = worktree_root(ws, "queue", None) / entry_id
    branch = f"hf/queue/{entry_id}"
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
