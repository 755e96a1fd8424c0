"""Running git: the real binary, with a clean environment, bytes in and out.

Every git process hf starts goes through `run`. Variables that would point git
at another repository, index or object store (a parent process, a hook or an
agent may have set them) are dropped; hf's own guard wrapper is taken off
PATH, so hf always talks to the real git.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hf_fanout.errors import BadInput, GitFailed

# Variables that point git at another repository, index or object store: a
# parent process (a hook, an agent) may have set them, and they must not leak.
_KEEP_GIT_VARS = {
    "GIT_EXEC_PATH",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_SSL_CAINFO",
    "GIT_SSL_NO_VERIFY",
    "GIT_ASKPASS",
    "GIT_TERMINAL_PROMPT",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_CONFIG_GLOBAL",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "GIT_COMMITTER_DATE",
    "GIT_TRACE",
    "GIT_TRACE2",
    "GIT_TRACE2_EVENT",
    # how git reaches a remote (certificates, proxies): the person's network's
    "GIT_SSL_CAPATH",
    "GIT_SSL_CERT",
    "GIT_SSL_KEY",
    "GIT_SSL_CERT_PASSWORD_PROTECTED",
    "GIT_SSL_VERSION",
    "GIT_SSL_CIPHER_LIST",
    "GIT_PROXY_COMMAND",
    "GIT_PROXY_SSL_CERT",
    "GIT_PROXY_SSL_KEY",
    "GIT_PROXY_SSL_CAINFO",
    "GIT_PROXY_SSL_CERT_PASSWORD_PROTECTED",
    "GIT_HTTP_PROXY_AUTHMETHOD",
    "GIT_HTTP_USER_AGENT",
    "GIT_HTTP_LOW_SPEED_LIMIT",
    "GIT_HTTP_LOW_SPEED_TIME",
    "GIT_HTTP_MAX_REQUESTS",
    "GIT_SSH_VARIANT",
    "GIT_CURL_VERBOSE",
    "GIT_TRACE_CURL",
    "GIT_TRACE_PACKET",
}
# git-lfs's own switches (GIT_LFS_SKIP_SMUDGE for a clone whose large files are not
# fetched, GIT_LFS_SKIP_PUSH, ...): they point git at no other repository
_KEEP_GIT_PREFIXES = ("GIT_CONFIG_", "GIT_LFS_")


def git_executable() -> str:
    """The real git: the one the guard wrapper recorded, else `git` on the PATH."""
    return os.environ.get("HF_REAL_GIT") or "git"


@functools.lru_cache(maxsize=8)
def _without_guard(path: str) -> str:
    """PATH minus hf's guard wrapper directories (the installation's and the stable
    one): hf's own git calls go to the real git."""
    from hf_fanout.config import guard_bin_dir

    guards = {str(Path(__file__).resolve().parent.parent / "guard" / "bin"),
              str(guard_bin_dir())}
    return os.pathsep.join(d for d in path.split(os.pathsep) if d.rstrip("/") not in guards)


# Config keys that make git run a program on a command that runs none otherwise:
# set from the environment (the user's shell, an agent) they would reach hf's own
# git calls, in the main tree too.
_RUNS_PROGRAMS = ("core.hookspath", "core.fsmonitor")


def environment_config_keys(env: Mapping[str, str]) -> list[str]:
    """The config keys the environment sets for every git command (lowercase):
    `GIT_CONFIG_PARAMETERS` (`git -c` of a parent git) and `GIT_CONFIG_KEY_<n>`
    (every one, whatever `GIT_CONFIG_COUNT` says: git reads " 1" and "+1" too)."""
    found = [k.lower() for k in _parameter_keys(env.get("GIT_CONFIG_PARAMETERS", ""))]
    found += [v.lower() for k, v in env.items() if k.startswith("GIT_CONFIG_KEY_")]
    return found


def _parameter_keys(text: str) -> list[str]:
    """The keys of `GIT_CONFIG_PARAMETERS` ('key'='value' 'key2'='value', or older
    'key=value' words)."""
    import shlex

    try:
        words = shlex.split(text)
    except ValueError:
        return [text]  # unparsable: looked at whole
    return [w.partition("=")[0] for w in words]


def refuse_program_config(env: Mapping[str, str]) -> None:
    """hf does not run git where the environment points hooks or an fsmonitor
    somewhere (one line, before anything runs)."""
    bad = sorted({k for k in environment_config_keys(env) if k in _RUNS_PROGRAMS})
    if bad:
        raise BadInput(f"the environment sets {', '.join(bad)} for every git command "
                       "(GIT_CONFIG_PARAMETERS / GIT_CONFIG_COUNT): hf does not run git that "
                       "way", "unset GIT_CONFIG_PARAMETERS and GIT_CONFIG_COUNT (and the "
                       "GIT_CONFIG_KEY_n / VALUE_n it counts), then run hf again")


# Set for every git process hf starts; a hook run hf means to run whole (the
# post-checkout of a split, `hf commit`'s hooks) sets it empty.
OWN_GIT = "HF_OWN_GIT"


