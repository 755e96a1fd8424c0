#!/usr/bin/env python3
"""Benchmark of hf's core against plain git: split, join, status and start-up.

Not a test (pytest does not collect it): run it by hand.

    python3 tests/bench/bench_core.py                    # 20,000 and 90,000 files
    python3 tests/bench/bench_core.py --sizes 20000 --keep
    python3 tests/bench/bench_core.py --quick            # small repositories, a smoke run
    python3 tests/bench/bench_core.py --profile /tmp/prof  # hf split/join under cProfile
    python3 tests/bench/bench_core.py --parts 32 --sizes 20000  # 32 parts (default 8)
    python3 tests/bench/bench_core.py --parts 16 --sizes 100000

For every size it builds two identical synthetic repositories (deterministic,
`git fast-import`, then one checkout) in fresh directories: one for hf, one
for plain git, so neither side ever reuses a tree the other one (or a delete)
touched. Then, side by side:

  split   `hf split` of 8 parts          vs 8 sequential `git worktree add -b`
  status  `hf status` with 8 live parts  vs `git status --porcelain` in each worktree
  join    `hf join` of 8 parts x 125 changed files (committed and uncommitted
          changes, adds, deletes)        vs the plain-git way: in each worktree
          `git diff base HEAD` + `git status`, copy the changed files into the
          main tree, `git add`, `git commit`
  help    `hf --help`                    vs `python -c pass` (reference only)

and checks that both joins produced the same tree. Which side runs first
alternates from one size to the next (git first at the first size). hf runs as a real process
(`python -m hf_fanout`) from this checkout, with a private HOME.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
BASE_TOPS = ["app", "core", "docs", "lib", "plugins", "services", "tests", "tools"]
# one top-level directory per part (`--parts N`: 8 by default, these eight names)
TOPS = list(BASE_TOPS)
# the directories the parts own in the tree being measured (TOPS for a synthetic
# tree; chosen from the tree itself with --source)
PARTS = list(TOPS)
WORDS = [
    "alpha", "beta", "gamma", "delta", "api", "model", "view", "util", "config", "parser",
    "render", "cache", "store", "queue", "worker", "client", "server", "auth", "user", "order",
    "item", "search", "index", "http", "io", "net", "sched", "event", "log", "metric", "trace",
    "plugin", "widget", "form", "table", "chart", "page", "route",
]
EXTS = [".py", ".py", ".py", ".js", ".ts", ".c", ".h", ".md", ".json", ".txt", ".yaml"]
EPOCH = 1767225600  # 2026-01-01T00:00:00Z: the same commit ids on every run
# per part: modifications, adds and deletes committed on the part's branch,
# then modifications and adds left uncommitted in its worktree (125 in all)
COMMITTED_MOD, COMMITTED_ADD, COMMITTED_DEL = 45, 10, 5
UNCOMMITTED_MOD, UNCOMMITTED_ADD = 50, 15
CHANGED_PER_PART = (COMMITTED_MOD + COMMITTED_ADD + COMMITTED_DEL
                    + UNCOMMITTED_MOD + UNCOMMITTED_ADD)


# --------------------------------------------------------------------------- helpers

# the largest resident set of a process `sh` ran since `timed` started (KiB)
PEAK = {"rss": 0}


def sh(args: Sequence[str], cwd: Path, stdin: bytes | None = None) -> bytes:
    """Run a process to its end (its output in files, so that it can be waited for
    with its resource usage: the peak RSS of it and what it waited for)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryFile() as given:
        given.write(stdin or b"")
        given.seek(0)
        proc = subprocess.Popen(list(args), cwd=cwd, stdin=given, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        PEAK["rss"] = max(PEAK["rss"], usage.ru_maxrss)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(args)} in {cwd}\n"
                         f"{stdout.decode(errors='replace')[-2000:]}"
                         f"{stderr.decode(errors='replace')[-2000:]}")
    return stdout


def git(cwd: Path, *args: str, stdin: bytes | None = None) -> bytes:
    return sh(["git", *args], cwd, stdin)


def hf_cmd(*args: str, profile: Path | None = None) -> list[str]:
    if profile is not None:
        return [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "hf_fanout", *args]
    return [sys.executable, "-m", "hf_fanout", *args]


