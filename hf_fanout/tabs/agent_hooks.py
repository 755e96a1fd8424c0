"""Telling an agent to report what it does: Claude Code's hooks, Codex's notify.

Claude Code: hook entries in the part worktree's `.claude/settings.local.json`
(the per-user, uncommitted settings file), merged with what is there; the
committed `.claude/settings.json` is never touched. Every entry runs
`hf agent-event EVENT` through the stable entry in the user's guard directory
(guard/env.py: it outlives a reinstall of hf, and `hf doctor --fix` repairs
it), known again by that program's name: installing twice replaces hf's entries
and leaves the others; `remove_claude` takes hf's entries out again (`hf gc` of
a worktree it keeps), and the file too when hf made it and nothing else is left.
Codex CLI: `-c notify=[...]` on its command line.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

from hf_fanout import atomic
from hf_fanout.atomic import read_regular
from hf_fanout.errors import HfError

SETTINGS = ".claude/settings.local.json"
PROGRAM = "hf-agent-event"
# Claude Code hook event -> (matcher, hf's event)
CLAUDE_HOOKS: dict[str, tuple[str | None, str]] = {
    "Notification": ("permission_prompt|idle_prompt|elicitation_dialog", "notification"),
    "Stop": (None, "stop"),
    "UserPromptSubmit": (None, "user-prompt-submit"),
    "PreToolUse": ("*", "pre-tool-use"),  # also refuses writes outside ownership
    "SessionEnd": (None, "session-end"),
}


class AgentSettingsUnreadable(HfError):
    code = "agent_settings_unreadable"


def program() -> Path:
    """The stable entry of `hf agent-event`, written (or brought up to date) now."""
    from hf_fanout.guard.env import AGENT_EVENT, bin_dir

    return bin_dir() / AGENT_EVENT


def event_argv(event: str) -> list[str]:
    return [str(program()), event]


def agent_kind(settings: Any, argv: list[str]) -> str:
    """`agent_kind` from the settings, else what the agent command is: claude, codex, ""."""
    configured = settings.get("agent_kind")
    if isinstance(configured, str) and configured:
        return configured
    name = Path(argv[0]).name if argv else ""
    return name if name in ("claude", "codex") else ""


def codex_argv(argv: list[str], common_dir: Path, batch: str, part: str) -> list[str]:
    """Codex's command with its `notify` program set to hf's (Codex appends the JSON),
    the part and the common dir given as the Claude Code hooks give them (`env`
    sets HF_REPO: Codex runs the program without a shell), so it takes the fast way."""
    program = event_argv("codex-notify")
    if batch and part:
        program = ["env", f"HF_REPO={common_dir}", *program, "--part", f"{batch}/{part}"]
    return [argv[0], "-c", f"notify={json.dumps(program)}", *argv[1:]]


def _command(common_dir: Path, batch: str, part: str, event: str) -> str:
    return (f"HF_REPO={shlex.quote(str(common_dir))} {shlex.join(event_argv(event))} "
            f"--part {shlex.quote(f'{batch}/{part}')}")


def _ours(entry: Any) -> bool:
    hooks = entry.get("hooks") if isinstance(entry, dict) else None
    return isinstance(hooks, list) and any(
        isinstance(h, dict) and PROGRAM in str(h.get("command", "")) for h in hooks)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        text = read_regular(path).decode("utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AgentSettingsUnreadable(f"cannot read {path}: {exc}",
                                      "check its permissions; hf leaves it as it is") from None
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("hooks", {}), dict):
        raise AgentSettingsUnreadable(
            f"{path} is not a JSON object with a `hooks` object; hf did not change it",
            "fix the file (or remove it), then `hf open` the part again")
    # each event's entries are a list: merging into anything else would rewrite it
    odd = sorted(str(k) for k, v in (data.get("hooks") or {}).items()
                 if not isinstance(v, list))
    if odd:
        raise AgentSettingsUnreadable(
            f"{path}: `hooks.{odd[0]}` is not a list of hook entries; hf did not change it",
            "fix the file (or remove it), then `hf open` the part again")
    return data


def install_claude(worktree: Path, common_dir: Path, batch: str, part: str) -> dict[str, Any]:
    """hf's hook entries merged into the worktree's `.claude/settings.local.json`.
    Returns what was done ({"path", "created"}) for the part record."""
    path = worktree / SETTINGS
    existing = _read(path)
    data: dict[str, Any] = dict(existing or {})
    hooks: dict[str, Any] = dict(data.get("hooks") or {})
    for name, (matcher, event) in CLAUDE_HOOKS.items():
        entries = [e for e in hooks.get(name) or [] if not _ours(e)]
        entry: dict[str, Any] = {"hooks": [{"type": "command", "timeout": 10,
                                            "command": _command(common_dir, batch, part,
                                                                event)}]}
        if matcher is not None:
            entry = {"matcher": matcher, **entry}
        hooks[name] = [*entries, entry]
    data["hooks"] = hooks
    atomic.atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())
    _hide_from_git(worktree, True)
    return {"path": SETTINGS, "created": existing is None}


def _hide_from_git(worktree: Path, hide: bool) -> None:
    """A repository that commits the settings file: hf's entries in it are hf's, not
    the part's, so git is told not to look at the file in the part (skip-worktree):
    the agent's `git commit -a` leaves it out, and no guard refuses it as outside the
    part's ownership. Nothing where the file is not tracked."""
    from hf_fanout.worktrees.process import run

    if run(["ls-files", "--error-unmatch", "--", SETTINGS], worktree, check=False).returncode:
        return
    run(["update-index", "--skip-worktree" if hide else "--no-skip-worktree", "--", SETTINGS],
        worktree)


