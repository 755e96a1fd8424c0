"""`hf split`: validate a plan, then create a branch and a worktree per part.

Nothing half-made survives a failure: what was created is removed again and
the error says what failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import os
import re
import shlex
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout.core.ownership import Ownership
from hf_fanout.core.plan import (
    GlobReport,
    Plan,
    check_ownership,
    context_globs,
    count_matching,
    glob_list,
    matching_nothing,
    parse_plan_toml,
    plan_from_flags,
    with_estimates,
)
from hf_fanout.core.records import Batch, Part, branch_name
from hf_fanout.core.remote_refs import check_remote_name
from hf_fanout.core.workspace import Workspace, worktree_root
from hf_fanout.errors import (
    BadInput,
    BatchExists,
    GitFailed,
    HfError,
    InvalidPlan,
    storage_error,
)
from hf_fanout.faults import fault_point
from hf_fanout.guard import fingerprint, hooks, mainhook
from hf_fanout.orchestrator import remote_split
from hf_fanout.orchestrator.split_journal import Made, journaled, record_published, take_back
from hf_fanout.orchestrator.split_pace import Pace
from hf_fanout.paths import RepoPath, shown_path
from hf_fanout.preload import preload
from hf_fanout.tabs import environment, handoff
from hf_fanout.tabs.launchers import Opened
from hf_fanout.tabs.launchers import choose as choose_launcher
from hf_fanout.tabs.opening import open_tabs as open_part_tabs
from hf_fanout.worktrees.checkout import CLOCK_LAG_NS

Progress = Callable[[str], None]

# Inflate the base's objects once for all checkouts (`_create_worktrees`) from
# this many parts and base-tree files: making the scratch pack costs about two
# checkouts' worth of inflating, and each checkout reading it saves one.
UNPACK_MIN_PARTS = 4
UNPACK_MIN_FILES = 2000
PROBE_MIN_PARTS = 3  # full checkouts to time before the pace is known: one, then two



@dataclass
class SplitResult:
    batch: Batch
    parts: list[Part]
    reports: list[GlobReport]
    dry_run: bool
    warnings: list[str] = field(default_factory=list)
    tabs: list[Opened] = field(default_factory=list)  # with --open
    # how past estimates compared with the time parts took (None: no history)
    calibration: str | None = None

    def to_data(self) -> dict[str, Any]:
        return {
            "batch": self.batch.to_dict(),
            "parts": [p.to_dict() for p in self.parts],
            "ownership": [r.__dict__ for r in self.reports],
            "dry_run": self.dry_run,
            "warnings": self.warnings,
            "tabs": [t.to_data() for t in self.tabs],
            "calibration": self.calibration,
        }


def split(ws: Workspace, plan: Plan, *, dry_run: bool = False, root: Path | None = None,
          launcher: str | None = None, open_tabs: bool = False,
          progress: Progress = lambda _msg: None, force: bool = False) -> SplitResult:
    """Make the batch `plan` describes, in this order: the plan checked against the
    base (nothing exists yet, and a refusal leaves nothing); the journal that
    claims the id; per part its branch and worktree, checked out, then guarded,
    given its environment and its record; the tamper baseline; the handoff
    files; the batch record (a batch exists once its record does); with
    `open_tabs`, a tab per part. A failure takes back everything made. `force`
    goes over `max_parts_per_batch`."""
    from hf_fanout.orchestrator.limits import check_parts

    if not dry_run:
        from hf_fanout.orchestrator.boundary import refuse_inside_part

        refuse_inside_part(f"hf split {plan.batch}")
        if open_tabs:
            from hf_fanout.core.pauses import refuse_if_paused

            refuse_if_paused(ws, f"hf split {plan.batch} --open", plan.batch)
    check_parts(ws, plan.batch, len(plan.parts), force=force, dry_run=dry_run)
    chosen = choose_launcher(ws.settings, launcher) if open_tabs else None  # fails first
    draft = draft_batch(ws, plan, root, count=dry_run)
    if dry_run:
        return with_calibration(ws, draft.result(dry_run=True))
    batch, parts = draft.batch, draft.parts
    journal = Made.of(batch, parts)
    with journaled(ws, journal):  # a split cut off inside is taken back by the next command
        if ws.store.has_batch(batch.id):  # collected by `hf gc`: its id is free again
            from hf_fanout.orchestrator.forget import forget_batch

            forget_batch(ws, ws.store.load_batch(batch.id), "id used again")
        claim_batch_dir(ws, batch)
        local = remote_split.worked_here(parts)  # the others: on another machine
        at_once, probed = 0, None  # checkouts that ran at once, once the pace was known
        hook_failed: dict[str, str] = {}  # part -> how its post-checkout hook failed
        try:
            if local:
                at_once, probed = _create_worktrees(ws, batch.base, local, progress,
                                  lambda part: prepare_part(ws, batch, part),
                                  unpack=len(local) >= UNPACK_MIN_PARTS
                                  and len(draft.base_paths) >= UNPACK_MIN_FILES
                                  and not any(part.sparse for part in local),
                                  hook_failed=hook_failed)
            for part in parts:
                if part not in local:
                    remote_split.make_local(ws, batch, part)
            mainhook.install(ws.repo)  # before the baseline: it changes config.worktree
            fingerprint.save(ws, batch, parts)
            handoff.write_handoffs(ws, batch, parts)
            fault_point("split-handoffs")
            remote_split.publish_tasks(ws, batch, parts, lambda published:
                                       record_published(ws, journal, published))
            fault_point("split-records")
            ws.store.save_batch(batch)
            fault_point("split-batch")
        except BaseException as exc:
            raise _failed(ws, journal, exc) from None
    result = draft.result(dry_run=False)
    result.warnings += [post_checkout_warning(p, batch.base, hook_failed[p.name])
                        for p in local
                        if p.name in hook_failed]
    result.warnings += register_repo(ws)
    ws.store.audit("split", batch=batch.id, base=batch.base, parts=batch.parts,
                   estimates={p.name: p.estimate_minutes for p in parts
                              if p.estimate_minutes is not None},
                   checkouts_at_once=at_once,
                   checkout_probe=None if probed is None else {
                       "alone": round(probed[0], 3), "together": round(probed[1], 3)})
    if chosen is not None:
        result.tabs = open_part_tabs(ws, batch, parts, chosen, supervise=True)
    return with_calibration(ws, result)


def post_checkout_warning(part: Part, head: str, failed: str) -> str:
    """A part whose new worktree's post-checkout hook failed: the checkout is made
    (as `git worktree add` leaves it), what the hook would have done is not."""
    from hf_fanout.worktrees.checkout import post_checkout_command

    run_again = shlex.join(["git", "-C", part.worktree,
                            *post_checkout_command(head)])
    return (f"part {part.name}: the repository's post-checkout hook failed in its new "
            f"worktree ({failed}); its files are checked out, as `git worktree add` leaves "
            f"them, without what the hook does: fix its cause, then `{run_again}`")


def with_calibration(ws: Workspace, result: SplitResult) -> SplitResult:
    """The result with the line on how past estimates compared with actual time."""
    from hf_fanout.orchestrator.report import calibration_note

    result.calibration = calibration_note(ws)
    return result


PLAN_MAX_BYTES = 1 << 20  # a plan is a few kB; a larger file is not one


def plan_from_input(batch: str | None, plan_file: Path | None, part_specs: list[str], *,
                    task: str, base: str | None, auto_join: bool, sparse: bool | None = None,
                    context: Sequence[str] = (), estimates: Sequence[str] = (),
                    remote: str | None = None) -> Plan:
    """The plan of `hf split`: from a plan file (its values overridden by the flags
    given), or from `--part` flags. A plan file is read bounded: a regular file
    of at most PLAN_MAX_BYTES. `remote` (`--remote`) makes every part remote;
    `context`: `--context` values, each `GLOB[,GLOB...]`."""
    if plan_file is None:
        if not batch:
            raise BadInput("no batch id", "hf split BATCH --part NAME=GLOB ..., or --plan FILE")
        plan = plan_from_flags(batch, part_specs, task, base, auto_join)
    else:
        if part_specs:
            raise BadInput("give either --plan or --part, not both", "see `hf split --help`")
        plan = parse_plan_toml(_read_plan(plan_file), str(plan_file))
        if batch and batch != plan.batch:
            raise BadInput(f"batch {batch!r} differs from the plan's {plan.batch!r}",
                           "leave the argument out, or make them agree")
        plan = dataclasses.replace(plan, task=task or plan.task, base=base or plan.base,
                                   auto_join=auto_join or plan.auto_join)
    if remote is not None:
        check_remote_name(remote)
        plan = dataclasses.replace(plan, parts=tuple(
            dataclasses.replace(p, remote=remote) for p in plan.parts))
    return with_estimates(dataclasses.replace(
        plan, sparse=plan.sparse if sparse is None else sparse,
        context=tuple(dict.fromkeys(plan.context + context_globs(
            [g for given in context for g in glob_list(given) if g])))), estimates)


def _read_plan(path: Path) -> str:
    hint = "pass the path of a TOML plan file"
    try:
        with path.open("rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise BadInput(f"plan {path} is not a regular file", hint)
            data = handle.read(PLAN_MAX_BYTES + 1)
    except OSError as exc:
        raise BadInput(f"cannot read plan {path}: {exc.strerror or exc}", hint) from None
    if len(data) > PLAN_MAX_BYTES:
        raise BadInput(f"plan {path} is larger than {PLAN_MAX_BYTES // 1024} KiB: not a plan",
                       hint)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"plan {path} is not UTF-8 text", hint) from None


@dataclass
class Draft:
    """A batch as the plan makes it, checked against the base, not made yet."""

    batch: Batch
    parts: list[Part]
    base_paths: list[RepoPath]
    reports: list[GlobReport]
    warnings: list[str]
    plan: Plan
    # the main tree's status, still running: a split waits for it at the end,
    # not before its checkouts
    uncommitted: Future[list[RepoPath]] | None = None

    def result(self, *, dry_run: bool) -> SplitResult:
        return SplitResult(self.batch, self.parts, self.reports, dry_run,
                           self.warnings + _uncommitted_warning(self.plan, self.uncommitted))


def draft_batch(ws: Workspace, plan: Plan, root: Path | None, *, count: bool) -> Draft:
    """The plan against the repository: the base, the ownership (overlaps refused,
    with `count` the files each glob matches), the records to write, and every
    refusal that can be known before anything is made."""
    if ws.store.has_batch(plan.batch) and not _collected(ws, plan.batch):
        orphaned = ws.store.batch_dir(plan.batch) in ws.store.orphaned_batch_dirs()
        raise BatchExists(f"batch {plan.batch!r} already exists",
                          "pick another id; its folder has no batch.json: `hf doctor` says "
                          "what to do" if orphaned else
                          f"pick another id, or `hf status {plan.batch}` to see it")
    base_rev = plan.base or "HEAD"
    base = ws.main.rev_parse(f"{base_rev}^{{commit}}")
    if base is None:
        raise BadInput(f"base {base_rev!r} is not a commit in this repository",
                       "name a branch, tag or commit; a new repository needs a first commit")
    if ws.main.head() is None:  # (`--base` named a commit; the join goes where HEAD is)
        branch = ws.main.head_ref().removeprefix("refs/heads/")
        raise BadInput(f"the main tree's branch {branch} has no commit yet: a join would "
                       "have no commit to go on", "make its first commit (`git commit "
                       "--allow-empty -m start`), or switch to a branch that has one, then "
                       "split again")
    # what the main tree has that the parts will not (read beside the rest)
    side = ThreadPoolExecutor(max_workers=1)
    uncommitted = side.submit(ws.main.changed_paths) if base == ws.main.head() else None
    side.shutdown(wait=False)
    base_paths = ws.repo.ls_tree(base)
    handoff.refuse_tracked_private_dir(base_paths)
    reports = check_ownership(plan, base_paths, count=count)
    where = worktree_root(ws, plan.batch, root)
    sparse, context = _sparse_settings(ws, plan)
    batch = Batch(id=plan.batch, base=base, target_ref=ws.main.head_ref(),
                  parts=[p.name for p in plan.parts], task=plan.task,
                  worktree_root=str(where), auto_join=plan.auto_join)
    parts = [
        Part(batch=plan.batch, name=p.name, index=i, branch=branch_name(plan.batch, p.name),
             worktree=str(where / p.name), owns=list(p.owns), task=p.task,
             estimate_minutes=p.estimate_minutes, sparse=sparse,
             context=list(dict.fromkeys(context + p.context)) if sparse else [],
             extra={"remote": {"name": p.remote}} if p.remote else {})
        for i, p in enumerate(plan.parts)
    ]
    remote_split.check_remotes(ws, parts)
    # (and a branch named as one of hf's folders, `hf` or `hf/b1`: git keeps a
    # branch as a file, and then cannot make `hf/b1/api` beside it)
    prefix = f"hf/{plan.batch}"
    folders = ["refs/heads/hf", f"refs/heads/{prefix}"]
    taken = ws.repo.existing_refs([*folders, *(f"refs/heads/{part.branch}" for part in parts)])
    for held in sorted(taken & set(folders)):
        name = held.removeprefix("refs/heads/")
        raise BatchExists(f"branch {name} exists, so git cannot make this batch's "
                          f"branches ({prefix}/PART) beside it",
                          f"rename it (`git branch -m {name} NEW-NAME`), then split again")
    for part in parts:
        if os.path.lexists(part.worktree):
            raise _in_the_way(ws, Path(part.worktree))
        if f"refs/heads/{part.branch}" in taken:
            raise BatchExists(f"branch {part.branch} already exists",
                              f"delete it (git branch -D {part.branch}) or pick another batch id")
    empty = ([(r.part, r.glob) for r in reports if r.matches == 0] if count
             else matching_nothing(plan, base_paths))
    warnings = [_matching_nothing(ws, part, glob, base_paths) for part, glob in empty]
    warnings += _owned_names_not_utf8(plan, base_paths)
    warnings += _owned_submodules(ws, plan, base, base_paths)
    warnings += ws.settings.unknown  # (a misspelt `sparse` or `copy` is a split gone wrong)
    warnings += _not_from_here(ws, plan, base)
    return Draft(batch, parts, base_paths, reports, warnings, plan, uncommitted)


_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # a byte that is not UTF-8, as os.fsdecode keeps it


def _owned_names_not_utf8(plan: Plan, base_paths: list[RepoPath]) -> list[str]:
    """A warning per part that owns files whose names are not UTF-8: a join cannot
    take a change to one (trees are built with libgit2, UTF-8 names only), and
    the agent had better know before it works."""
    if not _NOT_UTF8.search("\0".join(base_paths)):
        return []
    odd = [p for p in base_paths if _NOT_UTF8.search(p)]
    warnings = []
    for part in plan.parts:
        owned = [p for p in odd if part.ownership.owns(p)]
        if owned:
            warnings.append(
                f"{part.name}: owns {len(owned)} file(s) whose name is not UTF-8 (such as "
                f"{shown_path(owned[0])}): a join cannot take a change to them (hf builds "
                "trees with libgit2, which takes UTF-8 names only); rename them to UTF-8 "
                "names in the main tree first if the part is to change them")
    return warnings


def _owned_submodules(ws: Workspace, plan: Plan, base: str,
                      base_paths: list[RepoPath]) -> list[str]:
    """A warning per part that owns a submodule of the base, or paths inside one: a
    join takes no change to a submodule (its commit, or files in its folder), and
    the agent had better know before it works."""
    if ".gitmodules" not in base_paths:
        return []
    from hf_fanout.worktrees.submodules import gitmodules_paths

    paths = [os.fsdecode(p) for p in gitmodules_paths(ws.main.path, ["--blob",
                                                                     f"{base}:.gitmodules"])]
    warnings = []
    for part in plan.parts:
        owned = [p for p in paths if part.ownership.owns(RepoPath(p))
                 or any(glob.startswith(p + "/") for glob in part.owns)]
        if owned:
            warnings.append(
                f"{part.name}: owns submodule(s) {', '.join(shown_path(p) for p in owned[:5])}"
                ": a join takes no change to a submodule (its commit, or files in its "
                "folder); change submodules in the main tree, outside the batch")
    return warnings


def _matching_nothing(ws: Workspace, part: str, glob: str, base_paths: list[RepoPath]) -> str:
    """The warning of a glob that matches no file of the base tree; run from a
    folder of the main tree where the glob would match below it, it says that globs
    are from the repository's top, and the one that matches."""
    said = f"{part}: {glob} matches no file of the base tree (new files only)" \
        + _why_nothing(ws, glob, base_paths)
    try:
        here = Path.cwd().resolve().relative_to(ws.main.path.resolve()).as_posix()
    except (OSError, ValueError):
        return said
    if here == ".":
        return said
    try:
        found = count_matching(f"{here}/{glob}", base_paths)
    except InvalidPlan:
        return said
    return said + (f"; globs are from the repository's top, not from {here}/ where this "
                   f"split ran: `{here}/{glob}` matches {found} file(s)" if found else "")


