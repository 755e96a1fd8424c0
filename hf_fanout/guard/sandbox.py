"""The sandbox a part's worker runs in (Linux: bubblewrap).

Inside it the whole file system is visible and read-only, except what the
part may write: its own worktree, its own git dir (minus hf's marker and its
`config.worktree`), its own branch's ref file and reflog, a private object
directory, its inbox, the user's home (minus git's and hf's own config) and
the temporary directories. The main tree, the main index, every other ref,
`packed-refs`, the common `config`, `hooks/`, `info/`, the shared objects,
other parts and hf's records stay read-only: a write there fails with
"Read-only file system", whatever program makes it. See docs/guard.md.

New objects: inside the sandbox the private directory is mounted where the
shared object store is (`<common>/objects`), and the shared store is mounted
read-only beside it (`<common>/hf/shared-objects`) as its alternate; the real
repository lists every private directory in its own `objects/info/alternates`,
so what a part commits is visible outside at once. `hf gc` moves a part's
objects into the shared store before its directory goes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hf_fanout import atomic, locks
from hf_fanout.atomic import read_regular
from hf_fanout.core import inbox
from hf_fanout.core.records import Part
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import HfError
from hf_fanout.gitlink import enclosing_worktree
from hf_fanout.guard import fast, locate

KIND = "bubblewrap"


@dataclass(frozen=True)
class Availability:
    usable: bool
    kind: str  # "bubblewrap", or "" when there is none
    reason: str = ""  # why not, when not usable
    path: str = ""


@dataclass
class Sandbox:
    """The argv prefix and environment that start a command in a part's sandbox."""

    prefix: list[str]
    env: dict[str, str] = field(default_factory=dict)
    kind: str = KIND
    ignored_signals: tuple[int, ...] = ()  # ignored by the sandbox's own process


