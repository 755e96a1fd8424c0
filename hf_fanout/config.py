"""Settings: the repository's `.hf.toml` (committed by the team if they like)
and the user's own config file (`$XDG_CONFIG_HOME/hf/config.toml`).

Repository settings win over user settings, except `agent` (the user's own
agent is the one that runs) and what needs trust (see trust.py): a repository
key that runs code or loosens protection is honoured only when the user
trusted that exact file; reading an untrusted one is refused with a hint.
Flags win over both.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout import trust
from hf_fanout.errors import BadInput


def user_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "hf"


def user_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hf"


def guard_bin_dir() -> Path:
    """Where hf keeps the guard's `git` wrapper and entry for this user: a place that
    outlives one installation of hf (see guard/env.py)."""
    return user_state_dir() / "guard" / "bin"


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc}", "check the file's permissions") from None
    import tomllib  # only when there is a file to read

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path} is not valid TOML: {exc}", "fix or remove the file") from None


# Every key hf reads, in either file. Another key (a misspelling, most often) is
# ignored; `hf doctor` and `hf split` say so (`Settings.unknown`).
KNOWN_KEYS = frozenset({
    "agent", "agent_kind", "context", "copy", "copy_fallback", "forget_after_days", "guard",
    "heartbeat_seconds", "host", "idle_minutes", "keep_history", "launcher",
    "launcher_command", "max_live_agents", "max_live_agents_per_user", "max_parts_per_batch",
    "max_spawns_per_hour", "notify", "notify_events", "port_base", "remote_stale_after",
    "remote_timeout", "sandbox", "setup", "setup_timeout", "sparse", "tab_idle_seconds",
    "tmux_socket", "waiting_pattern", "worktree_root",
})
GUARD_KEYS = frozenset({"allow", "enabled", "refuse"})  # of the `[guard]` table


def unknown_keys(values: dict[str, Any], source: Path) -> list[str]:
    """A line for each key of `values` (read from `source`) that hf does not read,
    with the known key it most looks like."""
    guard = values.get("guard")
    tables = [("", values, KNOWN_KEYS)]
    if isinstance(guard, dict):
        tables.append(("guard.", guard, GUARD_KEYS))
    lines = []
    for prefix, table, known in tables:
        for key in sorted(k for k in table if k not in known):
            near = difflib.get_close_matches(key, sorted(known), n=1)
            guess = f" (did you mean `{prefix}{near[0]}`?)" if near else ""
            lines.append(f"{source} sets `{prefix}{key}`, which hf does not read{guess}: "
                         "it is ignored")
    return lines


@dataclass
class Settings:
    """Merged settings for one repository."""

    values: dict[str, Any] = field(default_factory=dict)
    untrusted: tuple[str, ...] = ()  # repository keys set but not trusted
    repo_file: Path | None = None
    # a line per key of either file that hf does not read (`unknown_keys`)
    unknown: tuple[str, ...] = ()
    from_user: frozenset[str] = frozenset()  # keys whose value is the user file's

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.untrusted:
            what = "runs commands" if key in trust.RUNS_CODE else "loosens hf's protection"
            raise BadInput(f"{self.repo_file} sets `{key}` ({what}) and you have not "
                           "trusted this content",
                           "read the file; then run `hf trust` in the main tree, "
                           f"or set `{key}` in {user_config_dir() / 'config.toml'} instead")
        return self.values.get(key, default)

    def number(self, key: str, default: float) -> float:
        """A setting that must be a positive number: anything else is one clear
        error naming the key, not a crash where it is first used."""
        raw = self.get(key, default)
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not raw > 0:
            raise BadInput(f"{key} = {raw!r} in the settings is not a positive number",
                           f"e.g. {key} = {default:g} in .hf.toml (or in "
                           f"{user_config_dir() / 'config.toml'})")
        return float(raw)

    def flag(self, key: str, default: bool) -> bool:
        """A setting that must be true or false."""
        raw = self.values.get(key, default)
        if not isinstance(raw, bool):
            raise BadInput(f"{key} = {raw!r} in the settings is not true or false",
                           f"e.g. {key} = true in .hf.toml (or in "
                           f"{user_config_dir() / 'config.toml'})")
        return raw

    def text(self, key: str, example: str) -> str | None:
        """A setting that must be a non-empty string, or None when it is not set."""
        raw = self.get(key)
        if raw is None:
            return None
        if not isinstance(raw, str) or not raw.strip():
            raise BadInput(f"{key} = {raw!r} in the settings is not a text",
                           f"e.g. {key} = {example} in .hf.toml (or in "
                           f"{user_config_dir() / 'config.toml'})")
        return raw

    @classmethod
    def load(cls, main_workdir: Path) -> Settings:
        user_file = user_config_dir() / "config.toml"
        user = _load_toml(user_file)
        repo_file = main_workdir / REPO_FILE
        repo = _load_toml(repo_file)
        unknown = tuple(unknown_keys(user, user_file) + unknown_keys(repo, repo_file))
        if "agent" in user:
            repo.pop("agent", None)  # the user's own agent runs, whatever the repository says
        untrusted: tuple[str, ...] = ()
        wanted = trust.needs_trust(repo)
        if wanted and not trust.is_trusted(user_state_dir(), repo_file, _bytes(repo_file)):
            untrusted = tuple(wanted)
            for key in wanted:
                repo.pop(key)
        return cls({**user, **repo}, untrusted, repo_file, unknown,
                   frozenset(key for key in user if key not in repo))


REPO_FILE = ".hf.toml"


def _bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