def _why_nothing(ws: Workspace, glob: str, base_paths: list[RepoPath]) -> str:
    """What a glob matching nothing likely meant: a folder named with brackets
    (`app/[slug]/**`: `[...]` is a set of characters in a glob), or a path through a
    symbolic link the base tree holds (its files are the target's)."""
    if "[" in glob:
        literal = glob.replace("[", "\\[").replace("]", "\\]")
        try:
            found = count_matching(literal, base_paths)
        except InvalidPlan:
            found = 0
        if found:
            return (f"; `[...]` is a set of characters in a glob: `{literal}` owns the "
                    f"folder named with brackets ({found} file(s))")
    folders = glob.split("/")[:-1]
    for depth in range(1, len(folders) + 1):
        prefix = "/".join(folders[:depth])
        if any(c in prefix for c in "*?["):
            break
        link = Path(ws.main.path) / prefix
        if prefix in base_paths and link.is_symlink():
            target = shown_path(str(link.readlink()))
            return (f"; {shown_path(prefix)} is a symbolic link to {target} in the base "
                    f"tree: own the files where they are, below {target}")
    return ""


def _in_the_way(ws: Workspace, folder: Path) -> BatchExists:
    """The refusal of a part whose folder is there already, saying whose it is: a
    worktree of another repository (a worktree root two repositories share), or
    something else, never to be removed unless it is empty."""
    from hf_fanout.gitlink import gitdir_of

    elsewhere = ("set another worktree root for this repository: `--worktree-root DIR`, "
                 "or `worktree_root` in its .hf.toml")
    with contextlib.suppress(OSError, ValueError):
        common = gitdir_of(folder).parent.parent
        if (common / "worktrees").is_dir() and \
                os.path.realpath(common) != os.path.realpath(ws.repo.common_dir):
            return BatchExists(f"{folder} already exists: a worktree of another repository "
                               f"({common})", elsewhere)
    with contextlib.suppress(OSError):
        if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
            return BatchExists(f"{folder} already exists (an empty folder)",
                               f"remove it (`rmdir {shlex.quote(str(folder))}`), or {elsewhere}")
    return BatchExists(f"{folder} already exists and holds files hf did not make",
                       f"move it away if it is yours to move, or {elsewhere}")


