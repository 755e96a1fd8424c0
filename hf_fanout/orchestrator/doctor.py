"""`hf doctor`: find what a killed command left, what is damaged and what changed
behind hf's back, settle what can be settled, and give every problem a way out.

The steps, in order: splits that were cut off; the interrupted join (recovered,
or discarded with `--discard-journal`); the records; the parts' guards and
their agents' hook entries and the links between their worktrees and git's
records of them (mended with `--fix`); the tamper baselines
(taken anew with `--accept`); the sweep's schedule; the sandbox; the pauses in
force; the limits and what they are at; the keys of the settings files hf does
not read.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import HfError

if TYPE_CHECKING:
    from hf_fanout.core.records import Part

INFO, FIXED, PROBLEM = "info", "fixed", "problem"


class ProblemsFound(HfError):
    """`hf doctor` found something a person must look at (exit 1)."""

    code = "problems_found"


@dataclass
class Finding:
    what: str
    detail: str
    level: str = INFO
    hint: str = ""


@dataclass
class DoctorReport:
    findings: list[Finding] = field(default_factory=list)
    recovered: str | None = None

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.level == PROBLEM]

    def to_data(self) -> dict[str, Any]:
        return {"findings": [asdict(f) for f in self.findings], "recovered": self.recovered}


def doctor(ws: Workspace, *, accept: bool, discard_journal: bool,
           dry_run: bool, fix: bool = False) -> DoctorReport:
    """Every check in order; see the module docstring."""
    from hf_fanout.guard import fingerprint

    if accept or discard_journal:
        from hf_fanout.orchestrator.boundary import refuse_inside_part

        refuse_inside_part("hf doctor --accept" if accept else "hf doctor --discard-journal")
    report = DoctorReport()
    check_splits(ws, report, dry_run)
    check_takes(ws, report, dry_run)
    check_join_journal(ws, report, discard=discard_journal, dry_run=dry_run)
    check_index_lock(ws, report, dry_run)
    check_main_ref_locks(ws, report)
    check_left_locks(ws, report)
    check_records(ws, report)
    # before the tamper check: what --fix reinstalls is re-baselined, not reported
    check_guards(ws, report, fix=fix, dry_run=dry_run)
    check_worktree_links(ws, report, fix=fix, dry_run=dry_run)
    check_agent_hooks(ws, report, fix=fix, dry_run=dry_run)
    check_syncs(ws, report)
    check_part_branches(ws, report)
    if accept:
        for found in fingerprint.accept(ws, dry_run):
            report.findings.append(Finding(found["what"], found["detail"],
                                           INFO if dry_run else FIXED))
    for found in fingerprint.doctor_check(ws, dry_run):
        report.findings.append(Finding(found["what"], found["detail"], PROBLEM,
                                       "look at the change; then `hf doctor --accept`"))
    check_schedule(report)
    check_isolation(ws, report)
    check_private_objects(ws, report)
    check_pauses(ws, report)
    check_limits(ws, report)
    check_settings(ws, report)
    return report


def check_settings(ws: Workspace, report: DoctorReport) -> None:
    """Each key of the settings files that hf does not read: a problem, since what the
    person meant to set is not in force (a file that does not parse is one too)."""
    try:
        unknown = ws.settings.unknown
    except HfError as exc:
        report.findings.append(Finding("settings", exc.message, PROBLEM, exc.hint))
        return
    for line in unknown:
        report.findings.append(Finding("settings", line, PROBLEM,
                                       "correct the key's name, or remove it"))


def check_pauses(ws: Workspace, report: DoctorReport) -> None:
    """Every pause in force: user-wide, the repository's, each batch's."""
    from hf_fanout.core import pauses

    try:
        found = pauses.all_in_force(ws)
    except HfError as exc:  # a damaged pause file: what it paused stays paused
        report.findings.append(Finding("pause", exc.message, PROBLEM, exc.hint))
        return
    for pause in found:
        frozen = " (its agents are frozen)" if pause.frozen else ""
        report.findings.append(Finding("pause", pause.describe() + frozen))


def check_limits(ws: Workspace, report: DoctorReport) -> None:
    """Each limit with what it is at now; one reached is said so (not a problem:
    it refuses what would go over, with a way out)."""
    from hf_fanout.orchestrator.limits import usage

    try:
        found = usage(ws)
    except HfError as exc:  # a setting that is not a number
        report.findings.append(Finding("limits", exc.message, PROBLEM, exc.hint))
        return
    for limit in found:
        reached = " (reached: what would go over it is refused)" \
            if limit.count >= limit.max else ""
        report.findings.append(Finding("limit", limit.line() + reached))


def _running_parts(ws: Workspace) -> Iterator[Part]:
    """Every part of the running batches (a damaged record is check_records' to
    report)."""
    from hf_fanout.guard.fingerprint import running_batches

    for batch in running_batches(ws):
        try:
            yield from ws.store.load_parts(batch)
        except HfError:
            continue


def _live_parts(ws: Workspace) -> Iterator[Part]:
    """The parts of running batches that are neither joined nor dropped and whose
    worktree is there."""
    from pathlib import Path

    from hf_fanout.core.records import DROPPED, JOINED

    return (p for p in _running_parts(ws)
            if p.state not in (JOINED, DROPPED) and Path(p.worktree).is_dir())


def check_guards(ws: Workspace, report: DoctorReport, *, fix: bool, dry_run: bool) -> None:
    """Every live part's guard whole (marker, hooks path, hook scripts, entry); with
    `fix`, reinstalled where it is not."""
    from pathlib import Path

    from hf_fanout.guard import hooks
    from hf_fanout.guard.fingerprint import rebaseline_guard_files

    repaired = False
    for part in _live_parts(ws):
        found = hooks.problems(ws.repo, Path(part.worktree), part.batch, part.name)
        if not found:
            continue
        where = f"{part.batch}/{part.name}"
        if fix and not dry_run:
            hooks.install(ws.repo, Path(part.worktree), part.batch, part.name)
            repaired = True
            report.findings.append(Finding("guard", f"{where}: reinstalled ("
                                           f"{'; '.join(found)})", FIXED))
        else:
            report.findings.append(Finding(
                "guard", f"{where}: {'; '.join(found)}", PROBLEM,
                "`hf doctor --fix` reinstalls the part's guard"))
    if repaired:
        rebaseline_guard_files(ws)


def check_worktree_links(ws: Workspace, report: DoctorReport, *, fix: bool,
                         dry_run: bool) -> None:
    """Every live part's worktree and git's record of it name each other (a rewritten
    `gitdir` makes git place the part elsewhere, the main tree say, and keeps the
    record after the folder goes); with `fix`, linked again (`git worktree repair`)."""
    from pathlib import Path

    from hf_fanout.gitlink import gitdir_of
    from hf_fanout.worktrees.checkout import links_back

    for part in _live_parts(ws):
        worktree = Path(part.worktree)
        try:
            record = gitdir_of(worktree)
        except OSError:
            continue  # no `.git` there: the guard's check says so
        if links_back(worktree, record):
            continue
        where = f"{part.batch}/{part.name}"
        if fix and not dry_run:
            try:
                ws.repo.repair_worktree_link(worktree)
            except HfError as exc:
                report.findings.append(Finding("worktree link", f"{where}: {exc.message}",
                                               PROBLEM, exc.hint))
                continue
            report.findings.append(Finding("worktree link", f"{where}: git's record "
                                           f"{record.name} points at its folder again", FIXED))
        else:
            report.findings.append(Finding(
                "worktree link", f"{where}: git's record {record} does not point at the "
                f"part's folder {worktree}", PROBLEM,
                "`hf doctor --fix` points it back (git worktree repair)"))


def check_agent_hooks(ws: Workspace, report: DoctorReport, *, fix: bool,
                      dry_run: bool) -> None:
    """Every live part's agent hook entries (`.claude/settings.local.json`) run a
    program that is there; with `fix`, written again through the stable entry."""
    from pathlib import Path

    from hf_fanout.tabs import agent_hooks

    for part in _live_parts(ws):
        where = f"{part.batch}/{part.name}"
        try:
            found = agent_hooks.problems(Path(part.worktree))
        except HfError as exc:
            report.findings.append(Finding("agent hooks", f"{where}: {exc.message}",
                                           PROBLEM, exc.hint))
            continue
        if not found:
            continue
        if fix and not dry_run:
            agent_hooks.install_claude(Path(part.worktree), ws.repo.common_dir,
                                       part.batch, part.name)
            report.findings.append(Finding("agent hooks", f"{where}: written again ("
                                           f"{'; '.join(found)})", FIXED))
        else:
            report.findings.append(Finding(
                "agent hooks", f"{where}: {'; '.join(found)}", PROBLEM,
                "`hf doctor --fix` writes the part's agent hooks again"))


def check_isolation(ws: Workspace, report: DoctorReport) -> None:
    """Whether agents get a sandbox here, which live workers run without one, and
    repository settings that wait for the person's trust."""
    from hf_fanout.guard import sandbox
    from hf_fanout.liveness import judge

    found = sandbox.availability()
    report.findings.append(Finding(
        "sandbox", "bubblewrap works: `hf run` starts agents in a sandbox" if found.usable
        else f"not available ({found.reason}): agents run unsandboxed, the guard only "
             "refuses git commands and reports the rest", INFO))
    for part in _running_parts(ws):
        kind = (part.worker or {}).get("sandbox")
        if kind and kind != sandbox.KIND and judge.worker_alive(part):
            report.findings.append(Finding(
                f"{part.batch}/{part.name}", f"its agent runs without a sandbox ({kind})",
                INFO))
    untrusted = ws.settings.untrusted
    if untrusted:
        report.findings.append(Finding(
            "settings", f"{ws.settings.repo_file} sets {', '.join(untrusted)}, not trusted: "
            "commands that need them refuse until `hf trust`", INFO))


