"""Every error hf knows about: a stable code, one line of message, a hint.

The CLI turns these into one line on stderr (or the JSON envelope) and an
exit code; nothing else in hf prints an error.
"""

from __future__ import annotations

import os

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_BUG = 3
EXIT_LOCK_BUSY = 75
EXIT_GUARD = 99
EXIT_INTERRUPTED = 130


class HfError(Exception):
    """A known failure: refused or failed, with a hint on what to do."""

    code = "failed"
    exit_code = EXIT_REFUSED

    def __init__(self, message: str, hint: str = "", *, details: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details


class BadInput(HfError):
    """The user's input cannot be used as given (exit 2)."""

    code = "bad_input"
    exit_code = EXIT_USAGE


class InvalidPath(BadInput):
    code = "invalid_path"


class InvalidPlan(BadInput):
    code = "invalid_plan"


class OwnershipOverlap(BadInput):
    code = "ownership_overlap"


class InsidePart(HfError):
    """A decision for the person, asked from inside a part (an agent)."""

    code = "inside_part"


class Paused(HfError):
    """Something would start while a pause (`hf pause`) is in force."""

    code = "paused"


class LimitReached(HfError):
    """Starting one more would go over a configured limit (`max_live_agents`)."""

    code = "limit_reached"


class NotFound(HfError):
    code = "not_found"


class NotARepo(HfError):
    code = "not_a_repo"


class BatchExists(HfError):
    code = "batch_exists"


class OwnershipViolation(HfError):
    code = "ownership_violation"


class JoinRefused(HfError):
    code = "join_refused"


class UndoRefused(HfError):
    code = "undo_refused"


class MergeConflict(HfError):
    code = "merge_conflict"


class MainMoved(HfError):
    code = "main_moved"


class LockBusy(HfError):
    code = "lock_busy"
    exit_code = EXIT_LOCK_BUSY


class IndexLocked(LockBusy):
    """git's own index lock (`index.lock`) is held by another process."""

    code = "index_locked"


class NoSpace(HfError):
    """The disk (or a quota) is full: what was kept is said in the message."""

    code = "no_space"


class IoError(HfError):
    """The file system failed (I/O error, read-only file system)."""

    code = "io_error"


class TamperDetected(HfError):
    code = "tamper_detected"


class StateCorrupt(HfError):
    code = "state_corrupt"


class GitFailed(HfError):
    """A git command failed; the message names the command, details hold stderr."""

    code = "git_failed"

    def __init__(self, argv: list[str], returncode: int, stderr: str, hint: str = "") -> None:
        # each line as a terminal shows it: a progress line git ended with a carriage
        # return ("Rebasing (1/1)\r") is written over by what follows it
        lines = [next((s.strip() for s in reversed(line.split("\r")) if s.strip()), "")
                 for line in stderr.strip().split("\n")]
        # git's own verdict where it gave one: a filter's or a hook's progress and
        # git's warnings may come before it
        first = next((line for line in lines if line.startswith("fatal:")),
                     next((line for line in lines if line.startswith("error:")),
                          next((line for line in lines if line), f"exit {returncode}")))
        super().__init__(
            f"`git {' '.join(argv)}` failed: {first}",
            left_lock_hint(stderr) or hint  # (a lock left behind is the cause, whatever else)
            or filter_hint(stderr) or identity_hint(stderr)
            or "run the same git command yourself to see the whole message",
            details={"argv": argv, "returncode": returncode, "stderr": stderr},
        )
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr


def left_lock_hint(stderr: str) -> str:
    """For git's "Unable to create '<path>.lock': File exists": the way on (a git
    command holds that lock for moments; one killed there leaves it for good)."""
    marker = "Unable to create '"
    start = stderr.find(marker)
    end = stderr.find(".lock': File exists", start)
    if start < 0 or end < 0:
        return ""
    import shlex

    lock = stderr[start + len(marker):end + len(".lock")]
    return (f"another git command holds {lock}, or one was killed and left it: once no "
            f"git command runs there, remove it (`rm {shlex.quote(lock)}`), then run the "
            "same hf command again")


def identity_hint(stderr: str) -> str:
    """For git's "Author identity unknown": the way git itself gives."""
    if "Please tell me who you are" not in stderr and "no email was given" not in stderr:
        return ""
    return ("tell git who you are (`git config --global user.email you@example.com` and "
            "`git config --global user.name 'Your Name'`), then run the same hf command again")


def filter_hint(stderr: str) -> str:
    """For a smudge or clean filter of `.gitattributes` that failed: git-lfs's, when
    the repository's large files are not all fetched (a clone made with
    GIT_LFS_SKIP_SMUDGE=1), is the usual one."""
    if "git-lfs" in stderr or "filter 'lfs'" in stderr:
        return ("git-lfs could not give a file's content (its object is not fetched?): "
                "`git lfs fetch` it, or put `GIT_LFS_SKIP_SMUDGE=1` before the same hf "
                "command to leave LFS files as their pointers")
    if "filter '" in stderr or "external filter" in stderr:
        return ("a filter that .gitattributes names failed (see `git config --get-regexp "
                "'^filter\\.'`): fix it, then run the same hf command again")
    return ""


# errno values that mean "the disk is full" and "the file system failed"
_NO_SPACE = {"ENOSPC", "EDQUOT"}
_IO = {"EIO", "EROFS", "ENXIO"}
# what git prints for them (its messages carry strerror's text)
_NO_SPACE_TEXT = ("No space left on device", "Disk quota exceeded")
_IO_TEXT = ("Input/output error", "Read-only file system")


# errno values that mean "this path is not what hf can use there": a folder where
# a file should be, a file where a folder should be, a loop of links, no permission
class NotRegularFile(OSError):
    """What `atomic.read_regular` opened is not a regular file (a FIFO, a device, a
    folder, a link where none is followed), or is larger than the reader takes. An
    OSError naming the path (`filename`) and what it is (`strerror`); its text is
    that."""

    def __init__(self, path: str | os.PathLike[str], what: str, code: int) -> None:
        super().__init__(code, what, os.fspath(path))
        self.message = f"{os.fspath(path)} {what}"

    def __str__(self) -> str:
        return self.message


_NOT_USABLE = {"EISDIR", "ENOTDIR", "ELOOP", "EACCES", "EPERM"}


class FileNotUsable(HfError):
    """A path hf reads or writes is of the wrong kind, or may not be used."""

    code = "file_not_usable"


def unusable_file_error(exc: BaseException, command: str) -> HfError | None:
    """An OSError on a named path of the wrong kind (a folder where hf keeps a file,
    its audit log for one) or one hf may not use, as one line naming the path;
    None for any other error."""
    import errno

    if not isinstance(exc, OSError) or exc.errno is None or not exc.filename:
        return None
    if errno.errorcode.get(exc.errno, "") not in _NOT_USABLE \
            and not isinstance(exc, NotRegularFile):
        return None
    return FileNotUsable(f"`hf {command}` cannot use {exc.filename}: {exc.strerror}",
                         "move it aside (or give it back the permissions it needs), then run "
                         "the same command again; `hf doctor` then says what is missing")


# git failing on a file system with less than this free is taken to have met a full disk
# (git often says only "couldn't write '...lock'")
_NEARLY_FULL = 64 * 1024


def storage_error(exc: BaseException, doing: str, kept: str,
                  where: str | None = None, need: int = 0) -> HfError | None:
    """A full disk or a failing file system, from an OSError or from git's stderr,
    as one clear error (`no_space` / `io_error`); None when `exc` is neither.

    `doing`: what failed ("writing the part record"); `kept`: what is true now
    ("nothing was changed"). Both go into the message, so the person knows
    what is left and what to do. `where`: a path on the file system git worked
    on, looked at when git's message does not say why it could not write: with
    less free than `need` bytes (what the failed step was writing, when known)
    or nearly nothing, that was a full disk."""
    import errno
    import os

    name = ""
    if isinstance(exc, OSError) and exc.errno is not None:
        name = errno.errorcode.get(exc.errno, "")
    text = exc.stderr if isinstance(exc, GitFailed) else ""
    full = False
    if isinstance(exc, GitFailed) and where is not None:
        try:
            st = os.statvfs(where)
            full = st.f_bavail * st.f_frsize < max(_NEARLY_FULL, need)
        except OSError:
            full = False
    if name in _NO_SPACE or full or any(t in text for t in _NO_SPACE_TEXT):
        kept = kept.strip().rstrip(";")
        return NoSpace(f"no space left on the device while {doing}" + (f"; {kept}" if kept
                                                                       else ""),
                       "free some space (or raise the quota), then run the same command again")
    if name in _IO or any(t in text for t in _IO_TEXT):
        return IoError(f"the file system failed while {doing} ({exc}); {kept}",
                       "check the disk (`dmesg`, `df -h`), then run the same command again")
    return None
