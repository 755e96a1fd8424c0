"""Settings: the repository's `.hf.toml` (committed by the team if they like)
and the user's own config file (`$XDG_CONFIG_HOME/hf/config.toml`).

Repository settings win over user settings; flags win over both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout.errors import BadInput


def user_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "hf"


def user_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hf"


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


@dataclass
class Settings:
    """Merged settings for one repository."""

    values: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def number(self, key: str, default: float) -> float:
        """A setting that must be a positive number: anything else is one clear
        error naming the key, not a crash where it is first used."""
        raw = self.values.get(key, default)
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
        raw = self.values.get(key)
        if raw is None:
            return None
        if not isinstance(raw, str) or not raw.strip():
            raise BadInput(f"{key} = {raw!r} in the settings is not a text",
                           f"e.g. {key} = {example} in .hf.toml (or in "
                           f"{user_config_dir() / 'config.toml'})")
        return raw

    @classmethod
    def load(cls, main_workdir: Path) -> Settings:
        merged: dict[str, Any] = {}
        merged.update(_load_toml(user_config_dir() / "config.toml"))
        merged.update(_load_toml(main_workdir / ".hf.toml"))
        return cls(merged)
