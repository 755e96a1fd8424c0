"""The `hf` command line: parse, call the library, render. Errors are turned into
messages here and only here.

Exit codes: 0 done; 1 refused or failed; 2 bad usage or input; 3 a bug (a
traceback is saved under the state dir); 75 lock busy; 99 guard; 130 Ctrl-C;
143 SIGTERM.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from hf_fanout import timefmt
from hf_fanout.errors import EXIT_BUG, EXIT_INTERRUPTED, EXIT_USAGE, HfError


def _own_args(argv: Sequence[str]) -> list[str]:
    """hf's own arguments: what follows `--` belongs to a child command (`hf run -- ...`)."""
    args = list(argv)
    return args[:args.index("--")] if "--" in args else args


def _command_name(argv: Sequence[str]) -> str:
    return next((a for a in _own_args(argv) if not a.startswith("-")), "hf")


def _wide_terminal() -> bool:
    """At 80 columns or more click renders help at its full width (78)."""
    import shutil

    return shutil.get_terminal_size().columns >= 80


def main(argv: Sequence[str] | None = None) -> int:
    """Run hf with `argv` (default: sys.argv[1:]); return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    for name, variable in (("hf-fanout", "_HF_FANOUT_COMPLETE"), ("hf", "_HF_COMPLETE")):
        if os.environ.get(variable):  # the shell asks for completions (`hf shell-init`)
            return _complete(name, variable, os.environ[variable])
    if args in (["--help"], ["-h"]) and _wide_terminal():
        # the one call that must be instant: printed from text rendered ahead of
        # time (hf_fanout/cli/roothelp.py), without loading typer
        from hf_fanout.cli.roothelp import TEXT

        sys.stdout.write(TEXT)
        return 0
    if args[:1] == ["agent-event"]:  # run by agents' hooks on every step: no typer, no git
        from hf_fanout.cli.agent_fast import fast

        answered = fast(args)
        if answered is not None:
            return answered
    from hf_fanout.cli import light, output

    if args == ["--version"]:
        light.version()
        return 0
    _terminate_as_interrupt()
    output.start(_command_name(args), "--json" in _own_args(args))
    if not _in_a_directory(args):
        return EXIT_USAGE
    if not args:  # click's usage, then bad usage (2), whatever typer or click does
        from hf_fanout.cli.roothelp import TEXT

        sys.stdout.write(TEXT)
        return EXIT_USAGE
    try:
        plain = light.parse(args)  # the frequent commands, without loading typer
        if plain is not None:
            plain()
            return 0
        return _typer_main(args)
    except BrokenPipeError:
        return 1
    except KeyboardInterrupt:
        how = "SIGTERM" if _TERMINATED else "Ctrl-C"
        output.emit_error("interrupted", f"interrupted ({how})",
                          "records are written whole, the git it ran was stopped as git "
                          "stops cleanly, and what the command left cut off is settled by "
                          "the next hf command or named by `hf doctor`")
        return EXIT_TERMINATED if _TERMINATED else EXIT_INTERRUPTED
    except (HfError, OSError) as exc:
        known = _known(exc, _command_name(args))
        if known is None:
            return _bug(exc)
        output.emit_error(known.code, known.message, known.hint,
                          known.details if output.CURRENT.json else None)
        if not output.CURRENT.json:
            output.error_details(known.details)
        return known.exit_code
    except Exception as exc:
        if not _is_usage_error(exc):
            return _bug(exc)
        if type(exc).__name__ == "NoArgsIsHelpError":  # a group without its command
            print(exc.format_message(), file=sys.stderr)  # type: ignore[attr-defined]
            return EXIT_USAGE
        output.emit_error("usage", exc.format_message(),  # type: ignore[attr-defined]
                          _usage_hint(_command_name(args)))
        code = exc.exit_code  # type: ignore[attr-defined]
        return EXIT_USAGE if code == 2 else int(code)


_TERMINATED: list[int] = []  # (the SIGTERM that ended the command, once it came)
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process it ended


def _terminate_as_interrupt() -> None:
    """SIGTERM (`kill`, a supervisor, a closed terminal's job control) ends hf as Ctrl-C
    does: the git it runs is ended with it (not left running on its own), what it
    holds is let go, and it says so in one line. Only where SIGTERM would have
    ended hf anyway: a parent that has it ignored keeps it so."""
    import signal
    from types import FrameType

    _TERMINATED.clear()

    def terminated(signum: int, _frame: FrameType | None) -> None:
        _TERMINATED.append(signum)
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, terminated)


def _in_a_directory(args: list[str]) -> bool:
    """Whether hf runs in a directory that exists. Run from one that was removed
    (a join took the folder the shell was in), it moves to the absolute
    `--repo`/`-C` given, if any; else it refuses in one line, as git does, naming
    the nearest folder of the shell's `$PWD` that is still there. Help is
    printed from anywhere."""
    try:
        os.getcwd()  # noqa: PTH109 (pathlib is not loaded by the commands that need none)
    except FileNotFoundError:
        pass
    else:
        return True
    import shlex
    from pathlib import Path

    from hf_fanout.cli import output

    own = _own_args(args)
    if "--help" in own or "-h" in own:  # help reads no repository: printed from anywhere
        os.chdir("/")
        return True
    given = next((own[i + 1] for i, a in enumerate(own[:-1]) if a in ("--repo", "-C")),
                 next((a.split("=", 1)[1] for a in own if a.startswith("--repo=")), None))
    if given is not None and Path(given).is_absolute() and Path(given).is_dir():
        os.chdir(given)
        return True
    shell = Path(os.environ.get("PWD") or ".")
    # ($PWD names the removed folder only when the shell set it: one still there
    # is not it, and says nothing of where hf was)
    near = next((str(d) for d in shell.parents if d.is_dir()), "") \
        if shell.is_absolute() and not shell.is_dir() else ""
    output.emit_error("no_directory", "the current directory no longer exists "
                      "(something removed it after the shell went there)",
                      (f"`cd {shlex.quote(near)}` (or another folder of the repository), "
                       "then run hf again" if near else
                       "cd to the repository, then run hf again") +
                      "; or name the repository with `--repo PATH`")
    return False


def _complete(name: str, variable: str, instruction: str) -> int:
    """Answer the shell's completion request (`_HF_COMPLETE=complete_bash hf`), from
    every command, with typer's completion classes registered (the app is built
    without typer's own --install-completion)."""
    from typer.completion import get_completion_inspect_parameters, shell_complete
    from typer.main import get_command

    from hf_fanout.cli import app

    get_completion_inspect_parameters()
    return shell_complete(get_command(app.build()), {}, name, variable, instruction)


def _typer_main(args: list[str]) -> int:
    """The command `args` name, parsed and run by typer (click's object built for
    that command only)."""
    from typer import Abort, Exit
    from typer.main import get_command

    from hf_fanout.cli import app, plain_values

    name = _command_name(args)
    command = get_command(app.build(name if name in app.names() else None))
    plain_values.install(command, app.functions())
    try:
        result = command.main(args=args, prog_name="hf", standalone_mode=False)
    except Exit as exc:
        if exc.exit_code == EXIT_INTERRUPTED:  # typer's translation of Ctrl-C
            raise KeyboardInterrupt from None
        return int(exc.exit_code)
    except Abort:  # click's Ctrl-C
        raise KeyboardInterrupt from None
    if result == EXIT_INTERRUPTED:
        raise KeyboardInterrupt
    return result if isinstance(result, int) else 0


def _usage_hint(name: str) -> str:
    """Where to look, and the command a mistyped name was most likely meant as."""
    import difflib

    from hf_fanout.cli import app

    known = app.names()
    close = difflib.get_close_matches(name, known, n=1) if name not in known else []
    meant = f"did you mean `hf {close[0]}`? " if close else ""
    return f"{meant}see `hf --help` or `hf COMMAND --help`"


def _is_usage_error(exc: BaseException) -> bool:
    """click's own errors (bad usage, a bad value), by their documented interface:
    click is typer's to import (older typers use click itself, newer ones carry
    their own copy)."""
    return callable(getattr(exc, "format_message", None)) and \
        isinstance(getattr(exc, "exit_code", None), int)


def _known(exc: BaseException, command: str) -> HfError | None:
    """`exc` as the one-line error it is: a full disk or a failing file system is
    said as such (also when git is what met it); None: a bug."""
    from hf_fanout.errors import GitFailed, storage_error, unusable_file_error

    if isinstance(exc, OSError | GitFailed):
        found = storage_error(exc, f"running `hf {command}`",
                              "nothing is half-written (hf replaces each file it writes "
                              "whole), and what was written before stays as it was",
                              where=".") or unusable_file_error(exc, command)
        if found is not None:
            return found
    return exc if isinstance(exc, HfError) else None


def _bug(exc: BaseException) -> int:
    from hf_fanout.cli import output

    log = _save_crash(exc)
    output.emit_error("bug", f"internal error: {type(exc).__name__}: {exc}",
                      f"this is a bug in hf; the traceback is in {log}")
    return EXIT_BUG


def _save_crash(exc: BaseException) -> str:
    import traceback

    from hf_fanout import __version__
    from hf_fanout.config import user_state_dir

    directory = user_state_dir() / "crash"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        import os

        path = directory / f"crash-{timefmt.compact()}-{os.getpid()}.log"
        path.write_text(
            f"hf {__version__}\npython {sys.version}\nargv {sys.argv!r}\n\n"
            + "".join(traceback.format_exception(exc))
        )
        return str(path)
    except OSError:
        return "(could not write a crash log)"


def entry() -> None:
    """The `hf` program: main(), then out without tearing the interpreter down.

    Python's orderly shutdown (freeing every module, pygit2's and OpenSSL's
    cleanup) takes 0.05-0.07 s after a join, on the clock of every command,
    and nothing of hf's needs it: records are written and closed before
    main() returns, locks are released, child processes are waited for or
    detached. The output is flushed and the atexit handlers run (filelock's,
    a coverage tool's, a sitecustomize's), as at a normal exit. The normal
    exit runs instead under a profiler or tracer, while another non-daemon
    thread is alive (Python would wait for it), or when flushing fails (a
    closed pipe).
    """
    import atexit
    import threading

    code = main()
    if not _observed() and not any(
            t.is_alive() and not t.daemon and t is not threading.main_thread()
            for t in threading.enumerate()):
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            sys.exit(code)
        atexit._run_exitfuncs()
        os._exit(code)
    sys.exit(code)


def _observed() -> bool:
    """A profiler, tracer or debugger watches this process: through the old hooks,
    or (Python 3.12 on, cProfile among them) as a `sys.monitoring` tool."""
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return True
    monitoring = getattr(sys, "monitoring", None)
    return monitoring is not None and any(monitoring.get_tool(tool) is not None
                                          for tool in range(6))  # (tool ids 0-5)