def check_private_objects(ws: Workspace, report: DoctorReport) -> None:
    """A running batch's sandboxed part whose private object store (which the
    repository reads) holds an object that is not what its name says."""
    from hf_fanout.guard import sandbox
    from hf_fanout.paths import shell_word

    for part in _running_parts(ws):
        forged = sandbox.forged_objects(ws.repo.common_dir, part)
        if forged:
            report.findings.append(Finding(
                f"{part.batch}/{part.name}",
                f"its private object store holds {len(forged)} file(s) whose objects "
                "are not what their names say (a forged pack or object, which git "
                "shows under other objects' names while the batch runs)", PROBLEM,
                f"look at what its agent did; `rm -f -- "
                f"{' '.join(shell_word(str(f)) for f in forged[:4])}` removes them"))


def _would_settle(ws: Workspace, report: DoctorReport, what: str, how: str) -> None:
    """`--dry-run`: each journal of a `what` (split, take) that was cut off, and how
    doctor would settle it. One whose command still runs (it holds the lock named
    as its journal: `split-B`, `take-B--P`) is not cut off, and is left out."""
    from hf_fanout import locks

    for path in sorted((ws.store.root / "journal").glob(f"{what}-*.json")):
        if locks.is_held(ws.store.lock_file(path.stem)):
            continue  # (running: the command finishes it itself)
        report.findings.append(Finding(what, f"{path.name}: a {what} that was cut off "
                                             f"would be {how}"))


