"""Layer 5: tamper visibility for what every worktree shares.

At split hf fingerprints the common config, the main worktree's and each
part's `config.worktree`, the main tree's `.hf.toml`, the hooks directories
(the repository's and hf's own), `info/`, the protected refs (the branch the
batch joins into, the parts' branches) and each part's ownership, with a copy
outside the repository. `hf join` (`verify`, from the join's plan), the sweep
and `hf doctor` (`check`) compare; `hf doctor --accept` re-baselines after a
person looked.

A move of the target branch is not tampering when every reflog entry since the
baseline is a move hf recorded in its audit log (a join's `ref-move`, a
`commit` of `hf commit`) or was made in the main tree through its HEAD (the
user's own commits there).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hf_fanout import atomic
from hf_fanout.core.records import DROPPED, JOINED, RUNNING, Batch, Part, now, part_base
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import StateCorrupt, TamperDetected
from hf_fanout.gitlink import enclosing_worktree, gitdir_of
from hf_fanout.worktrees import refs

SCHEMA = 1
_SCANNED_DIRS = ("hooks", "info", "hf/hooks", "hf/main-hooks")
# written by git's own maintenance (`git gc --auto`'s repack runs update-server-info):
# the list of refs for dumb transports, which changes nothing git runs or reads
_UNSCANNED = {"info/refs"}
_TEXT_FILES_MAX = 64 * 1024
MAIN_SETTINGS = "main tree .hf.toml"  # the one entry outside the common dir


@dataclass(frozen=True)
class Finding:
    what: str  # a path relative to the common dir, or a ref
    change: str  # added | removed | changed | moved | missing | rewritten
    detail: str

    def line(self) -> str:
        return f"{self.what} {self.change}: {self.detail}" if self.detail else \
            f"{self.what} {self.change}"


def fingerprint_file(ws: Workspace, batch_id: str) -> Path:
    return ws.store.root / "guard" / f"{batch_id}.json"


def copy_file(ws: Workspace, batch_id: str) -> Path:
    """The baseline's copy outside the repository, in the user's state dir (read-only
    inside a sandbox; elsewhere a part would have to know to change both)."""
    from hf_fanout.config import user_state_dir

    key = hashlib.sha256(os.path.realpath(ws.repo.common_dir).encode()).hexdigest()[:16]
    return user_state_dir() / "baselines" / key / f"{batch_id}.json"


def _write(ws: Workspace, batch_id: str, data: dict[str, Any]) -> None:
    atomic.atomic_write_json(copy_file(ws, batch_id), data)
    atomic.atomic_write_json(fingerprint_file(ws, batch_id), data)


def _file_entry(path: Path, keep_text: bool) -> dict[str, Any]:
    data = path.read_bytes()
    entry: dict[str, Any] = {"sha256": hashlib.sha256(data).hexdigest(),
                             "mode": oct(path.stat().st_mode & 0o777)}
    if keep_text and len(data) <= _TEXT_FILES_MAX:
        entry["text"] = data.decode("utf-8", "surrogateescape")
    return entry


def _files(ws: Workspace, parts: list[Part]) -> dict[str, dict[str, Any]]:
    common = ws.repo.common_dir
    found: dict[str, dict[str, Any]] = {}
    singles = ["config", "config.worktree"]  # the main worktree's own too
    for part in parts:
        git_dir = _part_git_dir(part)
        if git_dir is not None:
            singles.append(os.path.relpath(git_dir / "config.worktree", common))
    for rel in singles:
        path = common / rel
        if path.is_file():
            found[rel] = _file_entry(path, keep_text=True)
    settings = Path(ws.main.path) / ".hf.toml"
    if settings.is_file():
        found[MAIN_SETTINGS] = _file_entry(settings, keep_text=True)
    for rel_dir in _SCANNED_DIRS:
        root = common / rel_dir
        if not root.is_dir():
            continue
        for directory, _dirs, names in os.walk(root):
            for name in names:
                path = Path(directory) / name
                rel = str(path.relative_to(common))
                if path.is_file() and rel not in _UNSCANNED:
                    found[rel] = _file_entry(path, keep_text=False)
    return found


def _settings_committed(ws: Workspace) -> bool:
    """The main tree's `.hf.toml` is as the person committed it at HEAD (a commit in
    the main tree, which no part can make while a batch runs: guard/mainhook.py), or
    absent there and in HEAD alike. What it asks to run still needs `hf trust`."""
    from hf_fanout.errors import GitFailed

    path = Path(ws.main.path) / ".hf.toml"
    try:
        committed = ws.main.git(["cat-file", "blob", "HEAD:.hf.toml"])
    except GitFailed:
        return not path.exists()
    try:
        return path.read_bytes() == committed
    except OSError:
        return False


def _part_git_dir(part: Part) -> Path | None:
    found = enclosing_worktree(Path(part.worktree))
    return found[1] if found else None


def take(ws: Workspace, batch: Batch, parts: list[Part]) -> dict[str, Any]:
    refs = {batch.target_ref: ws.repo.ref_target(batch.target_ref) or ""}
    for part in parts:
        refs[f"refs/heads/{part.branch}"] = ws.repo.ref_target(f"refs/heads/{part.branch}") or ""
    return {"schema": SCHEMA, "batch": batch.id, "taken": now(), "base": batch.base,
            "files": _files(ws, parts), "refs": refs, "owns": _owns(parts),
            "replace": _replace_refs(ws)}


def _replace_refs(ws: Workspace) -> dict[str, str]:
    """`refs/replace/*` (name -> the object it stands in with): a replace ref makes
    every git command show another object in place of the one it names, history
    in the main tree included."""
    return ws.repo.refs_under("refs/replace/")


def _compare_replace(ws: Workspace, old: dict[str, str] | None) -> list[Finding]:
    """Replace refs made, changed or deleted since the baseline (a baseline taken
    before hf fingerprinted them has none to compare with, and none are read)."""
    if old is None:
        return []
    now_at = _replace_refs(ws)
    findings = []
    for ref in sorted(set(old) | set(now_at)):
        was, new = old.get(ref), now_at.get(ref)
        named = ref.removeprefix("refs/replace/")[:12]
        if was is None:
            findings.append(Finding(ref, "added", f"git now shows object {new and new[:12]} "
                                    f"in place of {named}"))
        elif new is None:
            findings.append(Finding(ref, "removed", f"was {was[:12]}"))
        elif was != new:
            findings.append(Finding(ref, "changed", f"{was[:12]} -> {new[:12]}"))
    return findings


def _owns(parts: list[Part]) -> dict[str, list[str]]:
    return {part.name: list(part.owns) for part in parts}


def remove(ws: Workspace, batch_id: str) -> None:
    """The batch's baseline gone, both files (the batch is forgotten)."""
    for path in (fingerprint_file(ws, batch_id), copy_file(ws, batch_id)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def save(ws: Workspace, batch: Batch, parts: list[Part]) -> None:
    _write(ws, batch.id, take(ws, batch, parts))


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = atomic.read_json(path, "tamper baseline")
    except StateCorrupt:
        return {"schema": None}
    if data is None:
        return None
    return data if isinstance(data, dict) else {"schema": None}


def load(ws: Workspace, batch_id: str) -> dict[str, Any] | None:
    """The batch's baseline; None when it has none. A damaged one reads as schema
    None, which `check` reports as a finding (it is what a part would damage).
    The copy outside the repository wins: `check` reports when the two differ."""
    copy = _read(copy_file(ws, batch_id))
    if copy is not None and copy.get("schema") == SCHEMA:
        return copy
    return _read(fingerprint_file(ws, batch_id))


def check(ws: Workspace, batch: Batch) -> list[Finding]:
    """What changed since the baseline (empty: nothing). For join, sweep and doctor."""
    base = load(ws, batch.id)
    if base is None:
        return []  # a batch split before the guard existed: nothing to compare with
    if base.get("schema") != SCHEMA:
        return [Finding(str(fingerprint_file(ws, batch.id)), "changed",
                        "the fingerprint itself is unreadable")]
    parts = ws.store.load_parts(batch)
    findings = []
    if _read(fingerprint_file(ws, batch.id)) != base:
        findings.append(Finding(str(fingerprint_file(ws, batch.id)), "changed",
                                "it no longer matches its copy outside the repository"))
    linked = _linked_records(parts)
    findings += [f for f in _compare_files(base.get("files", {}), _files(ws, parts))
                 if not (f.what == MAIN_SETTINGS and _settings_committed(ws))
                 and not _gone_with_its_worktree(ws, f, linked)]
    findings += _compare_refs(ws, batch, parts, base.get("refs", {}))
    findings += _compare_replace(ws, base.get("replace"))
    for name, owns in sorted(base.get("owns", {}).items()):
        now_owns = _owns(parts).get(name)
        if now_owns is not None and now_owns != owns:
            findings.append(Finding(f"{batch.id}/{name} ownership", "changed",
                                    f"{owns} -> {now_owns}"))
    return findings


def _gone_with_its_worktree(ws: Workspace, finding: Finding, linked: set[str]) -> bool:
    """A part's `config.worktree` that is not found because its worktree is gone:
    no part's folder links to that record any more (`linked`: the records the
    parts' `.git` files name), as for a part lost, then dropped or left out. No
    git runs there through that record, so no config of it is in force; once a
    folder links to it again, its config is compared again. (Judged from the
    parts' folders, not from the record's own `gitdir` file, which a process
    could point elsewhere.)"""
    if finding.change != "removed" or not finding.what.startswith("worktrees/") \
            or not finding.what.endswith("/config.worktree"):
        return False
    record = (ws.repo.common_dir / finding.what).parent
    return os.path.realpath(record) not in linked


def _linked_records(parts: list[Part]) -> set[str]:
    """The worktree records (`<common>/worktrees/NAME`) the parts' folders link to."""
    found = set()
    for part in parts:
        with contextlib.suppress(OSError):
            found.add(os.path.realpath(gitdir_of(Path(part.worktree))))
    return found


def _compare_files(old: dict[str, Any], new: dict[str, Any]) -> list[Finding]:
    findings = []
    for rel in sorted(set(old) | set(new)):
        before, after = old.get(rel), new.get(rel)
        if after is None:
            findings.append(Finding(rel, "removed", ""))
        elif before is None:
            findings.append(Finding(rel, "added", f"new file ({after['mode']})"))
        elif before["sha256"] != after["sha256"] or before["mode"] != after["mode"]:
            detail = _text_diff(before, after)
            if _is_config(rel) and before["mode"] == after["mode"]:
                settings = _config_changes(before.get("text"), after.get("text"))
                if settings == []:
                    continue  # (only bookkeeping changed: nothing git runs or reads)
                detail = "; ".join(settings[:12]) if settings else detail
            findings.append(Finding(rel, "changed", detail))
    return findings


def _is_config(rel: str) -> bool:
    return rel in {"config", "config.worktree"} or rel.endswith("/config.worktree")


# What git and common tools write into a repository's config on their own, or the
# person's ordinary git does (`git push -u`, `git remote add`, `git branch -u`,
# `git submodule init`, git-lfs's first run, `git maintenance register`): where
# branches track, where remotes are. None of it makes git run a program or read
# another file; a URL naming a transport program (`ext::...`) is not bookkeeping.
_BOOKKEEPING = re.compile(
    r"branch\..+\.(remote|merge|pushremote|rebase|description)"
    r"|remote\..+\.(url|pushurl|fetch|push|tagopt|prune|skipdefaultupdate|mirror)"
    r"|submodule\..+\.(url|active|branch|fetchrecursesubmodules|shallow)"
    r"|submodule\..+\.update=(checkout|rebase|merge|none)"
    r"|lfs\.repositoryformatversion|lfs\.https?://.+\.access"
    r"|maintenance\.(auto|strategy)|gui\..+")


def _bookkeeping(setting: str) -> bool:
    key, _, value = setting.partition("=")
    if key.endswith((".url", ".pushurl")) and "::" in value:
        return False
    return _BOOKKEEPING.fullmatch(setting if key.endswith(".update") else key) is not None


def _config_changes(before: str | None, after: str | None) -> list[str] | None:
    """The settings (`+key=value`, `-key=value`) that differ between two texts of a
    config file, bookkeeping left out; None when either cannot be read as config."""
    if before is None or after is None:
        return None
    old, new = _settings(before), _settings(after)
    if old is None or new is None:
        return None
    from collections import Counter

    was, now_has = Counter(old), Counter(new)
    gone, added = list((was - now_has).elements()), list((now_has - was).elements())
    # a remote's URL set anew is bookkeeping; one changed to another is not (it
    # moves where `hf publish` and the person's `git push` send their work)
    moved = {s.partition("=")[0] for s in gone} & {s.partition("=")[0] for s in added}
    moved = {key for key in moved if key.endswith((".url", ".pushurl"))}

    def kept(setting: str) -> bool:
        return setting.partition("=")[0] in moved or not _bookkeeping(setting)

    return [f"-{s}" for s in gone if kept(s)] + [f"+{s}" for s in added if kept(s)]


def _settings(text: str) -> list[str] | None:
    """`key=value` of every setting of a config file's text, as git reads it."""
    from hf_fanout.worktrees.process import run

    read = run(["config", "--file", "-", "--list", "-z"], Path("/"),
               stdin=text.encode("utf-8", "surrogateescape"), check=False)
    if read.returncode != 0:
        return None
    items = read.stdout.decode("utf-8", "surrogateescape").split("\0")
    return ["=".join(item.split("\n", 1)) for item in items if item]


def _text_diff(before: dict[str, Any], after: dict[str, Any]) -> str:
    if "text" not in before or "text" not in after:
        if before["mode"] != after["mode"]:
            return f"mode {before['mode']} -> {after['mode']}"
        return "content differs"
    lines = [line for line in difflib.unified_diff(
        before["text"].splitlines(), after["text"].splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    return "; ".join(line.replace("\t", " ") for line in lines[:12]) or "content differs"


def _compare_refs(ws: Workspace, batch: Batch, parts: list[Part],
                  old: dict[str, str]) -> list[Finding]:
    findings = []
    target = batch.target_ref
    if target in old:
        was, now_at = old[target], ws.repo.ref_target(target) or ""
        if was != now_at and not _moved_by_hf(ws, target, was, now_at):
            findings.append(Finding(target, "moved",
                                    f"{was[:12]} -> {now_at[:12] or 'deleted'} outside hf "
                                    f"({_last_reflog(ws, target)})"))
    # (a branch the baseline took as missing, `hf doctor --accept` after a look, and a
    # dropped part's branch are not findings again)
    tips = {f"refs/heads/{part.branch}": ws.repo.ref_target(f"refs/heads/{part.branch}")
            for part in parts if part.state not in (JOINED, DROPPED)
            and old.get(f"refs/heads/{part.branch}")}
    # (each part's own base: where `hf sync` last brought it, which need not descend
    # from the batch's base when main's tip was amended since the split)
    bases = {f"refs/heads/{part.branch}": part_base(batch, part) for part in parts}
    moved = [ref for ref, tip in tips.items() if tip is not None and tip != bases[ref]]
    not_from_base: set[str] = set()
    for base in sorted({bases[ref] for ref in moved}):
        not_from_base.update(ws.repo.not_descending(base, [r for r in moved if bases[r] == base]))
    # not from the base, nor from a tip `hf doctor --accept` took after a look
    rewritten = {ref for ref in not_from_base
                 if old[ref] == batch.base or (tips[ref] != old[ref]
                 and not _descends(ws, old[ref], str(tips[ref])))}
    for ref, tip in tips.items():
        if tip is None:
            findings.append(Finding(ref, "missing", "the part's branch was deleted"))
        elif ref in rewritten:
            findings.append(Finding(ref, "rewritten",
                                    f"{tip[:12]} no longer descends from the base "
                                    f"{bases[ref][:12]}"))
    return findings


def _descends(ws: Workspace, accepted: str, tip: str) -> bool:
    """Whether `tip` has the accepted tip in its history (no: when that commit is
    gone from the repository, pruned since it was accepted)."""
    from hf_fanout.errors import GitFailed

    try:
        return ws.repo.is_ancestor(accepted, tip)
    except GitFailed:
        return False


def _reflog(ws: Workspace, ref: str) -> list[tuple[str, str, str]]:
    return refs.reflog(ws.repo.common_dir, ref)


def _moved_by_hf(ws: Workspace, ref: str, was: str, now_at: str) -> bool:
    """Whether the reflog leads from `was` to `now_at` through legitimate moves only.

    Legitimate: hf's own updates (recorded in its audit log), and moves
    made in the main tree through its HEAD (the user's own commits, merges,
    pulls there): git logs those in the main worktree's HEAD reflog as well. A
    part moving the branch (`git update-ref`, hooks bypassed) is logged only in
    the branch's reflog, so it still shows.
    """
    entries = _reflog(ws, ref)
    start = max((i for i, (_old, new, _m) in enumerate(entries) if new == was), default=None)
    if start is None:
        return False
    # up to the entry that put the ref where it was read (a move made since, which
    # the reflog may already show, is the next check's)
    end = max((i for i, (_old, new, _m) in enumerate(entries) if new == now_at and i > start),
              default=None)
    if end is None:
        return False
    main_head = {(o, n) for o, n, _m in _reflog(ws, "HEAD")}
    ours = _moves_by_hf(ws, ref)
    return all((o, n) in ours or (o, n) in main_head for o, n, _m in entries[start + 1:end + 1])


def _moves_by_hf(ws: Workspace, ref: str) -> set[tuple[str, str]]:
    """The moves of `ref` hf itself made, from its audit log (`ref-move` of a join,
    `commit` of `hf commit`): facts hf wrote, not a reflog message anyone can write."""
    from hf_fanout.core import audit

    moves = set()
    for event in audit.read(ws.store.audit_file).events:
        data = event.data
        if data.get("ref") != ref:
            continue
        if event.action == "ref-move":
            moves.add((str(data.get("old")), str(data.get("new"))))
        elif event.action == "commit" and not data.get("sandbox"):
            moves.add((str(data.get("parent") or refs.zero_oid(str(data.get("commit")))),
                       str(data.get("commit"))))
    return moves


def _last_reflog(ws: Workspace, ref: str) -> str:
    entries = _reflog(ws, ref)
    return f"reflog: {entries[-1][2]!r}" if entries else "no reflog"


def verify(ws: Workspace, batch: Batch) -> None:
    """From the join's plan: refuse to join when something shared changed behind hf's back."""
    findings = check(ws, batch)
    if findings:
        raise TamperDetected(
            f"batch {batch.id}: {len(findings)} shared thing(s) changed since the split: "
            + "; ".join(f.line() for f in findings[:6])
            + (f"; and {len(findings) - 6} more" if len(findings) > 6 else ""),
            "look at each change (a part may have reached outside its worktree); undo what "
            "should not be there, then `hf doctor --accept` to take the rest as the new "
            "baseline",
            details={"findings": [f.__dict__ for f in findings]},
        )


def running_batches(ws: Workspace) -> list[Batch]:
    batches = []
    for batch_id in ws.store.batch_ids():
        try:
            batch = ws.store.load_batch(batch_id)
        except StateCorrupt:
            continue  # reported by doctor's own record check; never rewritten here
        if batch.state == RUNNING:
            batches.append(batch)
    return batches


def accept(ws: Workspace, dry_run: bool) -> list[dict[str, str]]:
    """Re-baseline every running batch; the findings that were accepted."""
    accepted = []
    for batch in running_batches(ws):
        findings = check(ws, batch)
        for f in findings:
            accepted.append({"what": "tamper-accepted" if not dry_run else "tamper",
                             "detail": f"{batch.id}: {f.line()}"})
        if findings and not dry_run:
            save(ws, batch, ws.store.load_parts(batch))
            ws.store.audit("guard-accept", batch=batch.id, findings=[f.line() for f in findings])
    return accepted


def doctor_check(ws: Workspace, dry_run: bool) -> list[dict[str, str]]:
    """For `hf doctor`: report (never fix) tampering in running batches."""
    found = []
    for batch in running_batches(ws):
        try:
            findings = check(ws, batch)
        except StateCorrupt:
            continue  # a damaged part record: doctor's record check reports it
        for f in findings:
            found.append({"what": "tamper",
                          "detail": f"{batch.id}: {f.line()} (after a look: hf doctor --accept)"})
    return found


def rebaseline_guard_files(ws: Workspace) -> None:
    """After `hf guard install`: take hf's own hooks and the parts' config.worktree
    as they are now, leaving every other baseline entry alone."""
    for batch in running_batches(ws):
        base = load(ws, batch.id)
        if base is None or base.get("schema") != SCHEMA:
            continue
        parts = ws.store.load_parts(batch)
        current = _files(ws, parts)

        def ours(rel: str) -> bool:
            return rel.startswith(("hf/hooks/", "hf/main-hooks/")) or \
                rel.endswith("/config.worktree")

        files = {k: v for k, v in base["files"].items() if not ours(k)}
        files.update({k: v for k, v in current.items() if ours(k)})
        base["files"] = files
        _write(ws, batch.id, base)