def availability() -> Availability:
    """Whether a sandbox can start here: bubblewrap installed and allowed to run."""
    if not sys.platform.startswith("linux"):
        return Availability(False, "", f"no sandbox for {sys.platform} yet")
    path = shutil.which("bwrap")
    if path is None:
        return Availability(False, "", "bubblewrap (bwrap) is not installed; install it "
                            "(apt install bubblewrap, dnf install bubblewrap)")
    try:
        proc = subprocess.run([path, "--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev",
                               "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Availability(False, "", f"bwrap does not start: {exc}")
    if proc.returncode != 0:
        why = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        return Availability(False, "", "bwrap cannot make a sandbox here "
                            f"({why[0] if why else f'exit {proc.returncode}'}); user "
                            "namespaces may be switched off", path)
    return Availability(True, KIND, "", path)


def shared_objects_view(common: Path) -> Path:
    """Where the shared object store is seen (read-only) inside a sandbox; an empty
    directory outside."""
    return common / "hf" / "shared-objects"


def private_objects(common: Path, part: Part) -> Path:
    return locate.private_objects(locate.Marker(part.batch, part.name, part.worktree, "",
                                                str(common), ""))


def inbox_dir(common: Path, part: Part) -> Path:
    return inbox.inbox_dir(common, part.batch, part.name)


def prepare(ws: Workspace, part: Part, bwrap: str) -> Sandbox:
    """Everything outside the sandbox the part's sandbox needs, then its argv prefix."""
    common = Path(os.path.realpath(ws.repo.common_dir))
    worktree = Path(os.path.realpath(part.worktree))
    found = enclosing_worktree(worktree)
    if found is None:
        raise HfError(f"{worktree} is not a worktree of this repository any more",
                      f"drop the part (hf drop {part.batch}/{part.name}) and split it again")
    git_dir = Path(os.path.realpath(found[1]))
    private = private_objects(common, part)
    _make_private_objects(common, private)
    requests = inbox_dir(common, part)
    requests.mkdir(parents=True, exist_ok=True)
    # what the agent says it is doing (`hf agent-event`): its own directory only
    agent_state = common / "hf" / "batches" / part.batch / "agent" / part.name
    agent_state.mkdir(parents=True, exist_ok=True)
    ref_file = common / "refs" / "heads" / part.branch
    siblings = _loose_siblings(ws, part, ref_file)
    reflog = common / "logs" / "refs" / "heads" / part.branch
    reflog.parent.mkdir(parents=True, exist_ok=True)
    reflog.touch(exist_ok=True)
    alternates_file = common / "hf" / "sandbox" / part.batch / f"{part.name}.alternates"
    atomic.atomic_write(alternates_file, f"{shared_objects_view(common)}\n".encode())
    _fast_file_in_place(ws, part, git_dir)

    args: list[str] = ["--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev"]
    for tmp in _temp_dirs():
        args += ["--bind", tmp, tmp]
    # the person's servers listening there (tmux, screen, the user's systemd and
    # bus): asked, they run any command outside the sandbox
    for folder in _server_folders():
        args += ["--tmpfs", folder]
    for socket in _server_sockets():
        args += ["--ro-bind", "/dev/null", socket]
    home = Path.home()
    if home.is_dir() and home != Path("/"):
        args += ["--bind", str(home), str(home)]
    # what must stay read-only even where the above made it writable
    for path in _read_only(ws, common, worktree, part):
        args += ["--ro-bind-try", str(path), str(path)]
    # the part's own writable places
    args += ["--bind", str(worktree), str(worktree), "--bind", str(git_dir), str(git_dir)]
    # what hf and git read outside the sandbox to know the part: the guard's wrapper
    # sources the fast file there (code), and finds the git dir by the worktree's .git
    for name in (locate.MARKER, "config.worktree", "commondir", "gitdir", fast.FAST_FILE):
        args += ["--ro-bind-try", str(git_dir / name), str(git_dir / name)]
    args += ["--ro-bind-try", str(worktree / ".git"), str(worktree / ".git")]
    args += ["--bind", str(ref_file.parent), str(ref_file.parent)]
    for sibling in siblings:
        args += ["--ro-bind-try", str(sibling), str(sibling)]  # (gone since: deleted)
    args += ["--bind", str(reflog), str(reflog), "--bind", str(requests), str(requests),
             "--bind", str(agent_state), str(agent_state)]
    # objects: the shared store read-only beside, the private one in its place
    args += ["--ro-bind", str(common / "objects"), str(shared_objects_view(common)),
             "--bind", str(private), str(common / "objects"),
             "--ro-bind", str(alternates_file), str(common / "objects" / "info" / "alternates"),
             "--setenv", inbox.SANDBOX_VAR, "1", "--",
             sys.executable, "-c", _DEFAULT_SIGNALS_THEN_EXEC]
    return Sandbox([bwrap, *args], _environment(), ignored_signals=IGNORED_BY_SANDBOX)


# A fast file that sends the wrapper to the slow path: sourced, it fails.
_NO_FAST_PATH = b"# hf: no fast path for this part now (the slow path decides)\nfalse\n"


def _fast_file_in_place(ws: Workspace, part: Part, git_dir: Path) -> None:
    """The part's fast file (guard/fast.py), written before the sandbox starts so that
    it is mounted read-only there: the guard's wrapper sources it outside the
    sandbox too (a person's `git` in the part's tab), and one an agent wrote would
    run its code there. Where there is no fast path now, a file that declines it."""
    fast.refresh(str(git_dir), str(ws.main.path), part.to_dict())
    path = git_dir / fast.FAST_FILE
    if not path.exists():
        atomic.atomic_write(path, _NO_FAST_PATH)


# bubblewrap stays the agent's parent and dies of Ctrl-C or SIGTERM, which would
# cut the agent off mid-handler: bubblewrap is started with them ignored (see
# IGNORED_BY_SANDBOX), and this, the first thing run inside, gives the agent the
# default dispositions back (and SIGPIPE, which Python itself ignores) before it
# becomes the agent.
IGNORED_BY_SANDBOX = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
_DEFAULT_SIGNALS_THEN_EXEC = (
    "import os, signal, sys\n"
    "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,"
    " signal.SIGPIPE, signal.SIGXFSZ):\n"
    "    signal.signal(s, signal.SIG_DFL)\n"
    "try:\n"
    "    os.execvp(sys.argv[1], sys.argv[1:])\n"
    "except OSError as exc:\n"
    "    sys.stderr.write(f'hf run: cannot start {sys.argv[1]!r}: {exc.strerror}\\n')\n"
    "    sys.exit(127)\n")


_SYSTEM_TEMP = ("/tmp", "/var/tmp", "/dev/shm")  # noqa: S108  (writable in the sandbox)


def _temp_dirs() -> list[str]:
    found = []
    for candidate in (os.environ.get("TMPDIR"), *_SYSTEM_TEMP, f"/run/user/{os.getuid()}"):
        if candidate and os.path.isdir(candidate):
            real = os.path.realpath(candidate)
            if real not in found and real != "/":
                found.append(real)
    return found


def _server_folders() -> list[str]:
    """Folders of the person's servers' sockets in the writable temporary dirs: tmux's
    (`$TMUX_TMPDIR` or /tmp, and the one `$TMUX` names), screen's, and the user's
    systemd."""
    uid = os.getuid()
    candidates = [str(Path(tmp) / f"tmux-{uid}")
                  for tmp in (os.environ.get("TMUX_TMPDIR"), _SYSTEM_TEMP[0]) if tmp]
    candidates.append(f"/run/user/{uid}/systemd")
    if os.environ.get("TMUX"):
        candidates.append(str(Path(os.environ["TMUX"].split(",")[0]).parent))
    if os.environ.get("USER"):
        candidates.append(f"/run/screen/S-{os.environ['USER']}")
    found: list[str] = []
    for candidate in candidates:
        real = os.path.realpath(candidate) if candidate else ""
        if real and real != "/" and os.path.isdir(real) and real not in found:
            found.append(real)
    return found


def _server_sockets() -> list[str]:
    """The user's session bus socket (`systemd-run --user` and others reach the user's
    systemd through it)."""
    bus = f"/run/user/{os.getuid()}/bus"
    return [bus] if Path(bus).exists() else []


def _read_only(ws: Workspace, common: Path, worktree: Path, part: Part) -> list[Path]:
    """Paths re-mounted read-only over the writable home and temporary dirs."""
    from hf_fanout import config

    paths = [Path(os.path.realpath(ws.main.path)), common]
    paths += [p for p in _worktrees(common) if p != worktree]
    paths.append(worktree.parent)  # the batch's directory: the other parts' worktrees
    home = Path.home()
    # git's and hf's own configuration: made to exist (an empty ~/.gitconfig, empty
    # directories) so an agent cannot create them in the writable home either
    planted = [home / ".config" / "git", config.user_config_dir(), config.user_state_dir()]
    if os.environ.get("XDG_CONFIG_HOME"):
        planted.append(Path(os.environ["XDG_CONFIG_HOME"]) / "git")
    # what python runs at every start of the person's own (hf's included): the user
    # site of every version (a `.pth`, `usercustomize.py`) and its scripts
    planted += [_user_base() / "lib", _user_base() / "bin"]
    for directory in planted:
        with contextlib.suppress(OSError):
            directory.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        (home / ".gitconfig").touch(exist_ok=True)
    paths += [home / ".gitconfig", *planted, *_pulled_in_by_git_config()]
    # programs the person's shell finds first (~/.cargo/bin, ~/.pyenv/shims): a `git`
    # or `python3` put there would run as the person
    real_home, real_worktree = Path(os.path.realpath(home)), Path(os.path.realpath(worktree))
    paths += [d for d in _path_dirs() if d.is_relative_to(real_home) and d != real_home
              and not d.is_relative_to(real_worktree)]
    # hf itself: the guard's wrapper and hooks run from here
    package = Path(__file__).resolve().parent.parent
    paths += [package, Path(sys.prefix)]
    return paths


def _pulled_in_by_git_config() -> list[Path]:
    """What the person's global git config pulls in: the files it includes (any
    `include.path`, `includeIf.*.path`, followed) and its `core.hooksPath`, whose
    hooks run in the person's git (the main tree's hook hands over to them). Made
    to exist (an empty file, an empty folder), so they cannot be created inside."""
    from hf_fanout.worktrees.process import run

    proc = run(["config", "--global", "--includes", "--show-origin", "-z", "--get-regexp",
                r"^(core\.hookspath|include\.path|includeif\..*\.path)$"], Path.home(),
               check=False)
    items = proc.stdout.split(b"\0")
    found: list[Path] = []
    for origin, entry in zip(items[0::2], items[1::2], strict=False):
        key, _, value = os.fsdecode(entry).partition("\n")
        named = os.path.expanduser(value)
        source = os.fsdecode(origin).removeprefix("file:")
        if not named or (key == "core.hookspath" and not os.path.isabs(named)):
            continue  # (a relative hooks path is the checkout's own)
        path = Path(source).parent / named
        with contextlib.suppress(OSError):
            if key == "core.hookspath":
                path.mkdir(parents=True, exist_ok=True)
            elif not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
        found.append(Path(os.path.realpath(path)))
    return found


def _user_base() -> Path:
    """Python's user base (`~/.local`, or PYTHONUSERBASE), as `site` computes it."""
    import site

    return Path(site.getuserbase())


def _path_dirs() -> list[Path]:
    """The directories of PATH that exist, each once, by their real path."""
    found: list[Path] = []
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry and os.path.isabs(entry) and os.path.isdir(entry):
            real = Path(os.path.realpath(entry))
            if real not in found:
                found.append(real)
    return found


def _worktrees(common: Path) -> list[Path]:
    """Every linked worktree of the repository, from its admin dirs."""
    found: list[Path] = []
    root = common / "worktrees"
    if not root.is_dir():
        return found
    for admin in root.iterdir():
        try:
            line = (admin / "gitdir").read_text().strip()
        except OSError:
            continue
        found.append(Path(os.path.realpath(Path(line).parent)))
    return found


def _loose_siblings(ws: Workspace, part: Part, ref_file: Path) -> list[Path]:
    """The other ref files in the part's ref directory (other parts' branches),
    each made loose first (a packed-only branch would have no file to mount
    read-only, and a loose file written beside it would win over it)."""
    from hf_fanout.worktrees import refs

    common = Path(os.path.realpath(ws.repo.common_dir))
    directory = ref_file.parent
    directory.mkdir(parents=True, exist_ok=True)
    for other in ws.store.load_parts(ws.store.load_batch(part.batch)):
        ref = f"refs/heads/{other.branch}"
        path = common / ref
        value = refs.packed(common, ref)
        if other.name != part.name and path.parent == directory and value \
                and not path.exists():
            _write_loose(path, value)
    return sorted(p for p in directory.iterdir()
                  if p != ref_file and not p.name.endswith(".lock") and p.is_file())


def _write_loose(path: Path, value: str) -> None:
    """A loose copy of a packed ref, written the way git writes one: `<ref>.lock`
    created exclusively, then renamed over the ref."""
    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return  # git is writing it right now: it will be loose
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    os.replace(lock, path)


def _make_private_objects(common: Path, private: Path) -> None:
    """The part's private object directory, listed in the repository's alternates."""
    for sub in ("pack", "info"):
        (private / sub).mkdir(parents=True, exist_ok=True)
    (private / "info" / "alternates").touch(exist_ok=True)  # (the sandbox mounts its own)
    shared_objects_view(common).mkdir(parents=True, exist_ok=True)
    add_alternate(common, private)


def _alternates(common: Path) -> Path:
    return common / "objects" / "info" / "alternates"


def add_alternate(common: Path, directory: Path) -> None:
    line = str(directory)
    with locks.hold(common / "hf" / "locks" / "alternates.lock", wait=30, what="alternates"):
        path = _alternates(common)
        try:
            lines = path.read_text().splitlines()
        except FileNotFoundError:
            lines = []
        if line not in lines:
            atomic.atomic_write(path, "".join(f"{x}\n" for x in [*lines, line]).encode())


def remove_alternate(common: Path, directory: Path) -> None:
    line = str(directory)
    with locks.hold(common / "hf" / "locks" / "alternates.lock", wait=30, what="alternates"):
        path = _alternates(common)
        try:
            lines = path.read_text().splitlines()
        except FileNotFoundError:
            return
        if line in lines:
            kept = [x for x in lines if x != line]
            if kept:
                atomic.atomic_write(path, "".join(f"{x}\n" for x in kept).encode())
            else:
                atomic.remove_durably(path)


def _environment() -> dict[str, str]:
    """Config for every git command in the sandbox: no automatic gc (it would pack
    refs, which are read-only there)."""
    env: dict[str, str] = {}
    try:
        count = int(os.environ.get("GIT_CONFIG_COUNT", "0").strip() or "0")
    except ValueError:
        count = 0
    for key, value in (("gc.auto", "0"), ("maintenance.auto", "false")):
        env[f"GIT_CONFIG_KEY_{count}"] = key
        env[f"GIT_CONFIG_VALUE_{count}"] = value
        count += 1
    env["GIT_CONFIG_COUNT"] = str(count)
    return env


def forget_part(common: Path, part: Part) -> int:
    """What a part's sandbox left: its objects moved into the shared store, its
    inbox and mounted alternates file removed. How many object files moved."""
    moved = move_objects_home(common, part)
    shutil.rmtree(inbox_dir(common, part), ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        (common / "hf" / "sandbox" / part.batch / f"{part.name}.alternates").unlink()
    for area in ("objects", "inbox", "sandbox"):  # no empty directories left behind
        with contextlib.suppress(OSError):
            (common / "hf" / area / part.batch).rmdir()
    return moved


def forged_objects(common: Path, part: Part) -> list[Path]:
    """The files of the part's private object store (written by its agent, in the
    sandbox) whose objects are not what their names say: a loose object whose
    content does not hash to its name, a pack whose index does not match the
    pack (`git verify-pack`, which computes every object's id again). git trusts
    both as they are when it reads them, so a forged one would show other content
    under a main commit's name."""
    import hashlib
    import zlib

    from hf_fanout.worktrees.process import run

    private = private_objects(common, part)
    if not private.is_dir():
        return []
    found = []
    for sub in sorted(private.iterdir()):
        if len(sub.name) != 2 or not sub.is_dir():
            continue
        for obj in sorted(sub.iterdir()):
            try:
                data = zlib.decompress(read_regular(obj, follow=False))
            except (OSError, zlib.error):
                found.append(obj)
                continue
            if hashlib.sha1(data, usedforsecurity=False).hexdigest() != sub.name + obj.name:
                found.append(obj)
    pack_dir = private / "pack"
    for index in sorted(pack_dir.glob("*.idx")) if pack_dir.is_dir() else []:
        if run(["verify-pack", str(index)], common, check=False).returncode != 0:
            found += [index, index.with_suffix(".pack")]
    return found


def move_objects_home(common: Path, part: Part) -> int:
    """Move a part's private objects into the shared store, then forget the directory;
    what `forged_objects` finds is not moved (it goes with the directory).
    Returns how many files moved. Safe to repeat after a crash at any point."""
    private = private_objects(common, part)
    if not private.is_dir():
        return 0
    for forged in forged_objects(common, part):
        with contextlib.suppress(OSError):
            forged.unlink()
    shared = common / "objects"
    moved = 0
    for sub in sorted(private.iterdir()):
        if len(sub.name) == 2 and sub.is_dir():
            for obj in sub.iterdir():
                target = shared / sub.name / obj.name
                if not target.exists():
                    target.parent.mkdir(exist_ok=True)
                    os.replace(obj, target)
                    moved += 1
    pack_dir = private / "pack"
    if pack_dir.is_dir():
        # a pack before its index: git finds packs through their .idx
        order = {".pack": 0, ".rev": 1, ".bitmap": 2, ".keep": 3, ".idx": 4}
        for item in sorted(pack_dir.iterdir(), key=lambda p: (order.get(p.suffix, 5), p.name)):
            target = shared / "pack" / item.name
            if not target.exists():
                os.replace(item, target)
                moved += 1
    remove_alternate(common, private)
    shutil.rmtree(private, ignore_errors=True)
    return moved
