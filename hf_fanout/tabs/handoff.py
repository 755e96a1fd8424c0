"""The handoff file each part starts from: `<worktree>/.hf/TASK.md`.

`.hf/` holds a `.gitignore` containing `*`, which ignores the directory's
whole content, itself included: git never lists it, `git add -A` (and so the
join, which records a worktree the same way) never takes it, and no tracked
file changes. The file is written once the whole batch exists (a
FINISH_STEP), so it can say what the other parts own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hf_fanout import atomic
from hf_fanout.core.ownership import Ownership
from hf_fanout.core.records import BLOCKED, Batch, Part
from hf_fanout.core.remote_refs import remote_of, taken_from
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import HfError
from hf_fanout.paths import RepoPath, shown_path

if TYPE_CHECKING:
    from hf_fanout.guard.wrapper import Rules

PRIVATE_DIR = ".hf"
TASK_FILE = "TASK.md"
MAX_LISTED = 200

# How a rule reads in the handoff file when its name is not a git subcommand.
_RULE_LABELS = {
    "elsewhere": "`git -C DIR`, `--git-dir`, `--work-tree` outside this worktree",
    "hooks": "`git -c core.hooksPath=...`",
    "commit": "`git commit --no-verify`",
}


def guard_blocks(rules: Rules) -> str:
    """The handoff's "what the guard blocks", from the guard's live policy.

    `rules` is what the wrapper applies in this repository (its defaults with
    `.hf.toml` [guard] allow / refuse / enabled), so the text never promises
    a block that is off, nor leaves out one that was added.
    """
    from hf_fanout.guard.wrapper import INSTEAD, RULES

    if not rules.enabled:
        return ("The guard is off in this repository (`[guard] enabled = false` in .hf.toml): "
                "git refuses nothing here, but `hf join` still refuses a part that changed "
                "files it does not own.\n")
    lines = []
    for name, why in RULES.items():
        if rules.on(name):
            label = _RULE_LABELS.get(name, f"`git {name}`")
            lines.append(f"{label}: {why}; instead: {INSTEAD[name]}")
    lines += [f"`git {name}`: refused by `[guard] refuse` in .hf.toml"
              for name in sorted(rules.refuse) if name not in RULES or not rules.on(name)]
    head = "The `git` first on your PATH refuses, with one line and exit code 99:\n"
    if rules.allow:
        head = (f"`.hf.toml` allows {', '.join(f'`{a}`' for a in sorted(rules.allow))} here. "
                + head)
    return head + _bullets(lines, "nothing (every rule is allowed by .hf.toml)", code=False)


def private_dir(worktree: Path) -> Path:
    """`<worktree>/.hf/`, created ignored by git (see the module docstring)."""
    directory = worktree / PRIVATE_DIR
    ignore = directory / ".gitignore"
    if not ignore.exists():
        atomic.atomic_write(ignore, b"# hf's own files for this worktree: never committed\n*\n")
    return directory


def task_file(worktree: Path) -> Path:
    return worktree / PRIVATE_DIR / TASK_FILE


PAUSE_NOTES = ("PAUSED: ", "RESUMED: ")  # the lines `hf pause` / `hf resume` write


def set_pause_note(worktree: Path, note: str, *, only_over_a_note: bool = False) -> bool:
    """End the worktree's handoff file with `note`, in place of the PAUSED or
    RESUMED line hf put there before, so it says one thing: what holds now.
    With `only_over_a_note`, a file without such a line is left alone. True when
    the file was written."""
    path = task_file(worktree)
    try:
        text = atomic.read_regular(path).decode("utf-8")
    except FileNotFoundError:
        return False
    lines = text.split("\n")
    kept = [line for line in lines if not line.startswith(PAUSE_NOTES)]
    if only_over_a_note and len(kept) == len(lines):
        return False
    atomic.atomic_write(path, ("\n".join(kept).rstrip("\n") + f"\n\n{note}\n").encode("utf-8"))
    return True


def refuse_tracked_private_dir(base_paths: list[RepoPath]) -> None:
    """A repository that tracks `.hf/` itself would get its files changed: refused
    before a split makes anything."""
    clash = next((p for p in base_paths if p.split("/", 1)[0] == PRIVATE_DIR), None)
    if clash:
        raise HfError(f"the base tree tracks {clash}; hf keeps each worktree's handoff "
                      f"file in an untracked {PRIVATE_DIR}/ directory",
                      f"rename the tracked {PRIVATE_DIR}/ directory in the repository")


def _bullets(items: list[str], empty: str, *, code: bool = True,
             show: Callable[[str], str] = str) -> str:
    """A Markdown list of the first MAX_LISTED `items`, each as `show` writes it."""
    if not items:
        return f"- {empty}\n"
    tick = "`" if code else ""
    shown = [f"- {tick}{show(item)}{tick}" for item in items[:MAX_LISTED]]
    if len(items) > MAX_LISTED:
        shown.append(f"- ... and {len(items) - MAX_LISTED} more")
    return "\n".join(shown) + "\n"


def render(batch: Batch, part: Part, others: list[Part], base_paths: list[str],
           main_workdir: Path, rules: Rules | None = None) -> str:
    if rules is None:
        from hf_fanout.guard.wrapper import Rules

        rules = Rules()
    owned = Ownership.parse(part.owns).owned(base_paths)
    env = part.extra.get("environment", {})
    port = env.get("port")
    others_md = "".join(f"  - {o.name}: `{'`, `'.join(o.owns)}`\n" for o in others) or "  - none\n"
    setup_note = ""
    if part.state == BLOCKED and part.reason:
        setup_note = (f"\n> This part is **blocked**: {part.reason}\n"
                      "> Fix it, then work the part as usual: `hf done` when it is finished "
                      "ends the block (or tell the person who split the task).\n")
    return f"""# Task for part `{part.name}` of batch `{batch.id}`
{setup_note}
You work in `{part.worktree}` on branch `{part.branch}` (base `{batch.base[:12]}`).
{f"Your dev server port: `{port}` (also in $HF_PORT)." if port else ""}

