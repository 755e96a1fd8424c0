"""The one adapter to the process table (psutil, and /proc/<pid>/stat on Linux): who a
worker is, whether it lives, which processes carry a part's marker, and signalling
them.

A process is identified by pid + start time (+ host; on Linux the start in clock
ticks since boot and the boot id), so a pid the kernel handed to another program
is never mistaken for the worker. Zombies are dead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psutil

# Without `ticks` (a record from before they were kept, a system without /proc) start
# times are compared as epoch seconds, rounded to clock ticks: two readings of one
# process agree far better than this, unless the clock was adjusted in between
# (psutil adds the boot time, whole seconds on Linux that move with the clock).
_START_TOLERANCE = 0.05


def host() -> str:
    return os.uname().nodename  # (what socket.gethostname answers, without its import)


@dataclass(frozen=True)
class Identity:
    pid: int
    started: float  # epoch seconds: shown to people, compared only without `ticks`
    host: str
    # Linux: the start in clock ticks since boot (/proc/<pid>/stat), and the kernel's
    # boot id they count from: exact, and never moved by the clock
    ticks: int | None = None
    boot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Identity | None:
        try:
            ticks, boot = data.get("ticks"), data.get("boot")
            return cls(int(data["pid"]), float(data["started"]), str(data["host"]),
                       ticks if isinstance(ticks, int) else None,
                       boot if isinstance(boot, str) else None)
        except (KeyError, TypeError, ValueError):
            return None


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start in clock ticks since boot) from /proc/<pid>/stat; None when there
    is no such process. OSError when /proc cannot say (not mounted, not allowed to
    look, not Linux's)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        if not Path("/proc/self/stat").exists():
            raise OSError("no /proc here") from None
        return None
    fields = stat.rsplit(b")", 1)[-1].split()  # (the name in parentheses may hold anything)
    try:
        return fields[0].decode(), int(fields[19])
    except (IndexError, ValueError):
        raise OSError(f"/proc/{pid}/stat is not as Linux writes it") from None


def start_ticks(pid: int) -> int | None:
    """The process's start in clock ticks since boot (Linux), None when it cannot be read."""
    try:
        found = _proc_stat(pid)
    except OSError:
        return None
    return found[1] if found is not None else None


