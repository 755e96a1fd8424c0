"""Starting and ending a part's worker: `hf run -- CMD` and `hf stop`.

`hf run` starts CMD in its own process group with the part's marker in its
environment, records who it is, beats a heartbeat while it lives, records its
exit, and passes signals on. `hf stop` rescues the work, then ends the group
and anything else carrying the marker (children that started their own session).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hf_fanout import processes, timefmt
from hf_fanout.core import inbox, pauses
from hf_fanout.core.records import BLOCKED, DONE, JOINED, Part, now
from hf_fanout.core.remote_refs import refuse_remote_part, taken_from
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import BadInput, HfError
from hf_fanout.liveness import heartbeat, judge, rescue
from hf_fanout.orchestrator.lifecycle import mark_blocked

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
REMOTE_BEAT_GRACE = 10.0  # seconds `hf run` waits at its end for a remote beat still out
SANDBOX_LEFT_GRACE = 3.0  # seconds what is left in an ended sandbox has after SIGTERM


def marker_env(ws: Workspace, part: Part) -> dict[str, str]:
    return {"HF_BATCH": part.batch, "HF_PART": part.name, "HF_WORKTREE": part.worktree,
            "HF_REPO": str(ws.repo.common_dir)}


def heartbeat_interval(ws: Workspace, override: float | None) -> float:
    """`--heartbeat` (a number already), else heartbeat_seconds from the settings."""
    if override is None:
        return ws.settings.number("heartbeat_seconds", heartbeat.DEFAULT_HEARTBEAT_SECONDS)
    if override <= 0:
        raise BadInput("the heartbeat interval must be positive", "e.g. --heartbeat 30")
    return override


# The worker's first program: it waits until `hf run` has listed it as a worker (the
# main tree's hook refuses ref moves below a listed worker), then becomes the
# command (exec: the same process, pid and start time). Before, the agent could
# move a ref of the main repository in the moment before it was listed.
_GATE = """import os, sys
fd = int(sys.argv[1])
go = os.read(fd, 1)
os.close(fd)
if not go:
    sys.exit(1)
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as exc:
    sys.stderr.write(f"hf run: cannot start {sys.argv[2]!r}: {exc.strerror}\\n")
    sys.exit(127)
