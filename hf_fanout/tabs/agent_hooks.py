"""Telling an agent to report what it does: Claude Code's hooks, Codex's notify.

Claude Code: hook entries in the part worktree's `.claude/settings.local.json`
(the per-user, uncommitted settings file), merged with what is there; the
committed `.claude/settings.json` is never touched. Every entry runs
`hf agent-event EVENT` (its fast form, `python -S .../hf-agent-event`), known
again by that program's name: installing twice replaces hf's entries and
leaves the others. The file goes with the worktree (`hf gc`).
Codex CLI: `-c notify=[...]` on its command line.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

from hf_fanout import atomic
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
    import hf_fanout

    return Path(hf_fanout.__file__).resolve().parent / "cli" / "bin" / PROGRAM


def event_argv(event: str) -> list[str]:
    return [sys.executable, "-S", str(program()), event]


def agent_kind(settings: Any, argv: list[str]) -> str:
    """`agent_kind` from the settings, else what the agent command is: claude, codex, ""."""
    configured = settings.get("agent_kind")
    if isinstance(configured, str) and configured:
        return configured
    name = Path(argv[0]).name if argv else ""
    return name if name in ("claude", "codex") else ""


def codex_argv(argv: list[str]) -> list[str]:
    """Codex's command with its `notify` program set to hf's (Codex appends the JSON)."""
    notify = json.dumps(event_argv("codex-notify"))
    return [argv[0], "-c", f"notify={notify}", *argv[1:]]


def _command(common_dir: Path, batch: str, part: str, event: str) -> str:
    return (f"HF_REPO={shlex.quote(str(common_dir))} {shlex.join(event_argv(event))} "
            f"--part {shlex.quote(f'{batch}/{part}')}")


def _ours(entry: Any) -> bool:
    hooks = entry.get("hooks") if isinstance(entry, dict) else None
    return isinstance(hooks, list) and any(
        isinstance(h, dict) and PROGRAM in str(h.get("command", "")) for h in hooks)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
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
    return {"path": SETTINGS, "created": existing is None}
