"""Layer 1, the policy of the `git` wrapper: argv -> allowed, or refused with a reason.

Pure: what it needs to know about the world (an alias's expansion, whether a
word names a revision, whether a path exists) comes in through a `Probe`.
`entry.py` wires it to the real repository and execs the real git.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from hf_fanout.errors import BadInput

if TYPE_CHECKING:
    from hf_fanout.core.ownership import Ownership

# Every rule the guard knows, by name; `[guard] allow = [...]` in .hf.toml turns
# rules off, `[guard] refuse = [...]` refuses more subcommands outright.
RULES: dict[str, str] = {
    "push": "push publishes the branch; the lead joins and pushes from the main tree",
    "pull": "pull merges or rebases other history into the part",
    "fetch": "fetch writes remote-tracking refs that every worktree shares",
    "rebase": "rebase rewrites history with commits from outside the part",
    "reset": "reset --hard/--merge/--keep throws away work without a trace",
    "checkout": "checkout leaves the part's branch or takes files it does not own",
    "switch": "switch leaves the part's branch",
    "restore": "restore --source takes files the part does not own from another ref",
    "merge": "merge brings other branches' changes into the part",
    "cherry-pick": "cherry-pick brings other branches' changes into the part",
    "revert": "revert rewrites changes the part does not own",
    "am": "am applies patches that may touch files the part does not own",
    "tag": "tags are shared by every worktree",
    "stash": "the stash is shared by every worktree",
    "clean": "clean -f deletes files for good",
    "worktree": "worktrees are managed by hf",
    "branch": "branches other than the part's own are shared by every worktree",
    "update-ref": "update-ref moves refs that every worktree shares",
    "symbolic-ref": "symbolic-ref repoints HEAD or shared refs",
    "config": "the repository config is shared by every worktree",
    "remote": "remotes live in the shared config",
    "notes": "notes refs are shared by every worktree",
    "replace": "replace refs change history for every worktree",
    "filter-branch": "filter-branch rewrites shared history",
    "commit": "commit --no-verify skips the part's ownership check",
    "elsewhere": "-C, --git-dir and --work-tree reach outside the part's worktree",
    "hooks": "overriding core.hooksPath skips the part's ownership checks",
    "reflog": "reflog expire/delete destroy the record that recovery reads",
    "prune": "pruning deletes unreachable objects: the work recovery would bring back",
}

INSTEAD: dict[str, str] = {
    "push": "run `hf done` here; push from the main tree after `hf join`",
    "pull": "finish with `hf done`; `hf join` merges main three-way",
    "fetch": "fetch in the main tree",
    "rebase": "keep committing on this branch; `hf join` merges main three-way",
    "reset": "use `git restore FILE` for files you own, or `git reset --soft/--mixed`",
    "checkout": "stay on this branch; `git restore --source=REV FILE` works for files you own",
    "switch": "stay on this branch; run other work as another part",
    "restore": "restore only files this part owns",
    "merge": "`hf join` merges main three-way when the batch is joined",
    "cherry-pick": "copy the change by hand into files this part owns",
    "revert": "edit the files this part owns and commit",
    "am": "apply the patch with `git apply` to files this part owns",
    "tag": "tag in the main tree after `hf join`",
    "stash": "commit work in progress on this branch instead",
    "clean": "delete the files by name (`rm FILE`), or `git clean -n` to list them",
    "worktree": "use `hf split` / `hf gc`",
    "branch": "work on this part's own branch; `git branch` lists branches",
    "update-ref": "commit on this branch instead",
    "symbolic-ref": "stay on this branch",
    "config": "read with `git config --get KEY`; set per-command with `git -c KEY=VALUE`",
    "remote": "change remotes in the main tree",
    "notes": "write notes in the main tree",
    "replace": "change history in the main tree, not in a part",
    "filter-branch": "rewrite history in the main tree, not in a part",
    "commit": "commit without --no-verify; files outside the part belong to another part",
    "elsewhere": "cd into the other directory first",
    "hooks": "commit without overriding core.hooksPath",
    "reflog": "read it with `git reflog`; the main tree's maintenance expires it",
    "prune": "leave pruning to the main tree; `git gc` without --prune is fine",
}

# Global options of git that take the next word as their value.
_VALUE_OPTIONS = {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env",
                  "--super-prefix", "--attr-source"}
# Commands git has built in (they win over aliases, so no alias lookup for them).
_BUILTINS = frozenset((
    "add", "am", "annotate", "apply", "archive", "bisect", "blame", "branch", "bundle",
    "cat-file", "check-attr", "check-ignore", "check-mailmap", "check-ref-format", "checkout",
    "checkout-index", "cherry", "cherry-pick", "citool", "clean", "clone", "column", "commit",
    "commit-graph", "commit-tree", "config", "count-objects", "credential", "describe",
    "diff", "diff-files", "diff-index", "diff-tree", "difftool", "fast-export", "fast-import",
    "fetch", "fetch-pack", "filter-branch", "fmt-merge-msg", "for-each-ref", "for-each-repo",
    "format-patch", "fsck", "gc", "get-tar-commit-id", "grep", "gui", "hash-object", "help",
    "hook", "index-pack", "init", "instaweb", "interpret-trailers", "log", "ls-files",
    "ls-remote", "ls-tree", "mailinfo", "mailsplit", "maintenance", "merge", "merge-base",
    "merge-file", "merge-index", "merge-tree", "mktag", "mktree", "multi-pack-index", "mv",
    "name-rev", "notes", "pack-objects", "pack-refs", "patch-id", "prune", "prune-packed",
    "pull", "push", "range-diff", "read-tree", "rebase", "reflog", "remote", "repack",
    "replace", "request-pull", "rerere", "reset", "restore", "rev-list", "rev-parse",
    "revert", "rm", "send-email", "send-pack", "shortlog", "show", "show-branch",
    "show-index", "show-ref", "sparse-checkout", "stage", "stash", "status", "stripspace",
    "submodule", "switch", "symbolic-ref", "tag", "unpack-file", "unpack-objects",
    "update-index", "update-ref", "update-server-info", "var", "verify-commit", "verify-pack",
    "verify-tag", "version", "whatchanged", "worktree", "write-tree",
))


class Probe(Protocol):
    """What the policy may ask about the repository."""

    def alias(self, name: str, config_args: list[str]) -> str | None: ...

    def is_revision(self, word: str) -> bool: ...

    def exists(self, path: str) -> bool: ...


@dataclass(frozen=True)
class Rules:
    """Which rules are on: the defaults minus `allow`, plus subcommands in `refuse`."""

    enabled: bool = True
    allow: frozenset[str] = frozenset()
    refuse: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, guard: Any) -> Rules:
        if guard is None:
            return cls()
        if not isinstance(guard, Mapping):
            raise BadInput("[guard] in .hf.toml must be a table",
                           "e.g. [guard]\\nallow = [\"tag\"]")
        allow = _names(guard.get("allow", []), "allow")
        unknown = sorted(allow - set(RULES))
        if unknown:
            raise BadInput(f"[guard] allow names unknown rules: {', '.join(unknown)}",
                           f"known rules: {', '.join(sorted(RULES))}")
        enabled = guard.get("enabled", True)
        if not isinstance(enabled, bool):
            raise BadInput("[guard] enabled must be true or false", "enabled = false")
        return cls(enabled, allow, _names(guard.get("refuse", []), "refuse"))

    def on(self, rule: str) -> bool:
        return self.enabled and rule not in self.allow


def _names(value: Any, key: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadInput(f"[guard] {key} must be a list of names", f'{key} = ["tag", "clean"]')
    return frozenset(value)


@dataclass(frozen=True)
class PartContext:
    """The part a git command runs in, as the policy needs it."""

    batch: str
    part: str
    branch: str
    worktree: str  # real path of the part's worktree
    git_dir: str  # real path of the part's own git dir (<common>/worktrees/NAME)
    cwd: str  # real path the command runs in
    owns_globs: tuple[str, ...]
    rules: Rules = field(default_factory=Rules)
    env: Mapping[str, str] = field(default_factory=dict)
    common_dir: str = ""  # real path of the repository's common dir
    private_objects: str = ""  # where the sandbox puts the part's new objects

    @property
    def objects_dir(self) -> str:
        return os.path.join(self.common_dir, "objects")

    @property
    def owns(self) -> Ownership:
        return _ownership(self.owns_globs)


@lru_cache(maxsize=8)
def _ownership(globs: tuple[str, ...]) -> Ownership:
    # Imported on first use: compiling ownership costs more than most git commands.
    from hf_fanout.core.ownership import Ownership

    return Ownership.parse(list(globs))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    command: str  # what was looked at, e.g. "reset --hard"
    rule: str = ""
    reason: str = ""
    instead: str = ""

    def line(self, ctx: PartContext | None = None) -> str:
        """The one line a refusal prints."""
        where = f" in part {ctx.batch}/{ctx.part}" if ctx else " in a part"
        return (f"hf guard: refused `git {self.command}`{where}: {self.reason}; "
                f"instead: {self.instead}")


def _allow(command: str) -> Decision:
    return Decision(True, command)


def _refuse(command: str, rule: str, reason: str = "") -> Decision:
    return Decision(False, command, rule, reason or RULES.get(rule, f"`{rule}` is refused"),
                    INSTEAD.get(rule, "run it in the main tree"))


@dataclass
class Parsed:
    """git's own options, then the subcommand and its arguments."""

    chdirs: list[str] = field(default_factory=list)
    config: list[str] = field(default_factory=list)  # KEY=VALUE from -c
    config_args: list[str] = field(default_factory=list)  # -c/--config-env words, as given
    git_dir: str | None = None
    work_tree: str | None = None
    command: str | None = None
    args: list[str] = field(default_factory=list)


