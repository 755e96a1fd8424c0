"""`hf trust`: the person trusts the repository's `.hf.toml` as it is now
(see trust.py for what needs trust and where it is kept)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from hf_fanout import config, trust
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import BadInput
from hf_fanout.orchestrator.boundary import refuse_inside_part


def trust_repository(ws: Workspace, *, revoke: bool, dry_run: bool) -> dict[str, Any]:
    """Trust (or stop trusting) the main tree's `.hf.toml` as it is now."""
    refuse_inside_part("hf trust")
    path = Path(ws.main.path) / config.REPO_FILE
    state = config.user_state_dir()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}", "check its permissions") from None
    try:
        values = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadInput(f"{path} is not valid TOML: {exc}", "fix the file first") from None
    keys = trust.needs_trust(values)
    was = bool(data) and trust.is_trusted(state, path, data)
    if not data and not revoke:
        raise BadInput(f"there is no {path}", "nothing to trust")
    if not dry_run:
        trust.set_trusted(state, path, None if revoke else data)
        ws.store.audit("trust-revoke" if revoke else "trust", file=str(path),
                       digest=trust.digest(data), keys=keys)
    return {"file": str(path), "digest": trust.digest(data), "keys": keys,
            "settings": {k: values[k] for k in keys if k in values},
            "trusted": not revoke, "was_trusted": was, "dry_run": dry_run}