def check_splits(ws: Workspace, report: DoctorReport, dry_run: bool) -> None:
    from hf_fanout.orchestrator.split_journal import recover_splits

    if dry_run:
        _would_settle(ws, report, "split", "finished or removed")
        return
    try:
        report.findings += [Finding("split", line, FIXED) for line in recover_splits(ws)]
    except HfError as exc:
        report.findings.append(Finding("split", exc.message, PROBLEM, exc.hint))


def check_takes(ws: Workspace, report: DoctorReport, dry_run: bool) -> None:
    """Each take that was cut off, taken back (or, with `--dry-run`, said it would
    be): `take_journal.py`."""
    from hf_fanout.orchestrator.take_journal import recover_takes

    if dry_run:
        _would_settle(ws, report, "take", "taken back")
        return
    try:
        for line, hint, settled in recover_takes(ws):
            report.findings.append(Finding("take", line, FIXED if settled else PROBLEM, hint))
    except HfError as exc:
        report.findings.append(Finding("take", exc.message, PROBLEM, exc.hint))


def check_join_journal(ws: Workspace, report: DoctorReport, *, discard: bool,
                       dry_run: bool) -> None:
    from hf_fanout.orchestrator.journal import discard_journal, read_journal, recover_join

    if not ws.store.journal_file.exists():
        return
    if discard:
        done = discard_journal(ws, dry_run=dry_run)
        if done is not None:
            verb = "would save aside and remove" if dry_run else "saved aside and removed"
            where = f" (kept at {done['saved']})" if done.get("saved") else ""
            report.findings.append(Finding("journal", f"{verb} the join journal{where}",
                                           INFO if dry_run else FIXED))
            lock = ws.main.git_dir / "index.lock"
            if not done["readable"] and not dry_run:
                report.findings.append(Finding(
                    "journal", "the journal could not be read, so the files of the join it "
                    "recorded were not put back: the join may have written some of what "
                    "`git status` lists in the main tree", PROBLEM,
                    "look at `git status`; `git restore PATH` puts back a file you did not "
                    "change, and a new file you did not make can be deleted"))
            if not done["readable"] and lock.exists() and not dry_run:
                report.findings.append(Finding(
                    "journal", f"git's index lock {lock} is still there and the journal "
                    "that could have said whose it was is unreadable", PROBLEM,
                    f"if no git command is running there, remove {lock}"))
        return
    if dry_run:
        try:
            what = (read_journal(ws) or {}).get("action", "join")
            report.findings.append(Finding("journal",
                                           f"an interrupted {what} would be recovered"))
        except HfError as exc:
            report.findings.append(Finding("journal", exc.message, PROBLEM, exc.hint))
        return
    try:
        what = (read_journal(ws) or {}).get("action", "join")  # a join, or an undo
        report.recovered = recover_join(ws, wait=5)
    except HfError as exc:
        report.findings.append(Finding("journal", exc.message, PROBLEM, exc.hint))
        return
    if report.recovered:
        report.findings.append(Finding("journal", f"interrupted {what} {report.recovered}",
                                       FIXED))