def parse_argv(argv: list[str]) -> Parsed:
    parsed = Parsed()
    i = 0
    while i < len(argv):
        word = argv[i]
        if not word.startswith("-") or word == "-":
            parsed.command = word
            parsed.args = argv[i + 1:]
            return parsed
        name, eq, inline = word.partition("=")
        if word in _VALUE_OPTIONS:
            value = argv[i + 1] if i + 1 < len(argv) else ""
            i += 2
        elif eq and name in _VALUE_OPTIONS and name.startswith("--"):
            value = inline
            word = name
            i += 1
        else:
            i += 1
            continue
        if word == "-C":
            parsed.chdirs.append(value)
        elif word == "-c":
            parsed.config.append(value)
            parsed.config_args += ["-c", value]
        elif word == "--config-env":
            parsed.config.append(value.partition("=")[0] + "=")
            parsed.config_args.append(f"--config-env={value}")
        elif word == "--git-dir":
            parsed.git_dir = value
        elif word == "--work-tree":
            parsed.work_tree = value
    return parsed


def decide(argv: list[str], ctx: PartContext, probe: Probe, *, _depth: int = 0) -> Decision:
    """What the guard does with `git ARGV` run inside the part `ctx`."""
    parsed = parse_argv(argv)
    label = " ".join(argv[:4]) + (" ..." if len(argv) > 4 else "")
    if not ctx.rules.enabled:
        return _allow(label)
    where = _elsewhere(parsed, ctx)
    if where and ctx.rules.on("elsewhere"):
        return _refuse(label, "elsewhere", f"{where} is outside the part's worktree "
                       f"{ctx.worktree}")
    if _overrides_hooks(parsed, ctx.env) and ctx.rules.on("hooks"):
        return _refuse(label, "hooks")
    command = parsed.command
    if command is None:
        return _allow(label)
    if command in ctx.rules.refuse:
        return Decision(False, label, command, f"`{command}` is refused by [guard] refuse "
                        "in .hf.toml", "run it in the main tree")
    if command not in _BUILTINS and _depth < 10:
        expansion = probe.alias(command, parsed.config_args)
        if expansion is not None and not expansion.startswith("!"):
            try:
                words = shlex.split(expansion)
            except ValueError:
                return _allow(label)
            inner = decide([*parsed.config_args, *words, *parsed.args], ctx, probe,
                           _depth=_depth + 1)
            if inner.allowed:
                return _allow(label)
            return Decision(False, label, inner.rule,
                            f"it is an alias of '{expansion}': {inner.reason}", inner.instead)
    check = _CHECKS.get(command)
    if check is None:
        return _allow(label)
    verdict = check(parsed.args, ctx, probe)
    if verdict is None:
        return _allow(label)
    rule, shown, reason = verdict
    if not ctx.rules.on(rule):
        return _allow(label)
    return _refuse(shown, rule, reason)


