"""Every error hf knows about: a stable code, one line of message, a hint.

The CLI turns these into one line on stderr (or the JSON envelope) and an
exit code; nothing else in hf prints an error.
"""

from __future__ import annotations

EXIT_OK = 0
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


class MergeConflict(HfError):
    code = "merge_conflict"


class MainMoved(HfError):
    code = "main_moved"


class LockBusy(HfError):
    code = "lock_busy"
    exit_code = EXIT_LOCK_BUSY


class TamperDetected(HfError):
    code = "tamper_detected"


class StateCorrupt(HfError):
    code = "state_corrupt"


class GuardBlocked(HfError):
    code = "guard_blocked"
    exit_code = EXIT_GUARD


class GitFailed(HfError):
    """A git command failed; the message names the command, details hold stderr."""

    code = "git_failed"

    def __init__(self, argv: list[str], returncode: int, stderr: str, hint: str = "") -> None:
        first = stderr.strip().splitlines()[0] if stderr.strip() else f"exit {returncode}"
        super().__init__(
            f"`git {' '.join(argv)}` failed: {first}",
            hint or "run the same git command yourself to see the whole message",
            details={"argv": argv, "returncode": returncode, "stderr": stderr},
        )
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