# hf never changes a submodule: its own resets, checkouts and rebases in a part
# (whose submodules are not checked out) must not recurse into them because the
# person's config says `submodule.recurse` (git would write a `.git` file naming a
# repository the part does not have, and fail there from then on)
OWN_SETTINGS = ("-c", "submodule.recurse=false")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of hf's own git processes: no variable that points git at
    another repository, index or object store; no guard wrapper on PATH; and no
    config from the environment that would run a program (refused)."""
    if "GIT_CONFIG_PARAMETERS" in os.environ or "GIT_CONFIG_COUNT" in os.environ:
        refuse_program_config(os.environ)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GIT_") or key in _KEEP_GIT_VARS
        or key.startswith(_KEEP_GIT_PREFIXES)
    }
    # GIT_CONFIG_KEY_n / VALUE_n / COUNT are kept (they are `git -c` for children), but
    # GIT_CONFIG (a whole other config file) is not.
    env.pop("GIT_CONFIG", None)
    env["GIT_OPTIONAL_LOCKS"] = env.get("GIT_OPTIONAL_LOCKS", "0")
    # hf's own git: a part's hooks run hf's checks but no hook of the part's own
    # checkout (a relative core.hooksPath), which its agent can write (guard/hooks.py)
    env[OWN_GIT] = "1"
    env["LC_ALL"] = "C"
    if "PATH" in env:
        env["PATH"] = _without_guard(env["PATH"])
    if extra:
        env.update(extra)
    return env


def run(
    args: Sequence[str],
    cwd: Path,
    *,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `git ARGS` in `cwd`; raise GitFailed (with stderr) on a non-zero exit if `check`.
    `timeout`: seconds, after which git and what it started (ssh, a credential
    helper) are stopped and `GitTimedOut` is raised; such a git runs in a process
    group of its own, so that the whole group (the ssh it started holds the pipes
    open too) is stopped at the limit, or when this process is interrupted."""
    timed = timeout is not None
    proc = subprocess.Popen(
        [git_executable(), *OWN_SETTINGS, *args], cwd=cwd,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(env),
        start_new_session=timed)
    try:
        stdout, stderr = proc.communicate(stdin, timeout=timeout)
    except BaseException as exc:
        _stop(proc, group=timed)
        if isinstance(exc, subprocess.TimeoutExpired):
            raise GitTimedOut(list(args), proc.returncode,
                              f"no answer within {timeout:g} s") from None
        raise
    if check and proc.returncode != 0:
        raise GitFailed(list(args), proc.returncode, stderr.decode("utf-8", "replace"))
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


class GitTimedOut(GitFailed):
    """A git command that did not end within its time (a remote that does not answer)."""

    code = "git_timed_out"


# seconds an interrupted git has, after SIGTERM, to take back its lock files
STOP_GRACE = 3.0


def _stop(proc: subprocess.Popen[bytes], *, group: bool) -> None:
    """End an interrupted git as its own signal handling lets it end cleanly:
    SIGTERM (git removes the `.lock` files it holds), then, if it is still there
    after STOP_GRACE, SIGKILL. `group`: git and what it started (ssh, a helper)."""
    import signal

    def send(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)

    send(signal.SIGTERM)
    try:  # (git itself: a hook or helper it started may hold the pipes open on)
        proc.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2)
    except BaseException:  # (a second interrupt: no more waiting)
        send(signal.SIGKILL)
        raise
    finally:
        if proc.poll() is None:
            proc.kill()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def out(args: Sequence[str], cwd: Path, **kwargs: Any) -> bytes:
    return run(args, cwd, **kwargs).stdout


def text(args: Sequence[str], cwd: Path, **kwargs: Any) -> str:
    return out(args, cwd, **kwargs).decode("utf-8", "surrogateescape").strip()


# `git hook run` (the part hooks' chaining, the post-checkout of a new worktree)
# came in git 2.36.
MIN_GIT = (2, 36)


@functools.lru_cache(maxsize=1)
def check_git_version() -> None:
    """Refuse, in one line, a git older than MIN_GIT (once per process)."""
    found = text(["--version"], Path.cwd() if Path.cwd().is_dir() else Path("/"))
    numbers = found.removeprefix("git version ").split(".")
    try:
        version = (int(numbers[0]), int(numbers[1].split()[0]))
    except (IndexError, ValueError):
        return  # a build that names itself otherwise: taken as new enough
    if version < MIN_GIT:
        from hf_fanout.errors import HfError

        raise HfError(f"hf needs git {MIN_GIT[0]}.{MIN_GIT[1]} or newer; `{git_executable()}` "
                      f"is {found.removeprefix('git version ')}",
                      "install a newer git (or put one first on PATH), then run hf again")


def index_env(index: Path | None) -> dict[str, str] | None:
    """The environment that points git at the index file `index` (None: the
    worktree's own)."""
    return {"GIT_INDEX_FILE": str(index)} if index is not None else None