Verdict = tuple[str, str, str] | None  # (rule, command as shown, reason) or None: allowed
Check = Callable[[list[str], PartContext, Probe], Verdict]


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _real(base: str, path: str) -> str:
    return os.path.realpath(os.path.join(base, path))


def _elsewhere(parsed: Parsed, ctx: PartContext) -> str:
    cwd = ctx.cwd
    for step in parsed.chdirs:
        if step:
            cwd = _real(cwd, step)
    if not _inside(cwd, ctx.worktree):
        return f"-C {cwd}"
    git_dir = parsed.git_dir if parsed.git_dir is not None else ctx.env.get("GIT_DIR")
    if git_dir is not None:
        real = _real(cwd, git_dir)
        if real not in (ctx.git_dir, os.path.join(ctx.worktree, ".git")):
            return f"--git-dir {real}"
    work_tree = parsed.work_tree if parsed.work_tree is not None else ctx.env.get(
        "GIT_WORK_TREE")
    if work_tree is not None:
        real = _real(cwd, work_tree)
        if real != ctx.worktree:
            return f"--work-tree {real}"
    return _elsewhere_in_environment(cwd, ctx)


# A scratch index in a temporary directory is how tools (and hf) stage without
# touching the real one; only the system's shared temporary directories count.
_SYSTEM_TEMP = ("/tmp", "/var/tmp")  # noqa: S108


