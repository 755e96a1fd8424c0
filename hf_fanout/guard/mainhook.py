"""The main worktree's reference-transaction hook: while a batch runs, a ref move
in the main repository made by a process below a part's agent is refused,
whatever way it reached the main tree (`git -C <main>`, `GIT_DIR=`, an absolute
git path, a script). Without the sandbox this is what stops the naive bypasses.

While any batch runs, the main worktree's own `config.worktree` points
`core.hooksPath` at hf's `<common>/hf/main-hooks/`; every hook there chains to
the repository's own (its core.hooksPath as configured elsewhere, else
`<common>/hooks/`), and the reference-transaction hook first walks the calling
process's ancestry in `/proc` (pid, parent, start time; sh builtins only) and
refuses when an ancestor is a live worker listed in `<common>/hf/workers.sh`
(each `hf run` adds its agent's pid, start time and part branch, and takes
them out when it ends); the part's own branch may still move (`hf commit`).
When no batch runs, the setting is removed: the user's git pays nothing.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from hf_fanout import atomic, locks, processes
from hf_fanout.guard.hooks import (
    ALL_HOOKS,
    chain_dir,
    main_hooks_dir,
    read_saved_main_hooks_path,
    saved_main_hooks_path,
)

if TYPE_CHECKING:
    from hf_fanout.core.workspace import Workspace
    from hf_fanout.worktrees.repository import Repository

WORKERS = "workers.sh"


def workers_file(common_dir: Path) -> Path:
    return common_dir / "hf" / WORKERS


def _start_ticks(pid: int) -> str | None:
    """The process's start time as /proc gives it (clock ticks since boot), as the
    hook's shell compares it."""
    ticks = processes.start_ticks(pid)
    return None if ticks is None else str(ticks)


def _edit_workers(common_dir: Path, pid: int, add: bool, branch: str = "") -> None:
    path = workers_file(common_dir)
    with locks.hold(common_dir / "hf" / "locks" / "workers.lock", wait=10, what="workers"):
        entries: list[str] = []
        with contextlib.suppress(OSError):
            text = path.read_text()
            entries = text.split("'")[1].split() if "'" in text else []
        start = _start_ticks(pid)
        entries = [e for e in entries if not e.startswith(f"{pid}:")]
        entries = [e for e in entries if e.count(":") == 2
                   and _start_ticks(int(e.split(":")[0])) == e.split(":")[1]]
        if add and start is not None:
            entries.append(f"{pid}:{start}:refs/heads/{branch}")
        atomic.atomic_write(path, f"hf_workers=' {' '.join(entries)} '\n".encode())


def add_worker(common_dir: Path, pid: int, branch: str) -> None:
    """List a worker (its pid, start time and part branch): below it, ref moves in
    the main repository other than of that branch are refused."""
    _edit_workers(common_dir, pid, add=True, branch=branch)


def remove_worker(common_dir: Path, pid: int) -> None:
    _edit_workers(common_dir, pid, add=False)


def _scripts(chain: str, common_dir: Path) -> dict[str, str]:
    q = shlex.quote
    head = ("#!/bin/sh\n# hf's main-tree hook: written by hf while a batch runs; edits are "
            "overwritten.\n")
    scripts = {}
    for name in ALL_HOOKS:
        theirs = q(f"{chain}/{name}")
        passthrough = f'if [ -x {theirs} ]; then exec {theirs} "$@"; fi\nexit 0\n'
        if name != "reference-transaction":
            scripts[name] = head + passthrough
            continue
        scripts[name] = head + (
            f'if [ "$1" = prepared ] && [ -f {q(str(workers_file(common_dir)))} ]; then\n'
            f'    . {q(str(workers_file(common_dir)))}\n'
            '    pid=$$\n'
            '    branch=\n'
            '    while [ -n "${hf_workers# }" ] && [ "$pid" -gt 1 ] 2>/dev/null; do\n'
            '        IFS= read -r stat 2>/dev/null < "/proc/$pid/stat" || break\n'
            '        rest=${stat##*) }\n'
            '        set -f\n        set -- $rest\n        set +f\n'
            '        case $hf_workers in\n'
            '            *" $pid:${20}:"*)\n'
            '                branch=${hf_workers#*" $pid:${20}:"}\n'
            '                branch=${branch%% *}\n'
            '                break ;;\n'
            '        esac\n'
            '        pid=$2\n'
            '    done\n'
            '    if [ -n "$branch" ]; then\n'
            '        # below a part\'s agent: its own branch may move (hf commit), nothing else\n'
            '        buffer=\n        bad=\n'
            '        while IFS= read -r entry; do\n'
            '            buffer="$buffer$entry\n"\n'
            '            ref=${entry#* }; ref=${ref#* }\n'
            '            [ "$ref" = "$branch" ] || bad="$bad $ref"\n'
            '        done\n'
            '        if [ -n "$bad" ]; then\n'
            '            echo "hf guard: ref update in the main tree refused: it comes from '
            'below a part\'s agent (pid $pid), which may move only $branch, not$bad; instead: '
            'commit on the part\'s branch, and let \\`hf join\\` move the main branch" >&2\n'
            '            exit 1\n'
            '        fi\n'
            f'        if [ -x {theirs} ]; then printf %s "$buffer" | {theirs} "$@"; exit $?; fi\n'
            '        exit 0\n'
            '    fi\n'
            'fi\n' + passthrough)
    return scripts