# an index lock older than this, with no journal of hf's to say whose it is, is
# reported: git commands hold it for moments
STALE_INDEX_LOCK = 10.0  # seconds


def _age(path: Path) -> float | None:
    """Seconds since `path` (a lock file) was last written; None when it is not there."""
    import time

    try:
        return time.time() - path.lstat().st_mtime
    except OSError:
        return None


def _stale_lock(report: DoctorReport, lock: Path | None, what: str, detail: str,
                where: Path | str) -> None:
    """A problem for git's `lock` once it is STALE_INDEX_LOCK s old (a git command
    killed while it held it): `detail` says what fails while it is there (`{lock}`
    and `{age}` filled in); the hint removes it once no git command runs in `where`."""
    age = _age(lock) if lock is not None else None  # (None: not there, or gone meanwhile)
    if lock is None or age is None or age < STALE_INDEX_LOCK:
        return
    report.findings.append(Finding(
        what, detail.replace("{lock}", str(lock)).replace("{age}", f"{age:.0f}"), PROBLEM,
        f"if no git command is running in {where}, remove it: rm {shlex.quote(str(lock))}"))


def check_index_lock(ws: Workspace, report: DoctorReport, dry_run: bool) -> None:
    """The main worktree's `index.lock` left behind (a git command, or an hf one,
    killed while it held it): every git command that writes the index refuses
    until it goes. One a killed hf command recorded as its own is let go; one a
    journal names is the journal check's."""
    from hf_fanout.core.maintree import release_left_locks

    released = release_left_locks(ws, dry_run=dry_run)
    for path in released:
        report.findings.append(Finding(
            "index-lock", f"git's index lock {path}, which a killed hf command left, "
            + ("would be let go" if dry_run else "was let go"), INFO if dry_run else FIXED))
    lock = ws.main.git_dir / "index.lock"
    if str(lock) in released or ws.store.journal_file.exists():
        return
    _stale_lock(report, lock, "index-lock", "git's index lock {lock} is {age} s old: git "
                "commands that write the index refuse while it is there", ws.main.path)