def _elsewhere_in_environment(cwd: str, ctx: PartContext) -> str:
    """GIT_INDEX_FILE / GIT_OBJECT_DIRECTORY outside the part, GIT_COMMON_DIR other
    than its own: each points git at what another worktree (or repository) uses."""
    index = ctx.env.get("GIT_INDEX_FILE")
    if index:
        real = _real(cwd, index)
        temp = [os.path.realpath(t) for t in (ctx.env.get("TMPDIR"), *_SYSTEM_TEMP) if t]
        if not (_inside(real, ctx.git_dir) or _inside(real, ctx.worktree)
                or (any(_inside(real, t) for t in temp)
                    and not _inside(real, ctx.common_dir or "/nonexistent"))):
            return f"GIT_INDEX_FILE={real}"
    objects = ctx.env.get("GIT_OBJECT_DIRECTORY")
    if objects:
        real = _real(cwd, objects)
        if real not in (ctx.objects_dir, ctx.private_objects):
            return f"GIT_OBJECT_DIRECTORY={real}"
    common = ctx.env.get("GIT_COMMON_DIR")
    if common and _real(cwd, common) != ctx.common_dir:
        return f"GIT_COMMON_DIR={_real(cwd, common)}"
    return ""


def _overrides_hooks(parsed: Parsed, env: Mapping[str, str]) -> bool:
    from hf_fanout.worktrees.process import environment_config_keys

    keys = [item.partition("=")[0].lower() for item in parsed.config]
    keys += environment_config_keys(env)
    # (a key hidden in a value that does not parse as words is looked for whole)
    return "core.hookspath" in keys or \
        "core.hookspath" in env.get("GIT_CONFIG_PARAMETERS", "").lower()


# --------------------------------------------------------------------- per command