@dataclass
class Usage:
    """One measured step: wall seconds, CPU seconds of every process it ran (user
    and system, children included), the largest peak RSS among them (MiB)."""

    wall: float
    cpu: float
    rss: float


LAST = Usage(0.0, 0.0, 0.0)  # what `timed` measured last


def cpu_used() -> float:
    """CPU seconds of this process and of every child it waited for: the plain-git
    join copies its files in this process, and that is the step's CPU too."""
    return sum(u.ru_utime + u.ru_stime for u in (
        resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))


def timed(fn: Callable[[], object]) -> float:
    PEAK["rss"] = 0
    cpu = cpu_used()
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    LAST.wall, LAST.cpu, LAST.rss = wall, cpu_used() - cpu, PEAK["rss"] / 1024
    return wall


def usage_of(fn: Callable[[], object]) -> Usage:
    timed(fn)
    return Usage(LAST.wall, LAST.cpu, LAST.rss)


def median_usage(reps: int, fn: Callable[[], object]) -> Usage:
    runs = [usage_of(fn) for _ in range(reps)]
    return Usage(statistics.median(u.wall for u in runs), statistics.median(u.cpu for u in runs),
                 max(u.rss for u in runs))


def both(hf_side: Callable[[], float], git_side: Callable[[], float],
         hf_first: bool) -> tuple[Usage, Usage]:
    """(hf's usage, git's usage), each side a function that calls `timed`,
    measured in the order asked for."""
    def one(side: Callable[[], float]) -> Usage:
        side()
        return Usage(LAST.wall, LAST.cpu, LAST.rss)

    if hf_first:
        u_hf = one(hf_side)
        return u_hf, one(git_side)
    u_git = one(git_side)
    return one(hf_side), u_git


def median_of(reps: int, fn: Callable[[], object]) -> float:
    return statistics.median(timed(fn) for _ in range(reps))


def io_pressure() -> float:
    """The share of the last 10 s some task waited for I/O (Linux PSI), 0 if unknown."""
    try:
        with open("/proc/pressure/io") as f:
            first = f.readline().split()
        return float(dict(kv.split("=") for kv in first[1:])["avg10"])
    except (OSError, KeyError, ValueError):
        return 0.0


def flush(quiet: float = 5.0, patience: float = 45.0, fresh: Sequence[Path] = ()) -> None:
    """Write back dirty pages, then wait (up to `patience` s) for the disk to go
    quiet, so one measurement does not pay for the previous one's writeback or
    for a delete still being worked off.

    With `fresh` (the steps that create or delete many files), the kernel's page,
    dentry and inode caches are also emptied where this process may (root on Linux:
    here a checkout's system time grew from about 0.6 to 2.2 s at 20k files as
    the caches filled with what earlier steps wrote), then the `.git` of each
    repository in `fresh` is read back, so both sides start warm on their objects
    and cold on nothing else."""
    os.sync()
    if fresh and drop_caches():
        for repo in fresh:
            for path in (repo / ".git").rglob("*"):
                with contextlib.suppress(OSError):
                    if path.is_file():
                        path.read_bytes()
    deadline = time.monotonic() + patience
    while io_pressure() > quiet and time.monotonic() < deadline:
        time.sleep(1)


def drop_caches() -> bool:
    """Empty the kernel's clean caches (page cache, dentries, inodes); False where
    this process may not."""
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        return False
    return True


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def hermetic_env(home: Path) -> None:
    """Own HOME and git identity for everything this script starts."""
    for key in list(os.environ):
        if key.startswith(("GIT_", "HF_")):
            del os.environ[key]
    home.mkdir(parents=True)
    (home / ".gitconfig").write_text(
        "[init]\n\tdefaultBranch = main\n[user]\n\tname = Bench\n\temail = bench@example.invalid\n")
    os.environ.update({
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "PYTHONPATH": str(CHECKOUT),
    })


# --------------------------------------------------------------------------- the repository

@dataclass
class Layout:
    files: list[str]
    dirs: list[str]
    by_top: dict[str, list[str]] = field(default_factory=dict)
    dirs_by_top: dict[str, list[str]] = field(default_factory=dict)