def _setting_lock(main_repo: Repository) -> contextlib.AbstractContextManager[None]:
    """Held while hf sets or takes back the main worktree's hooks setting: two
    commands at once (takes or splits of two batches, a gc beside a split) would
    race on git's `config.worktree` lock, or one take the hook away just as the
    other's batch starts."""
    return locks.hold(main_repo.common_dir / "hf" / "locks" / "main-hooks.lock", wait=30,
                      what="main-tree hook")


def install(main_repo: Repository) -> None:
    """Point the main worktree at hf's main-tree hooks (idempotent)."""
    with _setting_lock(main_repo):
        _install(main_repo)


def _install(main_repo: Repository) -> None:
    from hf_fanout.worktrees.process import run

    main_repo.enable_worktree_config()
    directory = main_hooks_dir(main_repo.common_dir)
    current = _own_hooks_path(main_repo)
    if current != str(directory):
        # the person's own, for this worktree (or none): kept, chained to, put back
        _save_theirs(main_repo.common_dir, current)
        main_repo.__dict__.pop("_hf_chain_dir", None)  # (read again with it)
    for name, text in _scripts(chain_dir(main_repo), main_repo.common_dir).items():
        path = directory / name
        with contextlib.suppress(OSError):
            if path.read_text() == text:
                continue
        atomic.atomic_write(path, text.encode(), mode=0o755)
    if current != str(directory):
        run(["config", "--worktree", "core.hooksPath", str(directory)], main_repo.workdir)


def _uninstall(main_repo: Repository) -> None:
    """Take hf's setting out of the main worktree's config (when no batch runs), and
    put back the main worktree's own one that it stood in for."""
    from hf_fanout.worktrees.process import run

    saved = saved_main_hooks_path(main_repo.common_dir)
    if _own_hooks_path(main_repo) != str(main_hooks_dir(main_repo.common_dir)):
        with contextlib.suppress(FileNotFoundError):
            saved.unlink()  # (the person set their own since: that one stands)
        return
    theirs = read_saved_main_hooks_path(main_repo.common_dir)
    if theirs:
        run(["config", "--worktree", "core.hooksPath", theirs], main_repo.workdir)
    else:
        run(["config", "--worktree", "--unset", "core.hooksPath"], main_repo.workdir)
    with contextlib.suppress(FileNotFoundError):
        saved.unlink()


def _save_theirs(common_dir: Path, value: str) -> None:
    """Keep the main worktree's own core.hooksPath (none: no file) while hf's stands in."""
    saved = saved_main_hooks_path(common_dir)
    if value:
        atomic.atomic_write(saved, os.fsencode(value) + b"\n")
    else:
        with contextlib.suppress(FileNotFoundError):
            saved.unlink()


def _own_hooks_path(main_repo: Repository) -> str:
    """The main worktree's own core.hooksPath (`git config --worktree`), or ''."""
    from hf_fanout.worktrees.process import run

    return os.fsdecode(run(["config", "--worktree", "--get", "core.hooksPath"],
                           main_repo.workdir, check=False).stdout.rstrip(b"\n"))


def settle(ws: Workspace) -> None:
    """Installed while a batch runs, removed once none does (decided and done under
    the setting's lock; a split or a take under way, whose batch record comes last,
    counts by its journal)."""
    from hf_fanout.guard.fingerprint import running_batches

    journals = ws.store.root / "journal"
    with _setting_lock(ws.repo):
        making = any(journals.glob("split-*.json")) or any(journals.glob("take-*.json"))
        if making or running_batches(ws):
            _install(ws.repo)
        else:
            _uninstall(ws.repo)