def _hf_programs(data: dict[str, Any]) -> list[str]:
    """The programs hf's entries in `data` run (the first word naming PROGRAM)."""
    found: list[str] = []
    for entries in (data.get("hooks") or {}).values():
        for entry in entries if isinstance(entries, list) else []:
            for hook in (entry.get("hooks") or []) if _ours(entry) else []:
                try:
                    words = shlex.split(str(hook.get("command", "")))
                except ValueError:
                    words = []
                found.extend(w for w in words if Path(w).name == PROGRAM)
    return found


def problems(worktree: Path) -> list[str]:
    """What is wrong with hf's hook entries in the worktree's settings: an entry whose
    program is gone, or one that runs a single installation of hf (not the stable
    entry: a reinstall elsewhere would break it)."""
    data = _read(worktree / SETTINGS)
    if data is None:
        return []
    from hf_fanout.config import guard_bin_dir

    stable = (guard_bin_dir() / PROGRAM).resolve()
    found: list[str] = []
    for used in sorted(set(_hf_programs(data))):
        if not Path(used).is_file():
            found.append(f"{SETTINGS} runs {used}, which is gone")
        elif Path(used).resolve() != stable:
            found.append(f"{SETTINGS} runs {used}, of one installation of hf")
        elif not os.access(used, os.X_OK):
            found.append(f"{SETTINGS} runs {used}, which is not executable")
    return found


def remove_claude(worktree: Path, created: bool) -> str:
    """hf's entries taken out of the worktree's settings, the others left as they are;
    the file removed when hf `created` it and nothing but hf's entries was in it.
    Returns what was done: "removed", "cleaned" or "" (nothing of hf's there)."""
    path = worktree / SETTINGS
    data = _read(path)
    if data is None:
        return ""
    hooks: dict[str, Any] = dict(data.get("hooks") or {})
    kept = {name: [e for e in entries if not _ours(e)] if isinstance(entries, list)
            else entries for name, entries in hooks.items()}
    if kept == hooks:
        return ""
    kept = {name: entries for name, entries in kept.items() if entries != []}
    rest = {k: v for k, v in data.items() if k != "hooks"}
    if created and not rest and not kept:
        atomic.remove_durably(path)
        if not any(path.parent.iterdir()):
            path.parent.rmdir()
        _hide_from_git(worktree, False)
        return "removed"
    atomic.atomic_write(path, (json.dumps({**rest, "hooks": kept} if kept else rest,
                                          indent=2) + "\n").encode())
    _hide_from_git(worktree, False)
    return "cleaned"