def _split_args(args: list[str], value_opts: Iterable[str] = ()) -> tuple[list[str], list[str],
                                                                          list[str] | None]:
    """(options, positionals, paths after `--` or None); skips values of `value_opts`."""
    takes = set(value_opts)
    options: list[str] = []
    positionals: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        if word == "--":
            return options, positionals, args[i + 1:]
        if word.startswith("-") and word != "-":
            options.append(word)
            if word in takes:
                i += 1
        else:
            positionals.append(word)
        i += 1
    return options, positionals, None


def _has(options: list[str], longs: Iterable[str], shorts: str = "",
         value_shorts: str = "") -> str | None:
    """The first option that is one of `longs` (or `--x=...`), or a short cluster
    holding one of `shorts` (a letter in `value_shorts` ends the cluster)."""
    wanted = set(longs)
    for opt in options:
        if opt.partition("=")[0] in wanted:
            return opt
        if shorts and opt.startswith("-") and not opt.startswith("--"):
            for letter in opt[1:]:
                if letter in shorts:
                    return f"-{letter}"
                if letter in value_shorts:
                    break
    return None


def _always(rule: str) -> Check:
    def check(args: list[str], ctx: PartContext, probe: Probe) -> Verdict:
        return rule, " ".join([rule, *args[:3]]), ""

    return check


def _reset(args: list[str], ctx: PartContext, probe: Probe) -> Verdict:
    options, _, _ = _split_args(args)
    bad = _has(options, ["--hard", "--merge", "--keep"])
    return ("reset", f"reset {bad}", "") if bad else None


def _own_branch(word: str, ctx: PartContext) -> bool:
    return word in ("HEAD", "@", ctx.branch, f"refs/heads/{ctx.branch}")


def _repo_path(pathspec: str, ctx: PartContext) -> str | None:
    """A pathspec as a repository path, or None if it is not a plain path."""
    if pathspec.startswith(":") or any(c in pathspec for c in "*?[\\"):
        return None
    joined = os.path.normpath(os.path.join(ctx.cwd, pathspec))
    if not _inside(joined, ctx.worktree) or joined == ctx.worktree:
        return None
    return str(PurePosixPath(joined).relative_to(ctx.worktree))


def _unowned(paths: list[str], ctx: PartContext) -> list[str]:
    bad = []
    for spec in paths:
        path = _repo_path(spec, ctx)
        if path is None or not ctx.owns.owns(path):
            bad.append(spec)
    return bad


def _checkout(args: list[str], ctx: PartContext, probe: Probe) -> Verdict:
    options, positionals, paths = _split_args(args, ["-b", "-B", "--orphan", "--conflict"])
    new = _has(options, ["-b", "-B", "--orphan", "--detach"], "bBd")
    if new:
        return "checkout", f"checkout {new}", "checkout creates or detaches a branch; " \
            "the part must stay on its own branch"
    if paths is None and _has(options, ["--pathspec-from-file"]):
        paths = []
    if paths is not None:
        treeish = positionals[0] if positionals else None
        files = paths
    elif not positionals:
        return None
    elif probe.is_revision(positionals[0]) and (len(positionals) > 1
                                                 or not probe.exists(positionals[0])):
        treeish, files = positionals[0], positionals[1:]
    else:
        treeish, files = None, positionals
    if treeish is None or _own_branch(treeish, ctx):
        return None
    if not files:
        return "checkout", f"checkout {treeish}", \
            f"checkout leaves the part's branch {ctx.branch}"
    bad = _unowned(files, ctx)
    if bad:
        return "checkout", f"checkout {treeish} -- {' '.join(bad[:3])}", \
            f"{', '.join(bad[:5])} not owned by the part (owns {', '.join(ctx.owns.patterns())})"
    return None


def _switch(args: list[str], ctx: PartContext, probe: Probe) -> Verdict:
    options, positionals, _ = _split_args(args, ["-c", "-C", "--orphan", "--create",
                                                 "--force-create"])
    new = _has(options, ["-c", "-C", "--orphan", "--create", "--force-create", "--detach"],
               "cCd")
    if new:
        return "switch", f"switch {new}", "switch creates or detaches a branch"
    if positionals and not _own_branch(positionals[0], ctx):
        return "switch", f"switch {positionals[0]}", \
            f"switch leaves the part's branch {ctx.branch}"
    return None