def _collected(ws: Workspace, batch_id: str) -> bool:
    """Whether the batch is one `hf gc` collected (its id free again). A folder
    without its record yet is a batch another split is making: not free."""
    from hf_fanout.core.records import collected
    from hf_fanout.errors import NotFound, StateCorrupt

    try:
        return collected(ws.store.load_batch(batch_id))
    except (StateCorrupt, NotFound):
        return False


def _sparse_settings(ws: Workspace, plan: Plan) -> tuple[bool, tuple[str, ...]]:
    """Whether the parts are sparse checkouts (the plan or flag, else `sparse` in the
    settings), and the context globs every part gets (the plan's and `context`
    in the settings)."""
    sparse = plan.sparse
    if sparse is None:
        setting = ws.settings.get("sparse", False)
        if not isinstance(setting, bool):
            raise BadInput(f"sparse = {setting!r} in the settings is not true or false",
                           "e.g. sparse = true in .hf.toml")
        sparse = setting
    setting = ws.settings.get("context", [])
    if isinstance(setting, str):
        setting = [setting]
    if not isinstance(setting, list) or not all(isinstance(g, str) for g in setting):
        raise BadInput(f"context = {setting!r} in the settings is not a list of globs",
                       'e.g. context = ["pyproject.toml", "src/**/*.h"] in .hf.toml')
    return sparse, tuple(dict.fromkeys(context_globs(setting) + plan.context))