def top_names(parts: int) -> list[str]:
    """The top-level directories of `parts` parts: the eight names, then the
    same names numbered (app2, core2, ...) as far as needed."""
    return [BASE_TOPS[i % 8] + (str(i // 8 + 1) if i >= 8 else "") for i in range(parts)]


def make_layout(nfiles: int, seed: int) -> Layout:
    """Directories a few levels deep and uneven in size, like a source tree.

    Each top-level directory (one per part) holds between about half and one
    and a half times an even share of the files.
    """
    rng = random.Random(seed)
    root_files = ["README.md", "Makefile", "setup.cfg", "LICENSE"]
    shares = [rng.uniform(0.5, 1.5) for _ in TOPS]
    per_top = [int((nfiles - len(root_files)) * s / sum(shares)) for s in shares]
    per_top[0] += nfiles - len(root_files) - sum(per_top)
    layout = Layout(list(root_files), [])
    counter = 0
    for top, count in zip(TOPS, per_top, strict=True):
        dirs = [top]
        seen = set(dirs)
        while len(dirs) < max(2, count // 75):
            parent = rng.choice(dirs)
            if parent.count("/") >= 6:
                continue
            suffix = str(rng.randrange(100)) if rng.random() < 0.5 else ""
            name = f"{parent}/{rng.choice(WORDS)}{suffix}"
            if name not in seen:
                seen.add(name)
                dirs.append(name)
        weights = [rng.paretovariate(1.3) for _ in dirs]
        files = []
        for d in rng.choices(dirs, weights=weights, k=count):
            counter += 1
            files.append(f"{d}/{rng.choice(WORDS)}_{counter}{rng.choice(EXTS)}")
        layout.by_top[top] = sorted(files)
        layout.dirs_by_top[top] = sorted(dirs)
        layout.files += files
        layout.dirs += dirs
    layout.files.sort()
    layout.dirs.sort()
    return layout


def source_layout(source: Path, parts: int = 8, minimum: int = 130) -> Layout:
    """A real source tree's layout, and the `parts` directories the parts own: the
    top-level directories, the largest split into its subdirectories until
    `parts` of them hold at least `minimum` files each (the files directly in a
    split directory are owned by nobody, as in a real plan)."""
    files = sorted(p.relative_to(source).as_posix() for p in source.rglob("*")
                   if p.is_file() and not p.is_symlink() and ".git" not in p.parts)
    def under(group: str) -> list[str]:
        return [f for f in files if f.startswith(group + "/")]

    groups = {f.split("/")[0]: [] for f in files if "/" in f}
    for group in groups:
        groups[group] = under(group)
    while sum(len(v) >= minimum for v in groups.values()) < parts:
        largest = max(groups, key=lambda g: len(groups[g]))
        subdirs = {f[len(largest) + 1:].split("/")[0] for f in groups[largest]
                   if "/" in f[len(largest) + 1:]}
        if not subdirs:
            raise SystemExit(f"{source}: fewer than {parts} directories of {minimum} files")
        del groups[largest]
        for sub in subdirs:
            groups[f"{largest}/{sub}"] = under(f"{largest}/{sub}")
    chosen = sorted(sorted(groups, key=lambda g: -len(groups[g]))[:parts])
    dirs = sorted({f.rsplit("/", 1)[0] for f in files if "/" in f})
    layout = Layout(files, dirs)
    for group in chosen:
        layout.by_top[group] = groups[group]
        layout.dirs_by_top[group] = [d for d in dirs if d == group or d.startswith(group + "/")]
    return layout


def write_source_stream(source: Path, layout: Layout, target: Path) -> None:
    """A `git fast-import` stream of one commit of the real tree's files."""
    write_commit_stream(layout, target, b"source tree\n",
                        lambda path: (source / path).read_bytes(),
                        lambda path: os.access(source / path, os.X_OK))


def text_pool(seed: int) -> bytes:
    rng = random.Random(seed)
    lines = []
    for _ in range(40000):
        indent = "    " * rng.randrange(4)
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(2, 12)))
        lines.append(f"{indent}{words}\n")
    return "".join(lines).encode()


def file_bytes(path: str, rng: random.Random, pool: bytes) -> bytes:
    """Small text of varied size (median about 1 KB), unique per path."""
    size = int(min(24000, max(30, rng.lognormvariate(7.0, 1.0))))
    start = rng.randrange(len(pool) - size)
    return f"# {path}\n".encode() + pool[start:start + size] + b"\n"


def write_stream(layout: Layout, seed: int, target: Path) -> None:
    """A `git fast-import` stream of one commit holding every file."""
    rng = random.Random(seed + 1)
    pool = text_pool(seed + 2)
    write_commit_stream(layout, target, b"synthetic source tree\n",
                        lambda path: file_bytes(path, rng, pool), lambda _path: False)


def write_commit_stream(layout: Layout, target: Path, message: bytes,
                        content: Callable[[str], bytes],
                        executable: Callable[[str], bool]) -> None:
    with open(target, "wb") as stream:
        for mark, path in enumerate(layout.files, start=1):
            data = content(path)
            stream.write(b"blob\nmark :%d\ndata %d\n" % (mark, len(data)) + data + b"\n")
        stream.write(b"commit refs/heads/main\nmark :%d\n" % (len(layout.files) + 1))
        for who in (b"author", b"committer"):
            stream.write(who + b" Bench <bench@example.invalid> %d +0000\n" % EPOCH)
        stream.write(b"data %d\n" % len(message) + message)
        for mark, path in enumerate(layout.files, start=1):
            mode = b"100755" if executable(path) else b"100644"
            stream.write(b"M %s :%d %s\n" % (mode, mark, path.encode()))
        stream.write(b"\n")


def build_repo(stream: Path, where: Path) -> None:
    where.mkdir(parents=True)
    git(where, "init", "-q", "-b", "main")
    with open(stream, "rb") as data:
        proc = subprocess.run(["git", "fast-import", "--quiet"], cwd=where, stdin=data,
                              capture_output=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr.decode(errors="replace"))
    git(where, "-c", "checkout.workers=2", "reset", "--hard", "--quiet")
    git(where, "status", "--porcelain")  # settle the index's stat cache once


# --------------------------------------------------------------------------- the changes

@dataclass
class PartChanges:
    committed_mod: list[str]
    committed_add: list[str]
    committed_del: list[str]
    uncommitted_mod: list[str]
    uncommitted_add: list[str]


def plan_changes(layout: Layout, seed: int) -> list[PartChanges]:
    rng = random.Random(seed + 3)
    plans = []
    for i, top in enumerate(PARTS):
        pick = rng.sample(layout.by_top[top], COMMITTED_MOD + COMMITTED_DEL + UNCOMMITTED_MOD)
        dirs = layout.dirs_by_top[top]
        adds = [f"{rng.choice(dirs)}/new_{i}_{k}.py"
                for k in range(COMMITTED_ADD + UNCOMMITTED_ADD)]
        plans.append(PartChanges(
            committed_mod=pick[:COMMITTED_MOD],
            committed_del=pick[COMMITTED_MOD:COMMITTED_MOD + COMMITTED_DEL],
            uncommitted_mod=pick[COMMITTED_MOD + COMMITTED_DEL:],
            committed_add=adds[:COMMITTED_ADD],
            uncommitted_add=adds[COMMITTED_ADD:],
        ))
    return plans


def apply_changes(worktree: Path, part: int, changes: PartChanges) -> None:
    def modify(paths: list[str], tag: str) -> None:
        for rel in paths:
            with open(worktree / rel, "ab") as f:
                f.write(f"changed by part {part} ({tag})\n".encode())

    def add(paths: list[str], tag: str) -> None:
        for rel in paths:
            (worktree / rel).write_text(f"# new file of part {part} ({tag})\nvalue = {part}\n")

    modify(changes.committed_mod, "committed")
    add(changes.committed_add, "committed")
    for rel in changes.committed_del:
        (worktree / rel).unlink()
    git(worktree, "add", "-A")
    git(worktree, "commit", "-q", "--no-verify", "-m", f"part {part}: committed work")
    modify(changes.uncommitted_mod, "uncommitted")
    add(changes.uncommitted_add, "uncommitted")


# --------------------------------------------------------------------------- the two sides

def git_worktrees(main: Path, root: Path) -> list[Path]:
    """One `git worktree add -b` per part, one after another, as a person would type them."""
    paths = []
    for i in range(len(PARTS)):
        path = root / f"p{i}"
        git(main, "worktree", "add", "--quiet", "-b", f"work/p{i}", str(path), "HEAD")
        paths.append(path)
    return paths


def nul_paths(data: bytes, status: bool = False) -> set[str]:
    items = [item for item in data.split(b"\0") if item]
    return {(item[3:] if status else item).decode() for item in items}


def git_join(main: Path, worktrees: list[Path], base: str) -> None:
    """The plain-git way of bringing the worktrees' changes into the main tree."""
    changed: list[str] = []
    for wt in worktrees:
        paths = nul_paths(git(wt, "diff", "--name-only", "-z", "--no-renames", base, "HEAD"))
        paths |= nul_paths(git(wt, "status", "--porcelain", "-z", "--untracked-files=all",
                               "--no-renames"), status=True)
        for rel in sorted(paths):
            src, dst = wt / rel, main / rel
            if src.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
                shutil.copymode(src, dst)
            elif dst.exists():
                dst.unlink()
        changed.extend(sorted(paths))
    for i in range(0, len(changed), 1000):
        git(main, "add", "-A", "--", *changed[i:i + 1000])
    git(main, "commit", "-q", "--no-verify", "-m", "join the worktrees")


def git_gc(main: Path, worktrees: list[Path]) -> None:
    """The plain-git way of removing the joined worktrees and their branches."""
    for i, wt in enumerate(worktrees):
        git(main, "worktree", "remove", "--force", str(wt))
        git(main, "branch", "-D", "-q", f"work/p{i}")


def hf_split(main: Path, profile: Path | None, *extra: str) -> list[Path]:
    args = ["split", "b1", "--task", "bench", *extra]
    for i, top in enumerate(PARTS):
        args += ["--part", f"p{i}={top}/**"]
    sh(hf_cmd(*args, profile=profile), main)
    root = main.parent / f"{main.name}.hf" / "b1"
    return [root / f"p{i}" for i in range(len(PARTS))]


def checkouts_at_once(main: Path) -> str:
    """The pace the split chose, and the timed checkouts it chose by, from its line
    in the audit log."""
    for line in (main / ".git" / "hf" / "audit.log").read_text().splitlines():
        entry = json.loads(line)
        if entry.get("action") == "split":
            probe = entry.get("checkout_probe") or {}
            timed = (f" (one alone {probe['alone']:.2f} s, two together "
                     f"{probe['together']:.2f} s)") if probe else ""
            return f"{entry.get('checkouts_at_once', '?')} checkouts at a time{timed}"
    return "?"


# --------------------------------------------------------------------------- the run

@dataclass
class Row:
    operation: str
    size: str
    hf: float
    git: float | None
    target: str
    limit: float | None = None
    absolute: bool = False  # the target is on hf's seconds, not on the ratio
    load: str = field(default_factory=lambda: f"{os.getloadavg()[0]:.1f}")
    median_ratio: float | None = None  # a median row: the median of the rounds' ratios
    hf_cpu: float | None = None  # CPU seconds, children included
    git_cpu: float | None = None
    hf_rss: float | None = None  # the largest peak RSS of one process (MiB)
    git_rss: float | None = None

    @classmethod
    def of(cls, operation: str, size: str, u_hf: Usage, u_git: Usage, target: str,
           limit: float | None = None) -> Row:
        return cls(operation, size, u_hf.wall, u_git.wall, target, limit, hf_cpu=u_hf.cpu,
                   git_cpu=u_git.cpu, hf_rss=u_hf.rss, git_rss=u_git.rss)

    @property
    def cpu_ratio(self) -> float | None:
        if self.hf_cpu is None or not self.git_cpu:
            return None
        return self.hf_cpu / self.git_cpu

    @property
    def ratio(self) -> float | None:
        if self.median_ratio is not None:
            return self.median_ratio
        return None if self.git is None or self.git == 0 else self.hf / self.git

    @property
    def verdict(self) -> str:
        if self.limit is None:
            return "-"
        value = self.hf if self.absolute else self.ratio
        return "pass" if value is not None and value <= self.limit else "FAIL"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def bench_size(nfiles: int, work: Path, profile_dir: Path | None, reps: int,
               hf_first: bool, round_no: int = 0, source: Path | None = None) -> list[Row]:
    label = f"{nfiles // 1000}k" if nfiles >= 1000 else str(nfiles)
    if source is not None:
        label = source.name
    if round_no:
        label += f"#{round_no + 1}"
    seed = nfiles
    t0 = time.perf_counter()
    stream = work / f"stream-{label}.fi"
    if source is None:
        layout = make_layout(nfiles, seed)
        write_stream(layout, seed, stream)
        PARTS[:] = TOPS
    else:
        layout = source_layout(source)
        write_source_stream(source, layout, stream)
        PARTS[:] = sorted(layout.by_top)
        say(f"{label}: {len(layout.files)} files; the parts own " + ", ".join(
            f"{g}/** ({len(layout.by_top[g])})" for g in PARTS))
    hf_main = work / f"hf-{label}" / "repo"
    git_main = work / f"git-{label}" / "repo"
    sparse_main = work / f"sparse-{label}" / "repo"
    build_repo(stream, hf_main)
    build_repo(stream, git_main)
    build_repo(stream, sparse_main)
    stream.unlink()
    base = git(hf_main, "rev-parse", "HEAD").decode().strip()
    assert base == git(git_main, "rev-parse", "HEAD").decode().strip()
    say(f"{label}: built three repositories of {len(layout.files)} files in "
        f"{len(layout.dirs)} directories ({time.perf_counter() - t0:.1f} s)")

    def prof(name: str) -> Path | None:
        return profile_dir / f"{name}-{label}.prof" if profile_dir else None

    rows: list[Row] = []
    # split, each side on its own fresh repository; which side goes first
    # alternates with the size (`hf_first`), so neither always pays for the
    # writeback of what came before
    git_wts: list[Path] = []
    hf_wts: list[Path] = []

    def split_git() -> float:
        flush(fresh=[git_main])
        return timed(lambda: git_wts.extend(git_worktrees(git_main, git_main.parent / "wt")))

    def split_hf() -> float:
        flush(fresh=[hf_main])
        return timed(lambda: hf_wts.extend(hf_split(hf_main, prof("split"))))

    u_hf, u_git = both(split_hf, split_git, hf_first)
    say(f"{label}: split hf {u_hf.wall:.2f} s ({u_hf.cpu:.2f} CPU-s, "
        f"{checkouts_at_once(hf_main)}), git {u_git.wall:.2f} s "
        f"({u_git.cpu:.2f} CPU-s) ({load()})")
    n = len(PARTS)
    rows.append(Row.of(f"split {n} parts", label, u_hf, u_git, "ratio <= 0.5", 0.5))

    # a sparse split (each part owns an eighth of the tree) on a third fresh
    # repository, against the full split just measured
    flush(fresh=[sparse_main])
    u_sparse = usage_of(lambda: hf_split(sparse_main, None, "--sparse"))
    say(f"{label}: sparse split hf {u_sparse.wall:.2f} s ({u_sparse.cpu:.2f} CPU-s) ({load()})")
    rows.append(Row.of(f"split {n} sparse vs full", label, u_sparse, u_hf, "ratio <= 0.33", 0.33))
    rows.append(Row.of(f"split {n} sparse vs git", label, u_sparse, u_git, "-"))

    # the same work in both sets of worktrees (not timed)
    for i, changes in enumerate(plan_changes(layout, seed)):
        apply_changes(hf_wts[i], i, changes)
        apply_changes(git_wts[i], i, changes)
        sh(hf_cmd("done", f"b1/p{i}"), hf_main)
    flush()

    # status with 8 live parts, each with 125 changed files, against a
    # `git status --porcelain` in each of the 8 worktrees, interleaved
    def status_git() -> None:
        for wt in git_wts:
            git(wt, "status", "--porcelain")

    runs_hf, runs_git = [], []
    for _ in range(reps):
        runs_git.append(usage_of(status_git))
        runs_hf.append(usage_of(lambda: sh(hf_cmd("status", "b1"), hf_main)))
    u_hf, u_git = (Usage(statistics.median(u.wall for u in runs),
                         statistics.median(u.cpu for u in runs), max(u.rss for u in runs))
                   for runs in (runs_hf, runs_git))
    say(f"{label}: status hf {u_hf.wall:.3f} s, {n} x git status {u_git.wall:.3f} s ({load()})")
    rows.append(Row.of(f"status ({n} live parts)", label, u_hf, u_git, "ratio <= 0.7", 0.7))

    # join, in the same order as the split
    def join_git() -> float:
        flush()
        return timed(lambda: git_join(git_main, git_wts, base))

    def join_hf() -> float:
        flush()
        return timed(lambda: sh(hf_cmd("join", "b1", profile=prof("join")), hf_main))

    u_hf, u_git = both(join_hf, join_git, hf_first)
    say(f"{label}: join hf {u_hf.wall:.2f} s ({u_hf.cpu:.2f} CPU-s), git {u_git.wall:.2f} s "
        f"({u_git.cpu:.2f} CPU-s) ({load()})")
    rows.append(Row.of(f"join {n}x{CHANGED_PER_PART} files", label, u_hf, u_git,
                       "ratio <= 0.35", 0.35))

    hf_tree = git(hf_main, "rev-parse", "HEAD^{tree}").decode().strip()
    git_tree = git(git_main, "rev-parse", "HEAD^{tree}").decode().strip()
    if hf_tree != git_tree:
        raise SystemExit(f"{label}: the two joins disagree: hf {hf_tree}, git {git_tree}")
    leftover = git(hf_main, "status", "--porcelain").decode()
    if leftover:
        raise SystemExit(f"{label}: the main tree is not clean after hf join:\n{leftover[:2000]}")
    changed = len(nul_paths(git(hf_main, "diff", "--name-only", "-z", base, "HEAD")))
    say(f"{label}: both joins made tree {hf_tree[:12]} ({changed} paths changed); "
        "main tree clean")

    # gc of the joined batch against removing the worktrees and branches by hand:
    # after every other step of every size (`LATER`), since file creation is
    # several times slower right after a large delete
    def gc_git() -> float:
        flush(fresh=[git_main])
        return timed(lambda: git_gc(git_main, git_wts))

    def gc_hf() -> float:
        flush(fresh=[hf_main])
        return timed(lambda: sh(hf_cmd("gc", "b1"), hf_main))

    def gc_row() -> Row:
        u_hf, u_git = both(gc_hf, gc_git, hf_first)
        say(f"{label}: gc hf {u_hf.wall:.2f} s, git {u_git.wall:.2f} s ({load()})")
        return Row.of(f"gc {n} joined parts", label, u_hf, u_git, "ratio <= 1.0", 1.0)

    LATER.setdefault(label.split("#")[0], []).append(gc_row)
    return rows


# per size, the gc steps, measured once everything else is (see bench_size)
LATER: dict[str, list[Callable[[], Row]]] = {}


def bench_help(reps: int, cwd: Path) -> list[Row]:
    sh(hf_cmd("--help"), cwd)  # warm the file cache and the bytecode
    t_help = median_of(reps, lambda: sh(hf_cmd("--help"), cwd))
    t_pass = median_of(reps, lambda: sh([sys.executable, "-c", "pass"], cwd))
    return [
        Row("hf --help", "-", t_help, t_pass, "<= 0.15 s", 0.15, absolute=True),
    ]


def medians(measured: list[Row]) -> list[Row]:
    """Every round's rows without a verdict, then per operation the median row
    (median seconds on each side; the verdict on the median ratio)."""
    out: list[Row] = []
    for r in measured:
        out.append(Row(r.operation, r.size, r.hf, r.git, r.target, None, r.absolute, r.load,
                       None, r.hf_cpu, r.git_cpu, r.hf_rss, r.git_rss))
    by_op: dict[str, list[Row]] = {}
    for r in measured:
        by_op.setdefault(r.operation, []).append(r)
    for op, group in by_op.items():
        size = group[0].size.split("#")[0] + f" median of {len(group)}"
        hf_s = statistics.median(r.hf for r in group)
        git_s = statistics.median(r.git for r in group if r.git is not None) \
            if all(r.git is not None for r in group) else None
        row = Row(op, size, hf_s, git_s, group[0].target, group[0].limit, group[0].absolute,
                  "-", None, *(statistics.median(v) if all(x is not None for x in v) else None
                               for v in ([r.hf_cpu for r in group], [r.git_cpu for r in group],
                                         [r.hf_rss for r in group],
                                         [r.git_rss for r in group])))
        ratios = [r.ratio for r in group if r.ratio is not None]
        if ratios:
            row.median_ratio = statistics.median(ratios)
        out.append(row)
    return out


def print_table(rows: list[Row]) -> None:
    def num(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    headers = ["operation", "size", "hf s", "git s", "ratio", "target", "result", "hf cpu",
               "git cpu", "cpu ratio", "hf MiB", "git MiB", "load"]
    cells = [[r.operation, r.size, f"{r.hf:.3f}", num(r.git, ".3f"), num(r.ratio, ".2f"),
              r.target, r.verdict, num(r.hf_cpu, ".2f"), num(r.git_cpu, ".2f"),
              num(r.cpu_ratio, ".2f"), num(r.hf_rss, ".0f"), num(r.git_rss, ".0f"), r.load]
             for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))
    print("(hf --help: the git column is `python -c pass`, for reference; sparse vs full: "
          "the git column is hf's full split of the same run; cpu: CPU seconds of every "
          "process, user and system; MiB: the largest peak RSS of one process; load: "
          "1-minute load average when the row was measured)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20000,90000",
                        help="comma-separated file counts (default 20000,90000)")
    parser.add_argument("--parts", type=int, default=8,
                        help="how many parts (one top-level directory each; default 8)")
    parser.add_argument("--quick", action="store_true",
                        help="small repositories (3000,6000 files), fewer repetitions")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to build (default: a new temp dir; must not exist)")
    parser.add_argument("--keep", action="store_true", help="keep the repositories")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat each size N times on fresh repositories; the verdict "
                             "is on the median ratio (the figures move a lot between runs)")
    parser.add_argument("--source", type=Path, default=None,
                        help="also measure on this real source tree (a directory: e.g. an "
                             "unpacked sdist), committed into fresh repositories")
    parser.add_argument("--profile", type=Path, default=None,
                        help="run hf split and join under cProfile, .prof files to this dir "
                             "(their timings then include the profiler)")
    args = parser.parse_args(argv)
    if args.parts < 1:
        parser.error("--parts takes a number of parts, 1 or more")
    TOPS[:] = top_names(args.parts)
    sizes = [3000, 6000] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    reps = 3 if args.quick else 5
    if args.workdir is not None:
        args.workdir.mkdir(parents=True)  # fresh, never a reused directory
        work = args.workdir.resolve()
    else:
        work = Path(tempfile.mkdtemp(prefix="hf-bench-")).resolve()
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        args.profile = args.profile.resolve()
    hermetic_env(work / "home")
    # bytecode, as an installed hf has it (pip compiles at install time; with
    # PYTHONDONTWRITEBYTECODE set, a checkout would be compiled on every run)
    compileall.compile_dir(CHECKOUT / "hf_fanout", quiet=1)
    say(f"hf from {CHECKOUT}, python {sys.version.split()[0]}, "
        f"{sh(['git', '--version'], work).decode().strip()}; building in {work}")
    say(f"start: {load()}")
    rows: list[Row] = []
    try:
        rows += bench_help(max(reps, 7), work)
        step = 0
        for n in sizes:
            measured: list[Row] = []
            for r in range(max(1, args.rounds)):
                measured += bench_size(n, work, args.profile, reps, hf_first=step % 2 == 1,
                                       round_no=r)
                step += 1
            rows += measured if args.rounds <= 1 else medians(measured)
        if args.source is not None:
            measured = []
            for r in range(max(1, args.rounds)):
                measured += bench_size(0, work, args.profile, reps, hf_first=step % 2 == 1,
                                       round_no=r, source=args.source.resolve())
                step += 1
            rows += measured if args.rounds <= 1 else medians(measured)
        for _size, steps in LATER.items():
            measured = [step_row() for step_row in steps]
            rows += measured if len(measured) <= 1 else medians(measured)
        say(f"end: {load()}")
        print()
        print_table(rows)
    finally:
        if args.keep:
            say(f"kept {work}")
        else:
            say(f"removing {work}")
            shutil.rmtree(work, ignore_errors=True)
    if args.profile is not None:
        print(f"\nprofiles in {args.profile}: python3 -m pstats FILE, then `sort cumtime`, "
              "`stats 25`")
    return 0 if all(r.verdict != "FAIL" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