def check_main_ref_locks(ws: Workspace, report: DoctorReport) -> None:
    """A lock file git left beside the main tree's HEAD or its branch (a git command
    killed while it moved them): every commit there, and every join, fails."""
    if ws.store.journal_file.exists():
        return  # (the journal's: recovery lets it go)
    head = ws.main.head_ref()
    found = [ws.main.git_dir / "HEAD.lock"]
    branch = ws.repo.branch_lock(head.removeprefix("refs/heads/")) \
        if head.startswith("refs/heads/") else None
    found += [branch] if branch is not None else []
    for lock in found:
        _stale_lock(report, lock, "ref-lock", "git's lock {lock} is {age} s old: commits and "
                    "joins in the main tree fail while it is there", ws.main.path)


def check_left_locks(ws: Workspace, report: DoctorReport) -> None:
    """git's lock of the shared config, and a lock beside a branch under `hf/` of no
    running batch (a split or gc killed with its git children while git made or
    deleted the branch): the next split, `git config` or gc there fails on it. The
    branches of running batches are `check_part_branches`'."""
    from hf_fanout.guard.fingerprint import running_batches

    running = {f"hf/{batch.id}/" for batch in running_batches(ws)}
    _stale_lock(report, ws.repo.common_dir / "config.lock", "config-lock",
                "git's lock {lock} is {age} s old: `git config` and hf's split and gc fail "
                "while it is there", ws.main.path)
    for branch, lock in ws.repo.branch_locks("hf/"):
        if not any(branch.startswith(folder) for folder in running):
            _stale_lock(report, lock, "ref-lock", f"git's lock {{lock}} is {{age}} s old: making "
                        f"or deleting branch {branch} fails while it is there", ws.main.path)


def _check_part_index_lock(part: Part, report: DoctorReport) -> None:
    """A part's `index.lock` that a killed git command left: git commands in the
    part, and `hf sync` of it, fail while it is there."""
    from hf_fanout.gitlink import gitdir_of

    try:
        lock = gitdir_of(Path(part.worktree)) / "index.lock"
    except (OSError, ValueError):
        return
    _stale_lock(report, lock, f"{part.batch}/{part.name}", "git's index lock {lock} is {age} "
                "s old: git commands in the part and `hf sync` of it fail while it is there",
                part.worktree)


def check_part_branches(ws: Workspace, report: DoctorReport) -> None:
    """The branch folder of each running batch (`hf/<batch>/`): a lock file left
    beside a part's branch, which fails every commit there and keeps the part at
    gc, and branches there that are no part's (a process in a part can make them:
    the folder is its branch's)."""
    from hf_fanout.guard.fingerprint import running_batches

    for batch in running_batches(ws):
        try:
            parts = {p.branch: p for p in ws.store.load_parts(batch)}
        except HfError:
            continue  # a damaged record: reported by check_records
        for part in parts.values():
            _check_part_index_lock(part, report)
        for branch, part in parts.items():
            _stale_lock(report, ws.repo.branch_lock(branch), f"{batch.id}/{part.name}",
                        f"its branch {branch} is locked by {{lock}} ({{age}} s old): commits "
                        "in the part fail, and gc keeps the part", part.worktree)
        for branch in sorted(set(ws.repo.branches(f"hf/{batch.id}/")) - set(parts)):
            report.findings.append(Finding(
                f"{batch.id}", f"branch {branch} is in the batch's branch folder but is no "
                "part's: a process in a part may have made it", PROBLEM,
                f"look at it (`git log {shlex.quote(branch)}`); if it is not yours: "
                f"git branch -D {shlex.quote(branch)}"))