## The shared task

{batch.task.strip() or "(no shared task text was given)"}

## Your part

{part.task.strip() or "(no part-specific task: do your share of the shared task, within "
                      "the files you own)"}

## Files you own

Globs:
{_bullets(part.owns, "(none)")}
Of these, the base tree has {len(owned)} file(s):
{_bullets(owned, "none yet: you may only create new files matching the globs",
         show=shown_path)}
You may create, change, delete and rename files matching your globs, and nothing else.

## What you must not touch

- every path your globs do not match; `hf join` refuses the whole part if you change one
- the other parts' files:
{others_md}- the main tree at `{main_workdir}`: only `hf join` writes there
- other branches and refs: commit on `{part.branch}` only {_uncommitted(part)}

## What the guard blocks

{guard_blocks(rules)}
## How to finish

- When your part is complete: `hf done --note "what you did, how you tested it"`
- If you cannot go on: `hf blocked --reason "what you need"`
- `hf task` prints this file again; `hf status` shows every part.

## When main moves on

`hf status` shows `main +N` when main has commits your base has not. `hf sync`
(here) rebases your commits onto main's tip (`hf sync --merge` merges main in
instead); uncommitted work is set aside and comes back on top. On a conflict it
stops with the files listed: edit them, `git add` them, then `hf sync --continue`;
`hf sync --abort` puts branch, index and files back as they were.

## State (keep this section current)

Update this section as you work: a new tab resumes from it.

- Current position: not started
- Decisions: none yet
- Blockers: none
- Resume here: read the task above, then start with the files you own.
"""


def _uncommitted(part: Part) -> str:
    if taken_from(part):  # pushed by `hf done`: only commits travel
        return "(only committed work\n  travels: `hf done` pushes the branch)"
    return "(or leave work uncommitted:\n  the join takes both)"


def write_handoffs(ws: Workspace, batch: Batch, parts: list[Part]) -> None:
    """One TASK.md per part (a step of `hf split`, once every worktree exists)."""
    from hf_fanout.guard.wrapper import Rules

    base_paths = [str(p) for p in ws.repo.ls_tree(batch.base)]
    rules = Rules.from_settings(ws.settings.get("guard"))
    files = []
    for part in parts:
        if remote_of(part):  # no worktree here: its task is on the remote (docs/remote.md)
            continue
        text = render(batch, part, [o for o in parts if o is not part], base_paths,
                      ws.main.path, rules)
        private_dir(Path(part.worktree))
        files.append((task_file(Path(part.worktree)), text.encode("utf-8")))
    atomic.atomic_write_many(files)


def read_task(part: Part) -> tuple[Path, str]:
    path = task_file(Path(part.worktree))
    try:
        return path, atomic.read_regular(path).decode("utf-8")
    except FileNotFoundError:
        raise HfError(f"no handoff file at {path}",
                      "it is written at split; the worktree may predate it") from None
