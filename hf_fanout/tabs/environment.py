"""A ready environment for each new worktree: copied files, setup commands, a port.

`.hf.toml`:
    copy = [".env", "node_modules"]   # from the main tree; directories copy-on-write
    copy_fallback = "copy"            # or "symlink": when reflink is not supported
    setup = ["npm ci"]                # run in each new worktree, log in .hf/setup.log
    port_base = 4100                  # HF_PORT = port_base + the part's index

A failing setup command does not undo the split: the part is marked blocked
with the log's tail, so the person sees it in `hf status` and can fix it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from hf_fanout.core import states
from hf_fanout.core.records import BLOCKED, Batch, Part
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import BadInput
from hf_fanout.paths import repo_path
from hf_fanout.tabs.handoff import private_dir, task_file

DEFAULT_PORT_BASE = 4100
SETUP_LOG = "setup.log"
TAIL_LINES = 15
FALLBACKS = ("copy", "symlink")
# Variables that would point a child's git at another repository or index.
_GIT_LOCATION_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                      "GIT_COMMON_DIR", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE")


def guard_bin() -> Path:
    """The guard's directory of wrappers, first on PATH in every tab: the one that
    outlives this installation (guard/env.py), so that a tab's git stays guarded
    after hf is reinstalled or its environment removed."""
    from hf_fanout.guard.env import bin_dir

    return bin_dir()


def port_of(ws: Workspace, part: Part) -> int:
    raw = ws.settings.get("port_base", DEFAULT_PORT_BASE)
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= 65000:
        raise BadInput(f"port_base = {raw!r} in .hf.toml is not a port number",
                       "use a number such as 4100")
    return raw + part.index


def part_variables(ws: Workspace, part: Part) -> dict[str, str]:
    """The HF_* variables of a part's tab (and of its setup commands)."""
    return {
        "HF_BATCH": part.batch,
        "HF_PART": part.name,
        "HF_WORKTREE": part.worktree,
        "HF_PORT": str(port_of(ws, part)),
        "HF_HANDOFF": str(task_file(Path(part.worktree))),
    }


def child_env(variables: dict[str, str], *, guard: bool) -> dict[str, str]:
    """This process's environment for a child: git location variables dropped,
    `variables` added, and (with `guard`) the guard's bin first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
    env.update(variables)
    if guard:
        env["PATH"] = os.pathsep.join([str(guard_bin()), env.get("PATH", os.defpath)])
    return env


def _string_list(ws: Workspace, key: str) -> list[str]:
    raw = ws.settings.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise BadInput(f"`{key}` in .hf.toml must be a list of strings",
                       f'e.g. {key} = [".env"]' if key == "copy" else f'e.g. {key} = ["npm ci"]')
    return list(raw)


# --------------------------------------------------------------------- copy


def _reflink_tree(source: Path, target: Path) -> bool:
    """Copy-on-write copy with GNU cp; False when the filesystem (or cp) cannot."""
    if not sys.platform.startswith("linux") or shutil.which("cp") is None:
        return False
    proc = subprocess.run(["cp", "-a", "--reflink=always", "--", str(source), str(target)],
                          capture_output=True, check=False)
    if proc.returncode != 0:
        _remove(target)
        return False
    return True


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def copy_entry(source: Path, target: Path, fallback: str) -> str:
    """Copy one file or directory; returns how: reflink, copy, symlink or link."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_symlink():
        target.symlink_to(source.readlink())
        return "link"
    if source.is_dir():
        if _reflink_tree(source, target):
            return "reflink"
        if fallback == "symlink":
            target.symlink_to(source.resolve(), target_is_directory=True)
            return "symlink"
        shutil.copytree(source, target, symlinks=True)
        return "copy"
    if _reflink_tree(source, target):
        return "reflink"
    shutil.copy2(source, target)
    return "copy"