"""


def _foreground_preexec(tty: int | None, ignored: Sequence[int] = ()) -> Any:
    """In the child: its own process group, made the terminal's foreground group
    so an interactive agent can read the keyboard and gets Ctrl-C itself; the
    `ignored` signals ignored (the sandbox's own process, see guard/sandbox.py)."""

    def preexec() -> None:
        for signum in ignored:
            signal.signal(signum, signal.SIG_IGN)
        os.setpgid(0, 0)
        if tty is not None:
            with contextlib.suppress(OSError):
                old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
                os.tcsetpgrp(tty, os.getpgrp())
                signal.signal(signal.SIGTTOU, old)

    return preexec


def run_worker(ws: Workspace, part: Part, command: Sequence[str], *, interval: float,
               done_on_success: bool, on_start: Any = None, sandboxed: bool | None = None,
               say: Callable[[str, str], None] | None = None,
               force: bool = False) -> dict[str, Any]:
    """Run `command` as the part's worker until it ends, in the part's sandbox
    unless `sandboxed` is False (None: the `sandbox` setting). `force` goes over
    the live-agent limit. Returns the exit record."""
    if not command:
        raise BadInput("no command to run", "hf run -- CMD ARGS..., e.g. hf run -- claude")
    if part.state == JOINED:
        raise HfError(f"part {part.batch}/{part.name} is already joined",
                      "nothing to work on; start a new batch")
    refuse_remote_part(part, "its worker runs")
    if judge.worker_alive(part):
        raise HfError(
            f"part {part.batch}/{part.name} already has a live worker "
            f"(pid {(part.worker or {}).get('pid')})",
            f"end it first (`hf stop {part.batch}/{part.name}`), or work in that tab")
    pauses.refuse_if_paused(ws, f"hf run {part.batch}/{part.name}", part.batch)
    if inbox.sandboxed():
        raise HfError("hf run inside a part's sandbox", "the part's worker already runs; "
                      "start other work from the main tree")
    from hf_fanout.orchestrator.limits import agent_slot

    # the limits are checked holding the user's agents lock, let go once the worker
    # is recorded: a second `hf run` started meanwhile counts this one
    with agent_slot(ws, f"hf run {part.batch}/{part.name}", force=force):
        child, gate, worker, box, tty = _start(ws, part, command, sandboxed, say)
        part = judge.record_worker(ws, part, worker)
    watch = _SandboxWatch(child.pid) if box is not None else None
    received: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        received.append(signum)
        processes.signal_group(child.pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    code = 1
    stop_beating = threading.Event()
    remote_beats: _RemoteBeats | None = None
    seen = _Activity(started=time.time())
    try:
        from hf_fanout.guard import mainhook  # (here: `hf heartbeat` loads this module)

        mainhook.add_worker(ws.repo.common_dir, child.pid, part.branch)
        with contextlib.suppress(OSError):  # (a gate already gone: a worker that ended)
            os.write(gate, b"\n")  # listed: the command starts now
        os.close(gate)
        gate = -1
        heartbeat.beat(ws.store, part.batch, part.name, active=time.time(), by="hf run")
        remote_beats = _RemoteBeats(ws, part)
        remote_beats.kick()
        if on_start is not None:
            on_start(worker)
        beater = threading.Thread(target=_beat_loop, daemon=True,
                                  args=(ws, part, child.pid, interval, stop_beating, seen,
                                        judge.idle_seconds(ws), box is not None,
                                        remote_beats))
        beater.start()
        while True:
            try:
                code = child.wait()
                break
            except InterruptedError:
                continue
    finally:
        if gate >= 0:  # (never listed: the gate reads an end and the command never starts)
            os.close(gate)
        stop_beating.set()
        if remote_beats is not None:
            remote_beats.finish(REMOTE_BEAT_GRACE)
        with contextlib.suppress(HfError, OSError):
            from hf_fanout.guard import mainhook

            mainhook.remove_worker(ws.repo.common_dir, child.pid)
        for forwarded, handler in previous.items():
            signal.signal(forwarded, handler)
        if tty is not None:
            with contextlib.suppress(OSError):
                old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
                os.tcsetpgrp(tty, os.getpgrp())
                signal.signal(signal.SIGTTOU, old)
    ran: dict[str, float] = seen.summary(time.time())
    if watch is not None:
        left = watch.end_left(SANDBOX_LEFT_GRACE)
        if left:
            ran["left_in_sandbox"] = len(left)
            ws.store.audit("sandbox-left", batch=part.batch, part=part.name, pids=left)
            if say is not None:
                say(f"hf run: the sandbox of {part.batch}/{part.name} ended with "
                    f"{len(left)} process(es) still in it (pids "
                    f"{', '.join(map(str, left))}): ended them",
                    "nothing supervised them any more; `hf run` again to go on")
    if box is not None:
        # bubblewrap reports a command killed by signal N as exit 128+N
        apply_inbox(ws, part)
        if code > 128 and code - 128 in {s.value for s in signal.Signals}:
            code = -(code - 128)
        part = ws.store.load_part(part.batch, part.name)
    sig: int | None = -code if code < 0 else None
    part, marked_done = judge.record_exit(ws, part, None if sig else code, sig,
                                          done=done_on_success and code == 0,
                                          ran=ran)
    return {"exit": part.exit, "worker": worker, "done": marked_done,
            "returncode": 128 + sig if sig else code, "signals": received}


def _start(ws: Workspace, part: Part, command: Sequence[str], sandboxed: bool | None,
           say: Callable[[str, str], None] | None) -> tuple[Any, int, dict[str, Any], Any,
                                                           int | None]:
    """Start `command` as the part's worker (in its sandbox where there is one), in a
    process group of its own, the terminal's foreground group when there is a
    terminal, held at its gate (`_GATE`) until a byte is written to the gate's file
    descriptor. Returns the child, that descriptor, its worker record, the sandbox
    and the terminal."""
    env = {**os.environ, **marker_env(ws, part)}
    box, why = choose_sandbox(ws, part, sandboxed)
    argv = list(command)
    ignored: Sequence[int] = ()
    if box is not None:
        argv = [*box.prefix, *command]
        env.update(box.env)
        ignored = box.ignored_signals
        if say is not None and (Path(ws.repo.common_dir) / "lfs").is_dir():
            say(f"hf run: this repository uses git-lfs, whose store the sandbox of "
                f"{part.batch}/{part.name} keeps read-only: the agent's `git add` of an "
                "LFS file fails there", "leave LFS files uncommitted (the join takes "
                "them), or run this part with --no-sandbox")
    elif say is not None:
        say(f"hf run: no sandbox for {part.batch}/{part.name}: {why}; the agent can write "
            "the main tree and other parts, the guard only refuses git commands and "
            "reports the rest", "see `hf doctor` and docs/guard.md")
    tty: int | None = None
    with contextlib.suppress(OSError):
        if os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp():
            tty = 0
    cwd = Path.cwd() if Path(part.worktree) in (Path.cwd(), *Path.cwd().parents) \
        else Path(part.worktree)
    # (as the gate's exec finds it: on PATH, or a path from the worker's folder)
    if ("/" in argv[0] and not os.access(cwd / argv[0], os.X_OK)) or \
            ("/" not in argv[0] and shutil.which(argv[0], path=env.get("PATH")) is None):
        raise BadInput(f"cannot start {command[0]!r}: no such program", "check the command "
                       "name, that it is on PATH and that it may be run")
    wait_for, gate = os.pipe()
    try:
        child = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _GATE, str(wait_for), *argv], cwd=cwd, env=env,
            pass_fds=(wait_for,), preexec_fn=_foreground_preexec(tty, ignored))  # noqa: PLW1509
    except OSError as exc:
        os.close(gate)
        raise BadInput(f"cannot start {command[0]!r}: {exc.strerror}",
                       "check the command name and that it is on PATH") from None
    finally:
        os.close(wait_for)
    ident = processes.identity_of(child.pid)
    worker = {
        **(ident.to_dict() if ident is not None else
           {"pid": child.pid, "started": time.time(), "host": processes.host()}),
        "pgid": child.pid,
        "command": shlex.join(command),
        "since": now(),
        "supervisor_pid": os.getpid(),
        "supervisor": _own_identity(),
        "sandbox": box.kind if box is not None else f"none: {why}",
    }
    return child, gate, worker, box, tty