def claim_batch_dir(ws: Workspace, batch: Batch) -> None:
    """The batch's record directory (the journal holds the id already)."""
    try:
        ws.store.batch_dir(batch.id).mkdir(parents=True)
    except FileExistsError:  # (not taken back: it is another split's)
        raise BatchExists(f"batch {batch.id!r} already exists",
                          "another split of the same id finished first") from None


def prepare_part(ws: Workspace, batch: Batch, part: Part) -> None:
    """A new worktree, once checked out: the guard's hooks and marker, the copied
    files, the setup commands, then its record."""
    if hooks.install(ws.repo, Path(part.worktree), batch.id, part.name):
        # hf rewrote its own hooks (another python or hf path): not tampering
        fingerprint.rebaseline_guard_files(ws)
    environment.copy_files(ws, batch, part)
    environment.run_setup(ws, batch, part)
    ws.store.save_part(part)


def register_repo(ws: Workspace) -> list[str]:
    """The repository in the user's registry (so the sweep finds it); a warning when
    that fails (the batch exists all the same)."""
    from hf_fanout import registry

    try:
        registry.register(ws.repo.common_dir)
    except HfError as exc:
        return [f"not added to the sweep's registry: {exc.message} ({exc.hint})"]
    return []


def _not_from_here(ws: Workspace, plan: Plan, base: str) -> list[str]:
    """Run in a linked worktree of the person's own on another commit than the main
    tree's: the batch is split from (and joined into) the main tree all the same,
    which nothing else in the output says."""
    if plan.base or ws.here.is_main:
        return []
    here_ref, here_head = ws.here.head_ref(), ws.here.head()
    if here_head == base and here_ref == ws.main.head_ref():
        return []
    shown = ws.main.head_ref().removeprefix("refs/heads/")
    mine = here_ref.removeprefix("refs/heads/") if here_ref != "HEAD" else "a detached HEAD"
    return [f"the batch starts from the main tree's {shown} ({base[:12]}, {ws.main.path}), "
            f"not from {mine} checked out here: a batch is split from and joined into "
            "the main tree (`--base REV` starts its parts elsewhere; the join still goes "
            "into the main tree)"]