def _restore(args: list[str], ctx: PartContext, probe: Probe) -> Verdict:
    source = None
    rest: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        if word in ("-s", "--source") and i + 1 < len(args):
            source = args[i + 1]
            i += 2
            continue
        if word.startswith("--source="):
            source = word.partition("=")[2]
        elif word.startswith("-s") and len(word) > 2 and not word.startswith("--"):
            source = word[2:]
        else:
            rest.append(word)
        i += 1
    if source is None or _own_branch(source, ctx):
        return None
    _, positionals, paths = _split_args(rest)
    files = positionals + (paths or [])
    bad = _unowned(files, ctx) if files else ["(no path)"]
    if bad:
        return "restore", f"restore --source={source}", \
            f"{', '.join(bad[:5])} not owned by the part"
    return None


def _tag(args: list[str], ctx: PartContext, probe: Probe) -> Verdict:
    options, positionals, _ = _split_args(args, ["-m", "-F", "-u", "--message", "--file",
                                                 "--local-user", "--sort", "--format",
                                                 "--contains", "--no-contains", "--merged",
                                                 "--no-merged", "--points-at"])
    write = _has(options, ["-a", "-s", "-u", "-f", "-d", "-m", "-F", "-e", "--annotate",
                           "--sign", "--local-user", "--force", "--delete", "--message",
                           "--file", "--edit", "--create-reflog"], "asufdmFe", "muF")
    listing = _has(options, ["-l", "--list", "-v", "--verify", "--contains", "--no-contains",
                             "--merged", "--no-merged", "--points-at"], "lv")
    if write and not _has(options, ["-v", "--verify"], "v"):
        return "tag", f"tag {write}", ""
    if positionals and not listing:
        return "tag", f"tag {positionals[0]}", ""
    return None


def _stash(args: list[str], ctx: PartContext, probe: Probe) -> Verdict:
    sub = args[0] if args and not args[0].startswith("-") else "push"
    return None if sub in ("list", "show") else ("stash", f"stash {sub}", "")


def _clean(args: list[str], ctx: PartContext, probe: Probe) -> Verdict:
    options, _, _ = _split_args(args, ["-e", "--exclude"])
    force = _has(options, ["--force"], "f", "e")
    return ("clean", f"clean {force}", "") if force else None


def _worktree(args: list[str], ctx: PartContext, probe: Probe) -> Verdict:
    sub = args[0] if args else ""
    return None if sub in ("list", "") else ("worktree", f"worktree {sub}", "")


_BRANCH_READ = ["-l", "--list", "-a", "--all", "-r", "--remotes", "-v", "-vv", "--verbose",
                "--show-current", "--contains", "--no-contains", "--merged", "--no-merged",
                "--points-at", "--format", "--sort", "--column", "--no-column", "--color",
                "--no-color", "-i", "--ignore-case", "--abbrev", "--no-abbrev"]


def _branch(args: list[str], ctx: PartContext, probe: Probe) -> Verdict:
    options, positionals, _ = _split_args(args, ["-u", "--set-upstream-to", "--format",
                                                 "--sort", "--contains", "--no-contains",
                                                 "--merged", "--no-merged", "--points-at"])
    write = _has(options, ["-d", "-D", "--delete", "-f", "--force", "-m", "-M", "--move",
                           "-c", "-C", "--copy", "-u", "--set-upstream-to", "--unset-upstream",
                           "--edit-description", "-t", "--track", "--no-track",
                           "--create-reflog", "--recurse-submodules"], "dDfmMcCut", "u")
    if write:
        return "branch", f"branch {write}", ""
    if positionals and not _has(options, _BRANCH_READ, "lavri"):
        return "branch", f"branch {positionals[0]}", \
            "creating a branch writes a ref every worktree shares"
    return None


def _symbolic_ref(args: list[str], ctx: PartContext, probe: Probe) -> Verdict:
    options, positionals, _ = _split_args(args, ["-m"])
    if _has(options, ["-d", "--delete"], "d") or len(positionals) > 1:
        return "symbolic-ref", "symbolic-ref " + " ".join(positionals[:2]), ""
    return None


