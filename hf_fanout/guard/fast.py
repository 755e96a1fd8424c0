"""The guard's fast path: what a part's `git` wrapper and hooks decide in sh,
without starting python.

The python policy (wrapper.py, hooks.py) stays the one authority. After each
slow-path run it writes `<part git dir>/hf-fast.sh`, a few sh assignments and a
function, which the sh side sources:

- the wrapper execs the real git at once for a subcommand in FAST_COMMANDS
  (commands the policy allows with any arguments) or a plain `commit`, when no
  global option comes first, no git variable points elsewhere and the
  `[guard] refuse` list does not name it;
- the reference-transaction hook passes a transaction that moves only HEAD and
  the part's own branch;
- the pre-commit hook passes when every staged path is owned by a glob that sh
  can match exactly (`dir/**`, a literal path).

Whatever the fast path cannot decide goes to python, so a refusal and its
message are always python's. The file is stale (and ignored) once the
repository's `.hf.toml` or the user's config is newer than it, and it is never
written while the settings cannot be read or need trust.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from hf_fanout import atomic

FAST_FILE = "hf-fast.sh"
# Subcommands wrapper.decide allows whatever their arguments (no per-command
# check, a builtin so never an alias); bin/git lists the same words.
FAST_COMMANDS = (
    "add", "annotate", "blame", "cat-file", "check-attr", "check-ignore", "cherry",
    "count-objects", "describe", "diff", "diff-files", "diff-index", "diff-tree",
    "for-each-ref", "format-patch", "grep", "hash-object", "help", "log", "ls-files",
    "ls-tree", "merge-base", "mv", "name-rev", "range-diff", "rev-list", "rev-parse", "rm",
    "shortlog", "show", "show-ref", "status", "var", "version", "whatchanged", "write-tree",
)
_GLOB_CHARS = set("*?[\\")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _case_patterns(owns: list[str]) -> list[str]:
    """sh `case` patterns that match only paths the globs own (a path they miss
    goes to python, which decides exactly)."""
    patterns = []
    for glob in owns:
        if glob == "**":
            patterns.append("*")
        elif glob.endswith("/**") and not _GLOB_CHARS & set(glob[:-3]):
            patterns.append(_quote(glob[:-2]) + "*")
        elif not _GLOB_CHARS & set(glob):
            stem = glob.rstrip("/")
            patterns += [_quote(stem), _quote(stem + "/") + "*"]
    return patterns


def render(branch: str, owns: list[str], refuse: frozenset[str],
           settings: tuple[Path, Path, Path]) -> str:
    """The fast file; `settings`: the repository's, the user's and the trust list,
    any of them newer than the file makes it stale."""
    patterns = _case_patterns(owns)
    owned = (f"    case $1 in {'|'.join(patterns)}) return 0 ;; esac\n" if patterns else "")
    return (
        "# hf guard fast path: written by hf after each guarded command; edits are "
        "overwritten.\n"
        f"hf_fast_branch={_quote('refs/heads/' + branch)}\n"
        f"hf_fast_refuse={_quote(' ' + ' '.join(sorted(refuse)) + ' ')}\n"
        f"hf_fast_repo_settings={_quote(str(settings[0]))}\n"
        f"hf_fast_user_settings={_quote(str(settings[1]))}\n"
        f"hf_fast_trust={_quote(str(settings[2]))}\n"
        f"hf_fast_owned() {{\n{owned}    return 1\n}}\n")


def refresh(git_dir: str, main_workdir: str, record: dict[str, Any] | None) -> None:
    """Write (or touch) the part's fast file from its record and the settings; remove
    it when the settings cannot be used as they are."""
    from hf_fanout import config, trust
    from hf_fanout.errors import HfError
    from hf_fanout.guard.wrapper import Rules

    path = Path(git_dir) / FAST_FILE
    read_at = time.time()  # before the settings are read: a later write is newer
    try:
        if record is None or record.get("state") == "joined":
            raise HfError("no live part")
        rules = Rules.from_settings(config.Settings.load(Path(main_workdir)).get("guard"))
        owns = record.get("owns", [])
        text = render(str(record.get("branch", "")),
                      [str(g) for g in owns] if isinstance(owns, list) else [],
                      rules.refuse,
                      (Path(main_workdir) / config.REPO_FILE,
                       config.user_config_dir() / "config.toml",
                       trust.store_file(config.user_state_dir())))
    except HfError:
        with contextlib.suppress(OSError):
            path.unlink()
        return
    with contextlib.suppress(OSError):  # (a read-only git dir: the slow path still works)
        if not (path.exists() and path.read_bytes() == text.encode()):
            atomic.atomic_write(path, text.encode())
        # dated before the settings were read (with a margin for file systems that
        # keep whole seconds): a settings file written since is newer than it
        os.utime(path, (read_at - 2, read_at - 2))