def boot_id() -> str | None:
    """The kernel's id of this boot (Linux), None elsewhere."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def identity_of(pid: int) -> Identity | None:
    import psutil

    ticks = start_ticks(pid)
    try:
        started = psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    if ticks is not None and start_ticks(pid) != ticks:
        return None  # (the pid went to another process in between)
    return Identity(pid, started, host(), ticks, boot_id() if ticks is not None else None)


def _alive_by_ticks(pid: int, ticks: int, boot: str) -> bool | None:
    """Whether the process that started at `ticks` of boot `boot` lives, read from
    /proc; None when /proc cannot say (not there, not allowed to look)."""
    now_boot = boot_id()
    if now_boot is not None and now_boot != boot:
        return False  # started before the machine restarted
    try:
        found = _proc_stat(pid)
    except OSError:
        return None
    if found is None or found[1] != ticks:
        return False  # no such pid, or it now belongs to another process
    return found[0] not in ("Z", "X", "x")  # a zombie is dead


def is_alive(ident: Identity) -> bool | None:
    """True/False; None when it cannot be known from here (another host)."""
    if ident.host != host():
        return None
    if ident.ticks is not None and ident.boot is not None:
        by_ticks = _alive_by_ticks(ident.pid, ident.ticks, ident.boot)
        if by_ticks is not None:
            return by_ticks
    import psutil

    try:
        proc = psutil.Process(ident.pid)
        if abs(proc.create_time() - ident.started) > _START_TOLERANCE:
            return False  # the pid now belongs to another process
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # it exists; we may not look at it


def _own_lineage() -> set[int]:
    """This process and its ancestors: never signalled (hf stop run from inside a part)."""
    import psutil

    mine = {os.getpid()}
    with contextlib.suppress(psutil.Error):
        mine.update(p.pid for p in psutil.Process().parents())
    return mine


def marked(repo: str, batch: str, part: str | None = None) -> list[int]:
    """Live processes whose environment carries the marker: HF_REPO=repo (the git
    common dir: two repositories may both have a batch b1), HF_BATCH=batch, and
    HF_PART=part when given."""
    import psutil

    skip = _own_lineage()
    found: list[int] = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid in skip:
            continue
        try:
            env = proc.environ()
            if env.get("HF_REPO") != repo or env.get("HF_BATCH") != batch:
                continue
            if part is not None and env.get("HF_PART") != part:
                continue
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
        found.append(proc.pid)
    return found


def mount_namespace(pid: int) -> str | None:
    """The mount namespace `pid` is in (`mnt:[4026531841]`), None when it is gone or
    not ours to look at (or not on Linux)."""
    from pathlib import Path

    try:
        return str(Path(f"/proc/{pid}/ns/mnt").readlink())
    except OSError:
        return None


def hold_child_namespace(pid: int) -> tuple[str, int] | None:
    """The mount namespace of a child of `pid` that is in another one than this
    process (bubblewrap's child, the sandbox's first process), and an open handle
    on it, which keeps the namespace and so its number from going to another one
    once the sandbox's last process is gone (the kernel gives a freed number to
    the next namespace made). The caller closes the handle. None when there is no
    such child (yet), or this process's own namespace cannot be read (then no
    other can be told from it)."""
    import psutil

    own = mount_namespace(os.getpid())
    if own is None:
        return None
    try:
        children = psutil.Process(pid).children()
    except psutil.Error:
        return None
    for child in children:
        try:
            handle = os.open(f"/proc/{child.pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        found = f"mnt:[{os.fstat(handle).st_ino}]"  # the namespace held, whoever the pid is now
        if found != own:
            return found, handle
        os.close(handle)
    return None


def in_mount_namespace(namespace: str) -> list[int]:
    """Live processes in mount namespace `namespace`: a sandbox's are every process
    started inside it, whatever became of their parents (one cannot leave it)."""
    import psutil

    found: list[int] = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == os.getpid() or mount_namespace(proc.pid) != namespace:
            continue
        with contextlib.suppress(psutil.Error):
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
    return found


def end_pids(listing: Callable[[], list[int]], grace: float) -> dict[str, list[int]]:
    """SIGTERM what `listing` gives, wait up to `grace` for it to be empty, SIGKILL
    what is left, and wait briefly for the kernel to finish those."""
    termed = listing()
    signal_pids(termed, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while termed and time.monotonic() < deadline and listing():
        time.sleep(0.05)
    killed = listing() if termed else []
    signal_pids(killed, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while killed and time.monotonic() < deadline and listing():
        time.sleep(0.05)
    return {"terminated": termed, "killed": killed}


def cwds() -> list[tuple[int, str, str]]:
    """(pid, working directory, name) of every process we may look at."""
    import psutil

    result: list[tuple[int, str, str]] = []
    for proc in psutil.process_iter(["pid", "cwd", "name"]):
        info = proc.info
        if info.get("cwd"):
            result.append((int(info["pid"]), str(info["cwd"]), str(info.get("name") or "")))
    return result


def others_cwds() -> list[tuple[int, str, str]]:
    """`cwds` of every process but this one and those that started it."""
    mine = _own_lineage()
    return [found for found in cwds() if found[0] not in mine]


def wait_for_work_in(roots: Iterable[str], timeout: float, *, name_prefix: str = "") -> None:
    """Wait, within `timeout`, until no process works in one of `roots` (its working
    directory there; with `name_prefix`, only those whose name starts so): what a
    killed hf command started there (a checkout, a setup command) goes on after it
    died, and writes the files about to be removed. This process and those that
    started it are not waited for."""
    folders = [str(root).rstrip("/") for root in roots]

    def working() -> bool:
        return any(name.startswith(name_prefix) and any(
            cwd == root or cwd.startswith(root + "/") for root in folders)
            for _pid, cwd, name in others_cwds())

    deadline = time.monotonic() + timeout
    while working() and time.monotonic() < deadline:
        time.sleep(0.05)


def cpu_seconds(pid: int) -> float | None:
    """CPU time of `pid` and its descendants (None when it is gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        total = sum(root.cpu_times()[:2])
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += sum(child.cpu_times()[:2])
    except psutil.Error:
        return None
    return total


def signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def signal_pids(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is in process group `pgid`."""
    import psutil

    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return False


def end_processes(groups: list[int], repo: str, batch: str, part: str,
                  grace: float) -> dict[str, Any]:
    """SIGTERM the groups and every marked process, wait up to `grace`, SIGKILL what is left.

    Returns what was signalled, for the report.
    """
    skip_groups = {os.getpgid(0)}
    groups = [g for g in groups if g > 1 and g not in skip_groups]
    termed = marked(repo, batch, part)
    for g in groups:
        signal_group(g, signal.SIGTERM)
    signal_pids(termed, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not any(group_alive(g) for g in groups) and not marked(repo, batch, part):
            break
        time.sleep(0.05)
    killed = marked(repo, batch, part)
    for g in groups:
        if group_alive(g):
            signal_group(g, signal.SIGKILL)
    signal_pids(killed, signal.SIGKILL)
    # A SIGKILLed process is gone once the kernel has delivered it; wait briefly
    # so the caller (and the test) see the table as it will be.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (
            marked(repo, batch, part) or any(group_alive(g) for g in groups)):
        time.sleep(0.05)
    return {"groups": groups, "terminated": termed, "killed": killed}


@dataclass(frozen=True)
class Inside:
    """The part a process works for (`BATCH/PART`), and what says so, in words a
    person refused there can check (`HF_PART in process 812 (bash)'s environment`)."""

    part: str
    why: str


def inside_part() -> Inside | None:
    """The part this process works for (an agent or anything it started): the
    marker in its own environment or in an ancestor's (an agent can unset its
    own variables, not its parents'), the sandbox's mark, or a working directory
    inside a part's worktree, its own or that of an ancestor in its session (an
    agent started there by hand carries no marker, its folder says whose it is,
    and its shell's `cd /` does not take what it runs out of it; the session's
    leader is the terminal's shell, above it a terminal multiplexer's server
    says nothing of the pane). Commands that decide for the person (trusting
    configuration, accepting a changed fingerprint) refuse there."""
    import psutil

    if os.environ.get("HF_SANDBOX") == "1":
        return Inside(os.environ.get("HF_BATCH", "?") + "/" + os.environ.get("HF_PART", "?"),
                      "this process runs in the part's sandbox (HF_SANDBOX=1)")
    if os.environ.get("HF_PART"):
        return Inside(f"{os.environ.get('HF_BATCH', '?')}/{os.environ['HF_PART']}",
                      "HF_PART is set in this process's environment")
    with contextlib.suppress(psutil.Error):
        for proc in psutil.Process().parents():
            with contextlib.suppress(psutil.Error, OSError):
                env = proc.environ()
                if env.get("HF_PART"):
                    return Inside(f"{env.get('HF_BATCH', '?')}/{env['HF_PART']}",
                                  f"HF_PART is set in the environment of {_named(proc)}")
    try:
        here = _part_worked_here(Path.cwd())
    except OSError:  # (the current directory was deleted)
        here = None
    if here is not None:
        return Inside(here, f"the current directory is in its worktree ({Path.cwd()})")
    return _part_worked_above()


def _named(proc: psutil.Process) -> str:
    """`process 812 (bash)`: how a refusal names an ancestor."""
    import psutil

    try:
        return f"process {proc.pid} ({proc.name()})"
    except psutil.Error:
        return f"process {proc.pid}"


def _part_worked_above() -> Inside | None:
    """`_part_worked_here` of the working directory of each ancestor of this
    process up to its session's leader (not past it)."""
    import psutil

    with contextlib.suppress(psutil.Error, OSError):
        session = os.getsid(0)
        if session == os.getpid():
            return None
        for proc in psutil.Process().parents():
            if proc.pid <= 1:
                return None
            with contextlib.suppress(psutil.Error, OSError):
                folder = Path(proc.cwd())
                found = _part_worked_here(folder)
                if found is not None:
                    return Inside(found, f"{_named(proc)} works in its worktree ({folder})")
            if proc.pid == session:
                return None
    return None


def _part_worked_here(directory: Path) -> str | None:
    """`BATCH/PART` of the part whose worktree `directory` is in: its git dir holds
    hf's part marker (`hf-part.json`, written at split). A marker that cannot be
    read still marks the folder as a part's."""
    from hf_fanout.atomic import read_json
    from hf_fanout.errors import StateCorrupt
    from hf_fanout.gitlink import PART_MARKER, enclosing_worktree

    try:
        found = enclosing_worktree(directory)
    except OSError:
        return None
    if found is None or not (found[1] / PART_MARKER).exists():
        return None
    try:
        data = read_json(found[1] / PART_MARKER, "part marker")
    except StateCorrupt:
        data = None
    if isinstance(data, dict) and isinstance(data.get("batch"), str) \
            and isinstance(data.get("part"), str):
        return f"{data['batch']}/{data['part']}"
    return f"?/{found[0].name}"