def choose_sandbox(ws: Workspace, part: Part, wanted: bool | None) -> tuple[Any, str]:
    """(the part's sandbox, "") or (None, why there is none)."""
    from hf_fanout.guard import sandbox

    if wanted is None:
        wanted = ws.settings.get("sandbox", True) is not False
    if not wanted:
        return None, "switched off (--no-sandbox, or sandbox = false)"
    found = sandbox.availability()
    if not found.usable:
        return None, found.reason
    return sandbox.prepare(ws, part, found.path), ""


def apply_inbox(ws: Workspace, part: Part) -> None:
    from hf_fanout.orchestrator.inbox import apply

    apply(ws, part)


def _own_identity() -> dict[str, Any]:
    ident = processes.identity_of(os.getpid())
    return ident.to_dict() if ident is not None else {}


class _SandboxWatch:
    """The mount namespace of the worker's sandbox, found by a thread of its own as
    soon as bubblewrap's child is there. Every process started in the sandbox stays
    in it; when bubblewrap's process ends (its command finished, or something killed
    it) with some still there, nothing supervises them: `end_left` ends them, so a
    part never has an agent at work that its record says has exited."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.held: tuple[str, int] | None = None  # the namespace, and a handle keeping it
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._find, daemon=True)
        self.thread.start()

    def _find(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.held is None:
            self.held = processes.hold_child_namespace(self.pid)
            if self.held is None and self.ended.wait(0.02):
                return

    def end_left(self, grace: float) -> list[int]:
        """The pids that were still in the sandbox (SIGTERMed, then SIGKILLed after
        `grace`). Never this process's own namespace's: only the one held since
        bubblewrap's child was found, which no other namespace can have taken."""
        self.ended.set()
        self.thread.join(1)
        if self.thread.is_alive() or self.held is None:
            return []
        namespace, handle = self.held
        try:
            if namespace == processes.mount_namespace(os.getpid()):
                return []
            ended = processes.end_pids(lambda: processes.in_mount_namespace(namespace), grace)
            return ended["terminated"]
        finally:
            os.close(handle)
            self.held = None