_CONFIG_WRITE = ["--add", "--unset", "--unset-all", "--replace-all", "--rename-section",
                 "--remove-section", "-e", "--edit"]
_CONFIG_READ = ["--get", "--get-all", "--get-regexp", "--get-urlmatch", "--get-color",
                "--get-colorbool", "-l", "--list"]


def _config(args: list[str], ctx: PartContext, probe: Probe) -> Verdict:
    options, positionals, _ = _split_args(args, ["-f", "--file", "--blob", "--type",
                                                 "--default", "--comment", "--value"])
    first = positionals[0] if positionals else ""
    if first in ("set", "unset", "rename-section", "remove-section", "edit"):
        return "config", f"config {first}", ""
    if first in ("get", "list"):
        return None
    write = _has(options, _CONFIG_WRITE)
    if write:
        return "config", f"config {write}", ""
    if _has(options, _CONFIG_READ):
        return None
    if len(positionals) >= 2:
        return "config", f"config {first} ...", ""
    return None


def _commit(args: list[str], ctx: PartContext, probe: Probe) -> Verdict:
    options, _, _ = _split_args(args, ["-m", "-F", "-c", "-C", "-t", "--message", "--file",
                                       "--reuse-message", "--reedit-message", "--template",
                                       "--author", "--date", "--fixup", "--squash",
                                       "--cleanup", "--trailer"])
    skip = _has(options, ["--no-verify"], "n", "mFcCtS")
    return ("commit", f"commit {skip}", "") if skip else None


def _reflog(args: list[str], ctx: PartContext, probe: Probe) -> Verdict:
    sub = args[0] if args else ""
    return ("reflog", f"reflog {sub}", "") if sub in ("expire", "delete") else None


def _gc(args: list[str], ctx: PartContext, probe: Probe) -> Verdict:
    options, _, _ = _split_args(args)
    prune = next((o for o in options if o.startswith("--prune")), None)
    return ("prune", f"gc {prune}", "") if prune else None


def _subcommand_write(rule: str, reads: Iterable[str]) -> Check:
    allowed = set(reads)

    def check(args: list[str], ctx: PartContext, probe: Probe) -> Verdict:
        _, positionals, _ = _split_args(args)
        sub = positionals[0] if positionals else ""
        if sub in allowed:
            return None
        return rule, f"{rule} {sub}".strip(), ""

    return check


def _replace(args: list[str], ctx: PartContext, probe: Probe) -> Verdict:
    options, positionals, _ = _split_args(args, ["--format"])
    if positionals and not _has(options, ["-l", "--list"], "l"):
        return "replace", "replace " + positionals[0], ""
    if _has(options, ["-d", "--delete", "-f", "--force", "-e", "--edit", "-g", "--graft",
                      "--convert-graft-file"], "dfeg"):
        return "replace", "replace", ""
    return None


_CHECKS: dict[str, Check] = {
    "push": _always("push"),
    "pull": _always("pull"),
    "fetch": _always("fetch"),
    "rebase": _always("rebase"),
    "merge": _always("merge"),
    "cherry-pick": _always("cherry-pick"),
    "revert": _always("revert"),
    "am": _always("am"),
    "filter-branch": _always("filter-branch"),
    "update-ref": _always("update-ref"),
    "reset": _reset,
    "checkout": _checkout,
    "switch": _switch,
    "restore": _restore,
    "tag": _tag,
    "stash": _stash,
    "clean": _clean,
    "worktree": _worktree,
    "branch": _branch,
    "symbolic-ref": _symbolic_ref,
    "config": _config,
    "commit": _commit,
    "remote": _subcommand_write("remote", ["", "show", "get-url", "-v", "--verbose"]),
    "notes": _subcommand_write("notes", ["", "list", "show", "get-ref"]),
    "replace": _replace,
    "reflog": _reflog,
    "gc": _gc,
    "prune": _always("prune"),
}