def check_records(ws: Workspace, report: DoctorReport) -> None:
    """Every record read as the commands read it: one that cannot be (torn, edited,
    a listed part's record gone) is a problem, with the way on; hf leaves it."""
    from hf_fanout.core.store import MissingRecord
    from hf_fanout.liveness import agent

    for batch_id in ws.store.batch_ids():
        try:
            batch = ws.store.load_batch(batch_id)
            for part in ws.store.load_parts(batch):
                # (what its agent reported: `hf status` reads it too)
                agent.read_state(ws.store.batch_dir(batch.id), part.name)
        except MissingRecord as exc:  # (no file to look at: its hint says what to do)
            report.findings.append(Finding("record", exc.message, PROBLEM, exc.hint))
        except HfError as exc:
            report.findings.append(Finding("record", exc.message, PROBLEM,
                                           "look at the file, fix or remove it: hf leaves "
                                           "it as it is"))
    from hf_fanout.paths import shell_word

    for folder in ws.store.orphaned_batch_dirs():
        aside = shell_word(str(ws.store.root / f"lost-{folder.name}"))
        report.findings.append(Finding(
            "record", f"batch folder {folder} has no batch.json (its record was removed); "
            "its parts' records are still there", PROBLEM,
            f"the parts' work is on their branches (`git branch --list 'hf/{folder.name}/*'`): "
            f"put batch.json back, or move the folder out of hf's records (`mv "
            f"{shell_word(str(folder))} {aside}`)"))


def check_syncs(ws: Workspace, report: DoctorReport) -> None:
    """Every live part whose `hf sync` is stopped (the join refuses it): on a conflict
    git's state is in its worktree for its agent; a sync cut off (killed) is a problem."""
    from pathlib import Path

    from hf_fanout.orchestrator.sync import GIT_RUNS
    from hf_fanout.worktrees import rebase

    for part in _running_parts(ws):
        if not isinstance(part.extra.get("sync"), dict):
            continue
        where = f"{part.batch}/{part.name}"
        ways = f"`hf sync {where} --continue` finishes it, `hf sync {where} --abort` " \
            "takes it back"
        tree = Path(part.worktree)
        underway = tree.is_dir() and rebase.in_progress(ws.worktree(tree)) is not None
        if underway and part.extra["sync"].get("step") == GIT_RUNS:
            report.findings.append(Finding(
                "sync", f"{where}: its hf sync was cut off while git's "
                f"{part.extra['sync'].get('mode', 'rebase')} ran (no file to resolve: "
                "`--continue` runs that step again)", PROBLEM, ways))
        elif underway:
            report.findings.append(Finding(
                "sync", f"{where}: its hf sync stopped on a conflict; once the files "
                f"are resolved and added, {ways}"))
        else:
            report.findings.append(Finding(
                "sync", f"{where}: its hf sync was cut off before it finished",
                PROBLEM, ways))


def check_schedule(report: DoctorReport) -> None:
    from hf_fanout.liveness import schedule
    from hf_fanout.orchestrator.sweep import last_sweep

    found = schedule.describe()
    report.findings.append(Finding(found["what"], found["detail"]))
    last = last_sweep()
    report.findings.append(Finding("sweep", (
        f"last sweep {last.get('at')} ({last.get('actions')} action(s))" if last
        else "the sweep has never run")))
