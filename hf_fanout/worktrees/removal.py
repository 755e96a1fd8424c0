"""Deleting a worktree's folder, and counting the space it holds.

The folder is first moved aside in one rename (to `.NAME.hf-removing` beside it):
from then on git sees the worktree as gone (`forget_missing_worktrees` forgets it), and
a removal a crash cut short leaves that hidden folder, which the next removal in
the same place finishes (`finish`), never a half-deleted worktree git still
lists. Then the system's own tools do the bulk (compiled code: this module's
walk costs about 20 microseconds of Python per file, a third more CPU than
git's own removal): GNU `find -delete` deletes each file and prints the blocks
its deletion freed, in one pass; where `find` is not GNU's (no `-printf`), `du`
counts the blocks and `rm -rf` deletes. Whatever they leave, or all of it where
they cannot be run, goes by the walk below, which also adds up the blocks it
frees. A file with another name left (a hard link) frees nothing when one name
goes: its blocks count with its last name.

The walk holds a directory descriptor per level and deletes by name in it: it
never follows a symbolic link (a link to a folder outside goes, its target
stays), is not limited by the length of a path, and descends by a stack of its
own, not by recursion, so a tree of any depth goes. A folder it may not write in
(a build tool's read-only cache) is made writable for its owner first, as `rm -rf`
would do for root.

A `find`, `du` or `rm` stopped by a signal (Ctrl-C reaches them too) stops the
deletion there: the walk does not take over, the folder stays aside, and the
next removal in the same place finishes it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from pathlib import Path

from hf_fanout.errors import HfError
from hf_fanout.faults import fault_point

ASIDE_SUFFIX = ".hf-removing"
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def aside_of(path: Path) -> Path:
    """Where `path` goes while it is deleted."""
    return path.with_name(f".{path.name}{ASIDE_SUFFIX}")


def delete(path: Path) -> int:
    """Delete the folder `path`: moved aside, then its files. Returns the bytes it
    held; what cannot be deleted stays, aside, for `finish` to try again."""
    target = move_aside(path)
    return delete_folder(target) if target is not None else 0


def move_aside(path: Path) -> Path | None:
    """`path` renamed to its aside name (what an earlier removal of the same name
    left there deleted first): the folder to delete, which is `path` itself where
    it cannot be renamed (a mount point, a folder it may not rename); None when
    there is no `path`."""
    aside = aside_of(path)
    if os.path.lexists(aside):  # an earlier removal of the same name, cut short
        delete_folder(aside)
    try:
        path.rename(aside)
    except FileNotFoundError:
        return None
    except OSError:
        return path
    fault_point("removal-aside")
    return aside


class Deletions:
    """Folders deleted by a thread of their own, one after another, while the caller
    goes on (gc checks the next worktree while the last one's files go). Each is
    moved aside at once (`start`): git sees it gone from then on, and a process
    killed before its files are gone leaves only the aside folder for `finish`.
    One at a time, as `rm` would: two deletions at once were no faster on this
    machine's disk and cost more CPU."""

    def __init__(self) -> None:
        from concurrent.futures import Future, ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-delete")
        self._started: dict[Path, Future[int]] = {}

    def start(self, path: Path) -> None:
        target = move_aside(path)
        if target is not None:
            self._started[path] = self._pool.submit(delete_folder, target)

    def wait(self) -> dict[Path, int]:
        """Once every folder started is deleted: the bytes each held (0 for one that
        was not there)."""
        freed = {path: future.result() for path, future in self._started.items()}
        self._started.clear()
        return freed

    def close(self) -> None:
        """Once the running deletion ends (those not begun are left aside, for
        `finish`: the caller stopped before it waited for them)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def finish(folder: Path) -> int:
    """Finish the removals a crash cut short in `folder`; the bytes they freed."""
    try:
        left = [p for p in folder.iterdir()
                if p.name.startswith(".") and p.name.endswith(ASIDE_SUFFIX)]
    except OSError:
        return 0
    return sum(delete_folder(p) for p in left)


def delete_folder(path: Path) -> int:
    """Delete the folder `path` (already aside: nothing else works in it) and
    everything under it: by GNU `find -delete`, which counts what it frees, else
    counted by `du` and deleted by `rm -rf`; what they leave by `delete_tree`.
    The bytes of what was under it."""
    if not path.is_dir() or path.is_symlink():
        return delete_tree(path)
    freed = _deleted_by_find(path)
    if freed is None:
        counted = _counted_by_du(path)
        if counted is None:
            return delete_tree(path)
        _deleted_by_rm(path)
        if os.path.lexists(path):  # (a folder its owner may not write in, for one)
            delete_tree(path)  # (its blocks are in du's count already)
        return counted
    with contextlib.suppress(OSError):
        path.rmdir()
    if os.path.lexists(path):  # what find could not delete: the walk counts it
        freed += delete_tree(path)
    return freed


# A directory, or a file with no other name, frees its blocks when it goes (find
# reads its status just before it deletes it); a file's other names free nothing.
_FIND_DELETE = ["-mindepth", "1", "(", "-type", "d", "-o", "-links", "1", ")",
                "-delete", "-printf", "%b\n", "-o", "-delete"]


def _deleted_by_find(path: Path) -> int | None:
    """Everything under `path` deleted by GNU find; the bytes of the blocks that
    freed. None where find cannot be run or is not GNU's, before it deleted
    anything (another find refuses `-printf` as it reads its arguments)."""
    proc = _find(path, _FIND_DELETE)
    if proc is None:
        return None
    try:
        blocks = sum(int(n) for n in proc.stdout.split())
    except ValueError:
        return None
    if proc.returncode != 0 and not proc.stdout and _has_entries(path):
        return None  # (nothing deleted: no GNU find, or one that could delete nothing)
    return blocks * 512


def _find(path: Path, expression: list[str]) -> subprocess.CompletedProcess[bytes] | None:
    """`find PATH EXPRESSION` run to its end (None where find cannot be run); one a
    signal stopped stops the deletion (`_refuse_stopped`)."""
    try:
        proc = subprocess.run(["find", os.fspath(path.absolute()), *expression],
                              stdin=subprocess.DEVNULL, capture_output=True, check=False)
    except OSError:
        return None
    _refuse_stopped(proc.returncode, "find", path)
    return proc


def _has_entries(path: Path) -> bool:
    try:
        with os.scandir(path) as listing:
            return any(True for _ in listing)
    except OSError:
        return False


def _deleted_by_rm(path: Path) -> None:
    try:
        proc = subprocess.run(["rm", "-rf", "--", os.fspath(path)], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    except OSError:
        return
    _refuse_stopped(proc.returncode, "rm", path)


def _counted_by_du(path: Path) -> int | None:
    """The bytes of the blocks under `path` as `du -s` counts them (the folder
    itself left out, as `delete_tree` counts), None where du cannot be run."""
    # 512-byte units from GNU du (POSIXLY_CORRECT) and BSD du (BLOCKSIZE) alike
    env = {**os.environ, "POSIXLY_CORRECT": "1", "BLOCKSIZE": "512"}
    try:
        proc = subprocess.run(["du", "-s", os.fspath(path)], stdin=subprocess.DEVNULL,
                              capture_output=True, env=env, check=False)
        _refuse_stopped(proc.returncode, "du", path)
        blocks = int(proc.stdout.split()[0])
        own = os.lstat(path).st_blocks
    except (OSError, ValueError, IndexError):
        return None
    return max(0, blocks - own) * 512


def _refuse_stopped(returncode: int, tool: str, path: Path) -> None:
    """A `find`, `du` or `rm` a signal stopped: the deletion stops with it."""
    if returncode < 0:
        raise HfError(f"`{tool}` was stopped by signal {-returncode} in {path}: the "
                      "deletion stops there, the folder is left as it is",
                      "run the command again: it finishes the deletion")


def usage(path: Path) -> int:
    """The bytes (allocated blocks) that deleting everything under `path` would free,
    not following links: what `delete_folder` counts once it deletes it (a file
    with a name outside `path` frees nothing). Counted by GNU find, else as `du`
    counts (a file once, whatever its names), else by a walk of its own."""
    if not path.is_dir() or path.is_symlink():
        return _walked_usage(path)
    counted = _counted_by_find(path)
    if counted is None:
        counted = _counted_by_du(path)
    return counted if counted is not None else _walked_usage(path)


# a folder's or a single-named file's blocks; a file of several names, with its
# device and inode, its count of names and its blocks
_FIND_USAGE = ["-mindepth", "1", "(", "-type", "d", "-o", "-links", "1", ")",
               "-printf", "%b\n", "-o", "-printf", "%D:%i %n %b\n"]


def _counted_by_find(path: Path) -> int | None:
    proc = _find(path, _FIND_USAGE)
    if proc is None or (proc.returncode != 0 and not proc.stdout):
        return None  # (no GNU find)
    blocks = 0
    names: dict[bytes, list[int]] = {}  # a file of several names: [names seen, of, blocks]
    try:
        for line in proc.stdout.splitlines():
            fields = line.split()
            if len(fields) == 1:
                blocks += int(fields[0])
                continue
            seen = names.setdefault(fields[0], [0, int(fields[1]), int(fields[2])])
            seen[0] += 1
    except (ValueError, IndexError):
        return None
    blocks += sum(of_blocks for seen, of, of_blocks in names.values() if seen >= of)
    return blocks * 512


def _walked_usage(path: Path) -> int:
    total = 0
    names: dict[tuple[int, int], list[int]] = {}  # as in `_counted_by_find`
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            try:
                status = entry.stat(follow_symlinks=False)
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                stack.append(Path(entry.path))
            if is_dir or status.st_nlink == 1:
                total += status.st_blocks * 512
            else:
                seen = names.setdefault((status.st_dev, status.st_ino),
                                        [0, status.st_nlink, status.st_blocks])
                seen[0] += 1
    return total + sum(blocks * 512 for seen, of, blocks in names.values() if seen >= of)


def delete_tree(path: Path) -> int:
    """Delete `path` and everything under it (see the module's docstring); the bytes
    of what was under it."""
    try:
        top = os.open(path, _OPEN_DIR)
    except FileNotFoundError:
        return 0
    except OSError:  # a file or a link, not a folder
        with contextlib.suppress(OSError):
            os.unlink(path)
        return 0
    freed = 0
    # one frame per open folder: its descriptor, the entries left, its name in the
    # folder of the frame below (None for the top)
    stack: list[tuple[int, list[os.DirEntry[str]], str | None]] = [(top, _entries(top), None)]
    while stack:
        fd, entries, name = stack[-1]
        if not entries:
            stack.pop()
            os.close(fd)
            if name is not None:
                _remove(name, stack[-1][0], directory=True)
            continue
        entry = entries.pop()
        try:
            status = entry.stat(follow_symlinks=False)
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            continue
        if is_dir or status.st_nlink == 1:  # (a file's other names free nothing)
            freed += status.st_blocks * 512
        if not is_dir:
            _remove(entry.name, fd, directory=False)
            continue
        sub = _open_below(entry.name, fd)
        if sub is not None:
            stack.append((sub, _entries(sub), entry.name))
    with contextlib.suppress(OSError):
        path.rmdir()
    return freed


def _entries(fd: int) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(fd) as listing:
            return list(listing)
    except OSError:
        return []


def _open_below(name: str, parent: int) -> int | None:
    """A descriptor of the folder `name` in `parent`, made readable for its owner if
    it was not; None if it cannot be opened."""
    for attempt in (0, 1):
        try:
            return os.open(name, _OPEN_DIR, dir_fd=parent)
        except PermissionError:
            if attempt == 0:
                with contextlib.suppress(OSError):
                    mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
                    os.chmod(name, stat.S_IMODE(mode) | stat.S_IRWXU, dir_fd=parent)
        except OSError:
            return None
    return None


def _remove(name: str, parent: int, *, directory: bool) -> None:
    """Unlink (or rmdir) `name` in the folder `parent`, making that folder writable
    for its owner once if it was not."""
    for attempt in (0, 1):
        try:
            if directory:
                os.rmdir(name, dir_fd=parent)
            else:
                os.unlink(name, dir_fd=parent)
        except PermissionError:
            if attempt == 0:
                with contextlib.suppress(OSError):
                    os.fchmod(parent, stat.S_IMODE(os.fstat(parent).st_mode) | stat.S_IRWXU)
        except OSError:
            return
        else:
            return