def _uncommitted_warning(plan: Plan, uncommitted: Future[list[RepoPath]] | None) -> list[str]:
    """A warning naming the main tree's uncommitted changes (a split from HEAD):
    the parts start from the commit, without them."""
    try:
        changed = sorted(uncommitted.result()) if uncommitted is not None else []
    except GitFailed:
        return []
    except Exception:  # (read beside the checkouts: a warning never fails a split made)
        return ["the main tree's uncommitted changes could not be read: the parts start "
                "from the commit, without them"]
    if not changed:
        return []
    owners = [(p.name, Ownership.parse(p.owns)) for p in plan.parts]
    shown = []
    for path in changed[:5]:
        owner = next((name for name, owns in owners if owns.owns(path)), None)
        shown.append(f"{path} (owned by {owner})" if owner else path)
    more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
    return [f"the main tree has uncommitted changes the parts do not start from: "
            f"{', '.join(shown)}{more}; commit them first if a part needs them (the join "
            "refuses to write a path the main tree has changed)"]


def _create_worktrees(ws: Workspace, base: str, parts: list[Part],
                      progress: Progress, prepare: Callable[[Part], None],
                      unpack: bool, hook_failed: dict[str, str],
                      ) -> tuple[int, tuple[float, float] | None]:
    """Register every worktree, check them out in parallel, and `prepare` each
    part (in order, in this thread) as soon as its checkout is done, while the
    other checkouts go on. With `unpack`, the base's objects are first
    inflated once into a scratch pack (`Repository.unpacked_objects`), and every
    checkout but the first (which runs meanwhile) reads them from there.
    Returns how many checkouts ran at once once the pace was known, and the
    seconds of the timed checkouts (one alone, two together) when they were
    timed (split_pace). A part whose post-checkout hook failed (its checkout
    stays, as with `git worktree add`) is put in `hook_failed` with what it said."""
    # Up to two checkouts per core at a time, each with one writer: a checkout
    # waits on the disk about a third of its time, and another one fills the
    # gap. git's parallel checkout workers (checkout.workers) only help when
    # there are fewer parts than that. Measured on 2 cores, 8 worktrees of
    # 20,000 files: 4 at a time 4.7 s, 2 at a time 5.0 s, 2 at a time with 2
    # workers each 6.4 s; of 90,000 files: 4 at a time 29 s, 8 at a time 30 s,
    # and `git worktree add` one after another about 45 s. On the same machine
    # another day, 4 at a time cost 2.5 times the system time of one at a time
    # for the same wall time: so full checkouts start one, then two, and go on
    # at whichever pace wrote faster.
    cores = os.cpu_count() or 2
    workers = min(len(parts), 2 * cores)
    checkout_workers = max(1, (2 * cores) // workers)
    sparse = any(part.sparse for part in parts)  # small checkouts: too short to time
    pace = Pace(workers, probe=not sparse and len(parts) - int(unpack) >= PROBE_MIN_PARTS)

    stop = threading.Event()  # the split failed or was interrupted: start no checkout
    remaining = _Countdown(len(parts))  # checkouts not finished yet

    def populate(part: Part) -> Future[None] | None:
        """The checkout; then the priming of the worktree's caches, handed to
        `primer`, so that its wait (`_past_index_second`) holds no checkout."""
        objects = None
        if unpacked is not None and (part is not parts[0] or unpacked.done()):
            objects = unpacked.result()
        worktree = Path(part.worktree)
        try:
            # (the first one runs beside the unpacking: its time says nothing)
            with pace.slot(measured=not (unpack and part is parts[0])):
                if stop.is_set():
                    return None
                failed = ws.repo.worktree(worktree).populate(
                    workers=checkout_workers, objects=objects, prime=False,
                    sparse=part.checkout_globs() if part.sparse else None)
            if failed is not None:
                hook_failed[part.name] = failed
        finally:
            remaining.down()
        return primer.submit(prime, part)

    ready = itertools.count(1)  # (next() on a count is atomic: primes run in threads)

    def prime(part: Part) -> None:
        tree = ws.repo.worktree(Path(part.worktree))
        _past_index_second(tree.index_file, lambda: remaining.value > 0 and not stop.is_set())
        if not hooked:  # (a hook or filter may have written a file in its last second)
            tree.settle_index()
        tree.prime_status_caches()
        progress(f"{next(ready)}/{len(parts)} worktrees: {part.name} ({part.worktree})")

    hooked = ws.repo.checkout_runs_programs()
    if sparse:  # once, before checkouts write their config
        ws.repo.enable_worktree_config()
    # the finishing steps read refs in-process: load pygit2 while this thread waits
    preload("pygit2")
    with _unpacked_objects(ws, base, unpack) as unpacked, \
            ThreadPoolExecutor(max_workers=cores) as primer, \
            ThreadPoolExecutor(max_workers=workers) as pool:
        futures = []
        try:
            # registered one after another (see add_worktree), each checkout
            # starting as soon as its worktree is registered
            for part in parts:
                Path(part.worktree).parent.mkdir(parents=True, exist_ok=True)
                ws.repo.add_worktree(Path(part.worktree), part.branch, base)
                futures.append(pool.submit(populate, part))
            for future, part in zip(futures, parts, strict=True):
                primed = future.result()
                if primed is not None:
                    primed.result()
                prepare(part)
        except BaseException:
            stop.set()
            for future in futures:
                future.cancel()
            primer.shutdown(wait=False, cancel_futures=True)  # what is undone needs no cache
            raise
    return pace.width, pace.probed


class _Countdown:
    """A count that threads take down one at a time."""

    def __init__(self, value: int) -> None:
        self.value = value
        self._lock = threading.Lock()

    def down(self) -> None:
        with self._lock:
            self.value -= 1


def _past_index_second(index: Path, worth_waiting: Callable[[], bool]) -> None:
    """Wait, while `worth_waiting()` (other checkouts still run, so the cores stay
    busy), until the clock is past the second a new worktree's index was written
    in. git built without nanosecond timestamps (Debian's, for one) takes every
    file written in that same second as racily clean and reads it again in
    full, and the status that primes the worktree's caches would: 0.27 s for
    a checkout of 20,000 files written within one second, 0.08-0.10 s once
    the second has passed. Past it, the index is dated in the new second
    (`settle_index`): no file is read again. The last checkouts do not wait."""
    try:
        target = math.floor(index.stat().st_mtime) + 1 + CLOCK_LAG_NS / 1e9
    except OSError:
        return
    while time.time() < target and worth_waiting():
        time.sleep(0.02)


@contextlib.contextmanager
def _unpacked_objects(ws: Workspace, base: str,
                      wanted: bool) -> Iterator[Future[Path | None] | None]:
    """`Repository.unpacked_objects` of `base`, made in a thread of its own in a scratch
    directory that is removed (after the thread ends) when the block does."""
    scratch = None
    if wanted:
        with contextlib.suppress(OSError):  # no scratch directory: checkouts as usual
            scratch = ws.store.scratch_dir("split")
    if scratch is None:
        yield None
        return
    maker = ThreadPoolExecutor(max_workers=1)
    try:
        yield maker.submit(ws.repo.unpacked_objects, base, scratch / "objects")
    finally:
        maker.shutdown(wait=True)
        shutil.rmtree(scratch, ignore_errors=True)


def _failed(ws: Workspace, journal: Made, exc: BaseException) -> BaseException:
    """Take back what the failed split made, and say what failed and what is left."""
    if isinstance(exc, OSError | GitFailed):  # (before what is taken back frees space)
        exc = storage_error(exc, "making its worktrees", "",
                            where=str(ws.repo.common_dir)) or exc
    left = take_back(ws, journal)
    if not isinstance(exc, HfError):
        return exc
    if journal.left_remote:
        exc.hint = (f"{exc.hint}; " if exc.hint else "") + \
            f"left on a remote: {'; '.join(journal.left_remote)}"
    if left:
        exc.message = (f"split of {journal.batch!r} failed: {exc.message.rstrip('; ')}; "
                       f"could not remove yet: {', '.join(left)} (the next hf command "
                       "tries again)")
    else:
        exc.message = (f"split of {journal.batch!r} failed, nothing was kept: "
                       f"{exc.message.rstrip('; ')}")
    return exc


