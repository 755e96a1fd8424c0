"""Launchers: open a tab (tmux window, editor window, terminal) on a worktree.

A `Tab` says what to run where; a launcher says how to put it in front of a
person. Every command line is built as an argv list, or, where a shell line
is unavoidable (print, custom templates, osascript), quoted with shlex, so
paths with spaces and quotes survive.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hf_fanout.errors import BadInput, HfError
from hf_fanout.tabs import window_marks
from hf_fanout.tabs.environment import child_env, guard_bin


class LauncherUnavailable(HfError):
    code = "launcher_unavailable"


class LaunchFailed(HfError):
    code = "launch_failed"


@dataclass
class Tab:
    """One tab to open: `argv` runs in `worktree` with `variables` and the guard on PATH."""

    name: str  # window title: the part's name, or the queue entry's task
    group: str  # the batch id, or "queue": one tmux session per group
    worktree: Path
    branch: str
    batch: str
    part: str
    handoff: Path
    variables: dict[str, str]
    argv: list[str]

    def env(self) -> dict[str, str]:
        return child_env(self.variables, guard=True)

    def env_argv(self) -> list[str]:
        """`env K=V ... PATH=<guard>:$PATH argv...`: for hosts that do not pass env on."""
        path = os.pathsep.join([str(guard_bin()), os.environ.get("PATH", os.defpath)])
        pairs = [f"{k}={v}" for k, v in self.variables.items()]
        return ["env", *pairs, f"PATH={path}", *self.argv]

    def shell_line(self) -> str:
        """One POSIX shell line that runs the tab's command; `$PATH` expands where pasted."""
        assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.variables.items())
        path = f'PATH={shlex.quote(str(guard_bin()))}:"$PATH"'
        return f"cd {shlex.quote(str(self.worktree))} && {assigns} {path} {shlex.join(self.argv)}"

    def placeholders(self) -> dict[str, str]:
        return {
            "worktree": str(self.worktree),
            "branch": self.branch,
            "batch": self.batch,
            "part": self.part,
            "handoff": str(self.handoff),
            "name": self.name,
            "port": self.variables.get("HF_PORT", ""),
        }


