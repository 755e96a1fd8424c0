"""Atomic file writes: temp file in the same directory, fsync, rename, fsync the directory.

The only module that writes hf's state files; a reader never sees half a record.
Agents' hooks write through it on every step (liveness/agent.py), so it loads
only os and json: pathlib and typing are for the type checker alone, and the
functions the hooks use take a path as a str or a Path.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, TypeAlias

    AnyPath: TypeAlias = str | os.PathLike[str]


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(path: Path, data: bytes, mode: int) -> str:
    """`data` in a fsynced temp file beside `path`; returns the temp file's name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    import tempfile  # (only where a file is written: readers stay light)

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace `path` with `data` so a crash leaves the old or the new content, never a mix."""
    tmp = _write_temp(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def replace_unsynced(path: AnyPath, data: bytes) -> None:
    """Replace `path` whole (rename), without fsync: for a small file written very
    often whose loss in a power cut costs nothing (the agent's state, rewritten
    on its next step). Readers still never see half of it."""
    directory, name = os.path.split(os.fspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, record: Any) -> None:
    atomic_write(path, json_bytes(record))


def json_bytes(record: Any) -> bytes:
    """A record as hf writes it: indented, sorted keys, UTF-8, a final newline."""
    return (json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def atomic_write_many(files: list[tuple[Path, bytes]]) -> None:
    """Several `atomic_write`s, their fsyncs overlapping instead of queueing one
    by one (each file is still all old or all new after a crash)."""
    if len(files) < 2:
        for path, data in files:
            atomic_write(path, data)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, len(files))) as pool:
        for future in [pool.submit(atomic_write, path, data) for path, data in files]:
            future.result()


def append_line(path: Path, line: str) -> None:
    """Append one line durably (the audit log): O_APPEND keeps concurrent writers whole.

    A last line left torn (a writer killed half way, a full disk) is ended first,
    so this line is never glued onto it (the torn one is reported by its reader).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        data = (line.rstrip("\n") + "\n").encode("utf-8")
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_durably(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        fsync_dir(path.parent)


def create_exclusive(path: Path, data: bytes, *, mode: int = 0o644) -> bool:
    """Create `path` with `data` unless it exists; True when this call created it.

    The content is written and fsynced under a temp name first, then hard-linked
    into place: link() fails when the name exists, so of any number of racing
    callers exactly one wins, and a reader never sees a half-written file.
    """
    tmp = _write_temp(path, data, mode)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(path.parent)
    return True


def is_temp_name(name: str) -> bool:
    """Whether `name` is one of `_write_temp`'s files (`.<final name>.<random>.tmp`)."""
    return name.startswith(".") and name.endswith(".tmp")


def remove_stale_temps(directory: Path, older_than: float) -> list[str]:
    """Remove the temp files in `directory` last written more than `older_than` s ago.

    A writer's temp file lives for milliseconds; one that old was left by a
    writer killed between writing it and linking or renaming it into place.
    Returns the names removed; a file that cannot be removed is left (harmless).
    """
    try:
        paths = [path for path in directory.iterdir() if is_temp_name(path.name)]
    except OSError:
        return []
    cutoff = time.time() - older_than
    removed: list[str] = []
    for path in paths:
        try:
            if path.stat().st_mtime >= cutoff:
                continue
            path.unlink()
        except OSError:
            continue
        removed.append(path.name)
    if removed:
        with contextlib.suppress(OSError):
            fsync_dir(directory)
    return removed


DAMAGED_HINT = "run `hf doctor`; hf leaves the file as it is"


def read_regular(path: AnyPath, *, limit: int | None = None, follow: bool = True) -> bytes:
    """The bytes of the regular file at `path`: the one way hf reads a file that
    someone else (an agent) may have put there. Opened without waiting (a FIFO
    would block a plain read forever) and, unless `follow`, without following a
    link; judged by what was opened, not by the name (which may be swapped
    meanwhile). A FIFO, a device (/dev/zero would be read without end), a
    folder, or more than `limit` bytes: NotRegularFile. FileNotFoundError when
    there is nothing."""
    import errno
    import stat

    from hf_fanout.errors import NotRegularFile

    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) \
        | (0 if follow else getattr(os, "O_NOFOLLOW", 0))

    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if not follow and os.path.islink(path):  # (ELOOP: the name is a link)
            raise NotRegularFile(path, "is a symbolic link", errno.ELOOP) from None
        raise exc from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) \
                else "a device or socket"
            raise NotRegularFile(path, f"is {kind}, not a regular file",
                                 errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL)
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, 1 << 20 if limit is None else limit + 1 - size)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
            if limit is not None and size > limit:
                raise NotRegularFile(path, f"is larger than {limit} bytes", errno.EFBIG)
    finally:
        os.close(fd)


def read_json(path: AnyPath, what: str = "record", hint: str = DAMAGED_HINT) -> Any:
    """The one reader of hf's JSON files: the content, or None when the file does
    not exist.

    A file that exists but cannot be read or parsed raises StateCorrupt naming
    it, with `hint`: hf never treats a damaged file as empty (and so never
    overwrites it). A caller for whom the file is only a nicety (a lock's holder)
    catches that and says less.
    """
    from hf_fanout.errors import NotRegularFile, StateCorrupt

    try:
        raw = read_regular(path)
    except FileNotFoundError:
        return None
    except NotRegularFile as exc:
        raise StateCorrupt(str(exc), hint) from None
    except OSError as exc:
        raise StateCorrupt(f"cannot read {path}: {exc}", "check the file's permissions") from None
    try:
        return json.loads(raw)
    except ValueError:
        raise StateCorrupt(f"{path} is not valid JSON (torn or edited {what})", hint) from None