@dataclass
class _Activity:
    """What the heartbeat thread saw of the worker: its idle spans (alive, no CPU
    used for the idle threshold), read by `run_worker` when the worker ends."""

    started: float
    idle_since: float | None = None  # its last sign of work, while it is idle
    idle_total: float = 0.0

    def summary(self, ended: float) -> dict[str, float]:
        idle = self.idle_total + (ended - self.idle_since if self.idle_since else 0.0)
        return {"seconds": round(ended - self.started, 3), "idle_seconds": round(idle, 3)}


def _beat_loop(ws: Workspace, part: Part, pid: int, interval: float,
               stop: threading.Event, seen: _Activity, idle_after: float,
               inbox_too: bool = False, remote_beats: _RemoteBeats | None = None) -> None:
    """Beat every `interval` while the worker lives; `active` moves only when the
    worker's process tree used CPU since the last beat (an agent waiting at its
    prompt is alive but idle). The audit log gets the worker's idle spans
    (`worker-idle` once no CPU moved for `idle_after` s, `worker-active` when it
    moves again) and a gap between beats far longer than the interval (this
    process was suspended: a sleeping laptop, SIGSTOP), `heartbeat-gap`. With
    `inbox_too` (a sandboxed worker), every half second between beats the part's
    inbox is applied and a new state its agent reported is told to the person (its
    tmux window's mark, a notification: out of the sandbox's reach)."""
    from hf_fanout.orchestrator.agents import relay_state

    common = ws.repo.common_dir
    told = relay_state(common, part.batch, part.name, None) if inbox_too else None
    last_cpu = processes.cpu_seconds(pid)
    last_active = last_beat = time.time()
    where = {"batch": part.batch, "part": part.name, "pid": pid}
    next_beat = time.monotonic() + interval
    while not stop.wait(min(0.5, interval) if inbox_too else interval):
        if inbox_too:
            with contextlib.suppress(HfError, OSError):
                apply_inbox(ws, part)
            with contextlib.suppress(OSError):
                told = relay_state(common, part.batch, part.name, told)
            if time.monotonic() < next_beat:
                continue
        next_beat = time.monotonic() + interval
        cpu = processes.cpu_seconds(pid)
        if cpu is None:
            return
        now = time.time()
        with contextlib.suppress(OSError):
            if now - last_beat > 3 * interval + 1:
                ws.store.audit("heartbeat-gap", seconds=round(now - last_beat, 1), **where)
            last_beat = now
            moved = last_cpu is None or cpu > last_cpu + 0.01
            last_cpu = cpu
            if moved:
                last_active = now
                if seen.idle_since is not None:
                    idle = now - seen.idle_since
                    seen.idle_total, seen.idle_since = seen.idle_total + idle, None
                    ws.store.audit("worker-active", idle_seconds=round(idle, 1), **where)
            elif seen.idle_since is None and now - last_active >= idle_after:
                seen.idle_since = last_active
                ws.store.audit("worker-idle", since=timefmt.iso(last_active),
                               since_t=round(last_active, 3), **where)
            heartbeat.beat(ws.store, part.batch, part.name, active=now if moved else None,
                           by="hf run")
        if remote_beats is not None:  # a part taken from a remote: seen there too
            remote_beats.kick()