@dataclass
class Opened:
    """What a launcher did for one tab."""

    tab: str
    launcher: str
    action: str  # opened | alive | printed | would-open
    command: str  # the command line run (or to run), quoted for a POSIX shell
    target: str = ""  # where the tab is, e.g. tmux `hf-b1:api`
    hint: str = ""

    def to_data(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _detach(argv: list[str], tab: Tab) -> None:
    """Start a host program (an editor, a terminal) and let it live on its own."""
    try:
        subprocess.Popen(argv, cwd=tab.worktree, env=tab.env(), stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    except OSError as exc:
        raise LaunchFailed(f"cannot start {argv[0]}: {exc}",
                           "check that it is installed, or pick another --launcher") from None


@dataclass
class Launcher:
    name: str

    def available(self) -> bool:
        raise NotImplementedError

    def command(self, tab: Tab) -> str:
        """The command line this launcher runs for `tab`, quoted for a shell."""
        raise NotImplementedError

    def open(self, tab: Tab) -> Opened:
        raise NotImplementedError

    def alive(self, tab: Tab) -> bool | None:
        """Whether `tab` is open now; None when the host cannot tell."""
        del tab
        return None

    def focus(self, tab: Tab) -> Opened:
        return Opened(tab.name, self.name, "alive", self.command(tab))


# --------------------------------------------------------------------- tmux


@dataclass
class Tmux(Launcher):
    """One session per batch (`hf-<batch>`), one window per part, named after it."""

    name: str = "tmux"
    socket: str | None = None  # tmux -L NAME (config `tmux_socket`)

    def available(self) -> bool:
        return shutil.which("tmux") is not None

    def _base(self) -> list[str]:
        return ["tmux", *(["-L", self.socket] if self.socket else [])]

    def _tmux(self, *args: str, check: bool = True,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self._base(), *args], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, env=env, check=False)
        if check and proc.returncode != 0:
            raise LaunchFailed(f"`tmux {args[0]}` failed: {proc.stderr.strip()}",
                               "run the same tmux command yourself to see why")
        return proc

    @staticmethod
    def session(tab: Tab) -> str:
        return window_marks.session(tab.group)

    def windows(self, session: str, *, dead: bool = False) -> dict[str, str] | None:
        """tab name -> window id of `session`'s windows whose agent lives (with `dead`:
        those whose agent exited, kept open to be read); None when there is no
        such session. A window is known by its `@hf_part` option (its name shows
        the part's state, see window_marks.py), else by its name."""
        proc = self._tmux("list-windows", "-t", f"={session}", "-F",
                          f"#{{{window_marks.OPTION}}}\t#{{window_name}}\t#{{window_id}}"
                          "\t#{pane_dead}", check=False)
        if proc.returncode != 0:
            return None
        found: dict[str, str] = {}
        for line in proc.stdout.splitlines():
            tab_name, name, window_id, is_dead = line.split("\t")
            if (is_dead == "1") == dead:
                found.setdefault(tab_name or name, window_id)
        return found

    def activity(self, session: str) -> dict[str, float]:
        """tab name -> when each live window of `session` last showed output (tmux's
        `window_activity`), in one `list-windows`; empty without such a session."""
        proc = self._tmux("list-windows", "-t", f"={session}", "-F",
                          f"#{{{window_marks.OPTION}}}\t#{{window_name}}\t"
                          "#{window_activity}\t#{pane_dead}", check=False)
        found: dict[str, float] = {}
        for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
            tab_name, name, activity, is_dead = line.split("\t")
            if is_dead != "1" and activity.isdigit():
                found.setdefault(tab_name or name, float(activity))
        return found

    def _window_args(self, tab: Tab) -> list[str]:
        # tmux gives a new pane the PATH of the client that asks for it (not -e PATH):
        # the client runs with the tab's environment, see open().
        # tmux expands formats (`#(command)` runs a shell command) in a window's name
        # and in `-c DIR`, not in `-e` values nor in the command's words: the name's
        # `#` is doubled, and the directory travels in a variable the command cd's to.
        args = ["-n", tab.name.replace("#", "##")]
        for key, value in {**tab.variables, "HF_TAB_DIR": str(tab.worktree)}.items():
            args += ["-e", f"{key}={value}"]
        return [*args, "--", *self._shell(tab)]

    @staticmethod
    def _shell(tab: Tab) -> list[str]:
        # More than one word: tmux runs the command directly, no shell of its own.
        # The window stays open when the agent exits (remain-on-exit), so its last
        # output can be read; the line below it says what now.
        hint = (f"[hf] the agent exited with code %s; `hf status`, or `hf open "
                f"{tab.batch}/{tab.part}` to start it again here\n") if tab.part else \
            "[hf] the command exited with code %s\n"
        return ["sh", "-c", 'cd "$HF_TAB_DIR" || exit; "$@"; code=$?; '
                f"printf {shlex.quote(hint)} \"$code\"; exit \"$code\"", "hf-tab", *tab.argv]

    def _keep(self, tab: Tab) -> list[str]:
        """The tmux command, after the one making the window, that keeps it open once
        its agent exits (run in the same client call: before the agent can end)."""
        # (a target is not a format: the window's name as tmux made it, `#` and all)
        target = f"={self.session(tab)}:{tab.name}"
        return [";", "set-option", "-w", "-t", target, "remain-on-exit", "on",
                ";", "set-option", "-w", "-t", target, window_marks.OPTION, tab.name]

    def _new_session(self, tab: Tab) -> list[str]:
        return ["new-session", "-d", "-s", self.session(tab), "-x", "200", "-y", "50",
                *self._window_args(tab)]

    def _new_window(self, tab: Tab) -> list[str]:
        return ["new-window", "-d", "-t", f"={self.session(tab)}:", *self._window_args(tab)]

    def command(self, tab: Tab) -> str:
        existing = self.windows(self.session(tab)) if self.available() else None
        args = self._new_window(tab) if existing is not None else self._new_session(tab)
        return shlex.join([*self._base(), *args])

    def alive(self, tab: Tab) -> bool:
        return tab.name in (self.windows(self.session(tab)) or {})

    def open(self, tab: Tab) -> Opened:
        session = self.session(tab)
        exited = (self.windows(session, dead=True) or {}).get(tab.name)
        if exited:  # its agent exited and the window was kept: start it again in place
            args = ["respawn-window", "-k", "-t", exited, *self._window_args(tab)[2:]]
            # its name showed the state it ended in: plain again, it works anew
            self._tmux(*args, ";", "rename-window", "-t", exited,
                       window_marks.label(tab.name, ""), env=tab.env())
            return self._opened(tab, args)
        if self.windows(session) is None:
            args = self._new_session(tab)
            proc = self._tmux(*args, *self._keep(tab), check=False, env=tab.env())
            if proc.returncode != 0 and "duplicate session" not in proc.stderr:
                raise LaunchFailed(f"`tmux new-session` failed: {proc.stderr.strip()}",
                                   "run `tmux new-session` yourself to see why")
            if proc.returncode == 0:
                return self._opened(tab, args)
        args = self._new_window(tab)
        self._tmux(*args, *self._keep(tab), env=tab.env())
        return self._opened(tab, args)

    def _opened(self, tab: Tab, args: list[str]) -> Opened:
        session = self.session(tab)
        return Opened(tab.name, self.name, "opened", shlex.join([*self._base(), *args]),
                      f"{session}:{tab.name}", f"tmux {self._socket_flag()}attach -t {session}")

    def _socket_flag(self) -> str:
        return f"-L {shlex.quote(self.socket)} " if self.socket else ""

    def capture(self, target: str, lines: int = 20) -> str | None:
        """The last `lines` lines the window `target` (`session:tab name`, as `open`
        records it) shows (`capture-pane`); None when it is gone."""
        session, _, name = target.partition(":")
        window = (self.windows(session) or {}).get(name)
        if window is None:
            return None
        proc = self._tmux("capture-pane", "-p", "-t", window, "-S", f"-{lines}",
                          check=False)
        return proc.stdout if proc.returncode == 0 else None

    def focus(self, tab: Tab) -> Opened:
        session = self.session(tab)
        window = (self.windows(session) or {}).get(tab.name)
        if window:
            self._tmux("select-window", "-t", window, check=False)
            if os.environ.get("TMUX"):
                self._tmux("switch-client", "-t", f"={session}", check=False)
        return Opened(tab.name, self.name, "alive", "", f"{session}:{tab.name}",
                      f"tmux {self._socket_flag()}attach -t {session}")


# --------------------------------------------------------------------- editors


@dataclass
class Editor(Launcher):
    """A new editor window on the worktree (VS Code, Cursor). The agent is the editor's."""

    program: str = ""

    def available(self) -> bool:
        return shutil.which(self.program) is not None

    def argv(self, tab: Tab) -> list[str]:
        return [self.program, "--new-window", str(tab.worktree)]

    def command(self, tab: Tab) -> str:
        return shlex.join(self.argv(tab))

    def open(self, tab: Tab) -> Opened:
        _detach(self.argv(tab), tab)
        return Opened(tab.name, self.name, "opened", self.command(tab), str(tab.worktree),
                      f"in the editor's terminal: {tab.shell_line()}")


# --------------------------------------------------------------------- terminals


def _applescript_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


TERMINALS: dict[str, Callable[[Tab], list[str]]] = {
    "gnome-terminal": lambda t: ["gnome-terminal", f"--working-directory={t.worktree}",
                                 f"--title={t.group}/{t.name}", "--", *t.env_argv()],
    "konsole": lambda t: ["konsole", "--workdir", str(t.worktree), "-e", *t.env_argv()],
    "kitty": lambda t: ["kitty", "--directory", str(t.worktree), "--title",
                        f"{t.group}/{t.name}", *t.env_argv()],
    "wezterm": lambda t: ["wezterm", "start", "--cwd", str(t.worktree), "--", *t.env_argv()],
    "osascript": lambda t: ["osascript", "-e", "tell application \"Terminal\" to do script "
                            + _applescript_string(t.shell_line())],
}


@dataclass
class Terminal(Launcher):
    """The platform's terminal: the first of TERMINALS found (osascript only on macOS)."""

    name: str = "terminal"

    def program(self) -> str | None:
        for program in TERMINALS:
            if program == "osascript" and sys.platform != "darwin":
                continue
            if shutil.which(program):
                return program
        return None

    def available(self) -> bool:
        return self.program() is not None

    def argv(self, tab: Tab) -> list[str]:
        program = self.program()
        if program is None:
            raise LauncherUnavailable("no terminal program found",
                                      f"install one of {', '.join(TERMINALS)}")
        return TERMINALS[program](tab)

    def command(self, tab: Tab) -> str:
        return shlex.join(self.argv(tab))

    def open(self, tab: Tab) -> Opened:
        argv = self.argv(tab)
        _detach(argv, tab)
        return Opened(tab.name, self.name, "opened", shlex.join(argv), argv[0])


# --------------------------------------------------------------------- print, custom


@dataclass
class Print(Launcher):
    """Prints the command to run in a tab of your own; opens nothing."""

    name: str = "print"

    def available(self) -> bool:
        return True

    def command(self, tab: Tab) -> str:
        return tab.shell_line()

    def open(self, tab: Tab) -> Opened:
        return Opened(tab.name, self.name, "printed", self.command(tab))


PLACEHOLDER = re.compile(r"\{([a-z]+)\}")
TEMPLATE_FIELDS = ("worktree", "branch", "batch", "part", "handoff", "name", "port", "command")


def fill_shell_template(template: str, values: dict[str, str]) -> str:
    """`template` with each known `{name}` replaced by its shell-quoted value."""

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            return match.group(0)
        return shlex.quote(values[key])

    return PLACEHOLDER.sub(replace, template)


def check_template(template: str, allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(PLACEHOLDER.findall(template)) - set(allowed))
    if unknown:
        raise BadInput(f"unknown placeholder {{{unknown[0]}}} in {where}",
                       "placeholders: " + " ".join(f"{{{a}}}" for a in allowed))


@dataclass
class Custom(Launcher):
    """A command template, run by /bin/sh with each placeholder shell-quoted.

    `{command}` is the tab's whole command as one shell line (cd, variables,
    guard PATH, agent), for templates such as `alacritty -e sh -c {command}`.
    """

    name: str = "custom"
    template: str = ""

    def available(self) -> bool:
        return bool(self.template.strip())

    def command(self, tab: Tab) -> str:
        return fill_shell_template(self.template, {**tab.placeholders(),
                                                   "command": tab.shell_line()})

    def open(self, tab: Tab) -> Opened:
        line = self.command(tab)
        _detach(["/bin/sh", "-c", line], tab)
        return Opened(tab.name, self.name, "opened", line)


# --------------------------------------------------------------------- choosing one

BUILT_IN = ("tmux", "vscode", "cursor", "terminal", "print")


def all_launchers(settings: Any) -> dict[str, Launcher]:
    socket = settings.get("tmux_socket")
    return {
        "tmux": Tmux(socket=str(socket) if socket else None),
        "vscode": Editor("vscode", "code"),
        "cursor": Editor("cursor", "cursor"),
        "terminal": Terminal(),
        "print": Print(),
    }


def available_names(settings: Any) -> list[str]:
    names = [n for n, launcher in all_launchers(settings).items() if launcher.available()]
    template = settings.get("launcher_command")
    if isinstance(template, str) and template.strip():
        names.append("custom")
    return names


def choose(settings: Any, name: str | None) -> Launcher:
    """`name` (a built-in, `custom`, or a template with `{...}`), else the configured
    `launcher`, else tmux when installed, else print."""
    launchers = all_launchers(settings)
    wanted = name or settings.get("launcher")
    if not wanted:
        return launchers["tmux"] if launchers["tmux"].available() else launchers["print"]
    if not isinstance(wanted, str):
        raise BadInput(f"launcher = {wanted!r} is not a name", "e.g. launcher = \"tmux\"")
    if "{" in wanted:
        check_template(wanted, TEMPLATE_FIELDS, "the launcher template")
        return Custom(template=wanted)
    if wanted == "custom":
        template = settings.get("launcher_command")
        if not isinstance(template, str) or not template.strip():
            raise LauncherUnavailable(
                "launcher custom is not available: no launcher_command is configured; "
                f"available: {', '.join(available_names(settings))}",
                "set launcher_command = \"... {worktree} ...\" in .hf.toml or your config")
        check_template(template, TEMPLATE_FIELDS, "launcher_command")
        return Custom(template=template)
    launcher = launchers.get(wanted)
    if launcher is None or not launcher.available():
        what = "unknown" if launcher is None else "not available here"
        raise LauncherUnavailable(
            f"launcher {wanted} is {what}; available: {', '.join(available_names(settings))}",
            f"pick one with --launcher, or set launcher in .hf.toml (built in: "
            f"{', '.join(BUILT_IN)}, or a command template with {{worktree}})")
    return launcher