def refuse_outside(source: Path, root: Path, rel: str) -> None:
    """`copy` takes what is in the repository only: an entry, or a link below a
    copied directory, that resolves outside the main tree (a secret elsewhere on
    the disk) is refused, before anything is copied."""
    top = root.resolve()
    candidates = [source]
    if source.is_dir() and not source.is_symlink():
        for directory, dirs, files in os.walk(source):
            candidates += [Path(directory) / n for n in (*dirs, *files)
                           if (Path(directory) / n).is_symlink()]
    for path in candidates:
        real = path.resolve()
        if real != top and top not in real.parents:
            shown = path.relative_to(root) if path.is_relative_to(root) else path
            raise BadInput(f"copy: {rel} leads outside the repository ({shown} -> {real})",
                           "copy only what lies in the main tree; remove the link, or "
                           "the entry from `copy` in .hf.toml")


def copy_files(ws: Workspace, batch: Batch, part: Part) -> None:
    """The configured untracked files, from the main tree (a step of `hf split`)."""
    del batch
    entries = _string_list(ws, "copy")
    fallback = ws.settings.get("copy_fallback", "copy")
    if fallback not in FALLBACKS:
        raise BadInput(f"copy_fallback = {fallback!r} in .hf.toml",
                       f"use one of {', '.join(FALLBACKS)}")
    worktree = Path(part.worktree)
    env = part.extra.setdefault("environment", {})
    copied: list[dict[str, str]] = []
    warnings: list[str] = env.setdefault("warnings", [])
    for raw in entries:
        rel = repo_path(raw.rstrip("/"))
        source = ws.main.path / rel
        target = worktree / rel
        if not source.exists() and not source.is_symlink():
            warnings.append(f"copy: {rel} does not exist in the main tree; not copied")
            continue
        if target.exists() or target.is_symlink():
            warnings.append(f"copy: {rel} already exists in the worktree (tracked?); "
                            "left as it is")
            continue
        refuse_outside(source, ws.main.path, rel)
        how = copy_entry(source, target, fallback)
        copied.append({"path": rel, "how": how})
    if copied:
        unignored = ws.repo.worktree(worktree).not_ignored([c["path"] for c in copied])
        warnings.extend(f"copy: {p} is not ignored by git: `git status` in the part shows it; "
                        "hf leaves it out of the part's changes and of the join"
                        for p in unignored)
    env["copied"] = copied


# --------------------------------------------------------------------- setup


def run_setup(ws: Workspace, batch: Batch, part: Part) -> None:
    """The setup commands, in order; the first failure blocks the part (a step of
    `hf split`)."""
    del batch
    commands = _string_list(ws, "setup")
    env_record: dict[str, Any] = part.extra.setdefault("environment", {})
    env_record["port"] = port_of(ws, part)
    if not commands:
        return
    worktree = Path(part.worktree)
    log = private_dir(worktree) / SETUP_LOG
    timeout = ws.settings.number("setup_timeout", 1800)
    env = child_env(part_variables(ws, part), guard=False)
    env_record["setup_log"] = str(log)
    with open(log, "ab") as handle:
        for command in commands:
            handle.write(f"$ {command}\n".encode())
            handle.flush()
            try:
                proc = subprocess.run(["/bin/sh", "-c", command], cwd=worktree, env=env,
                                      stdin=subprocess.DEVNULL, stdout=handle,
                                      stderr=subprocess.STDOUT, timeout=timeout, check=False)
                code = proc.returncode
            except subprocess.TimeoutExpired:
                code = -1
                handle.write(f"hf: timed out after {timeout:g} s\n".encode())
            handle.write(f"[exit {code}]\n".encode())
            handle.flush()
            if code != 0:
                _block(part, command, code, log)
                return
    env_record["setup"] = "ok"


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    data = path.read_bytes()[-8192:].decode("utf-8", "replace")
    return "\n".join(data.rstrip("\n").splitlines()[-lines:])


def _block(part: Part, command: str, code: int, log: Path) -> None:
    last = tail(log)
    states.enter(part, BLOCKED)
    part.reason = f"setup `{command}` failed (exit {code}), log {log}:\n{last}"
    part.extra["environment"]["setup"] = {"failed": command, "exit": code, "tail": last}