class _RemoteBeats:
    """A taken part's heartbeats on its remote, pushed from a thread of their own and
    one at a time: a remote slow to answer, or not answering at all, never holds the
    local beats (nor the inbox) up."""

    def __init__(self, ws: Workspace, part: Part) -> None:
        self.ws, self.part = ws, part
        self.taken = taken_from(part) is not None
        self.thread: threading.Thread | None = None

    def kick(self) -> None:
        """Beat on the remote, unless it is not a taken part or a beat is still out."""
        if not self.taken or (self.thread is not None and self.thread.is_alive()):
            return
        self.thread = threading.Thread(target=self._beat, daemon=True)
        self.thread.start()

    def _beat(self) -> None:
        with contextlib.suppress(HfError, OSError):
            _beat_remote(self.ws, self.part)

    def finish(self, grace: float) -> None:
        """Give the beat still out `grace` seconds to land (an atomic push: it lands
        whole or not at all), then leave it."""
        if self.thread is not None:
            self.thread.join(grace)


def _beat_remote(ws: Workspace, part: Part) -> dict[str, Any] | None:
    from hf_fanout.orchestrator.take import beat_remote

    return beat_remote(ws, part)


# --- stop --------------------------------------------------------------------


def stop_parts(ws: Workspace, batch_id: str, part_name: str | None, *, grace: float,
               dry_run: bool) -> list[dict[str, Any]]:
    from hf_fanout.orchestrator.boundary import refuse_inside_part

    if not dry_run:
        refuse_inside_part(f"hf stop {batch_id}" + (f"/{part_name}" if part_name else ""),
                           own=f"{batch_id}/{part_name}" if part_name else None)
    batch = ws.store.load_batch(batch_id)
    names = [part_name] if part_name else batch.parts
    results = []
    for name in names:
        part = ws.store.load_part(batch_id, name)
        results.append(_stop_one(ws, part, grace=grace, dry_run=dry_run))
    return results


def _stop_one(ws: Workspace, part: Part, *, grace: float, dry_run: bool) -> dict[str, Any]:
    from hf_fanout.core.remote_refs import remote_of

    # (a part worked through a remote has no process here: only its record is blocked)
    result: dict[str, Any] = {"batch": part.batch, "part": part.name, "state": part.state,
                              "remote": remote_of(part)}
    ident = judge.worker_identity(part)
    groups = []
    # Signal the recorded group only while its leader is still the recorded
    # process, by start time and by the exit `hf run` recorded (a pid reused
    # within one clock tick reads the same start time): a reused pid belongs
    # to someone else.
    if ident is not None and judge.worker_alive(part):
        groups.append(int((part.worker or {}).get("pgid") or ident.pid))
    result["groups"] = groups
    if dry_run:
        result["would_signal"] = {"groups": groups, "marked": processes.marked(
            str(ws.repo.common_dir), part.batch, part.name)}
        return result
    if part.state != JOINED and Path(part.worktree).is_dir():
        try:
            result["rescue"] = rescue.rescue(ws, part, "stopped by `hf stop`")
        except HfError as exc:
            result["rescue"] = {"error": exc.message}
    repo = str(ws.repo.common_dir)
    result.update(processes.end_processes(groups, repo, part.batch, part.name, grace))
    result["left"] = processes.marked(repo, part.batch, part.name)
    if part.state not in (JOINED, DONE):
        mark_blocked(ws, part, "stopped")
        result["state"] = BLOCKED
    ws.store.audit("stop", batch=part.batch, part=part.name, groups=groups,
                   killed=result.get("killed"))
    return result

