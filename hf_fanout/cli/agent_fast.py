"""`hf agent-event EVENT` on its fast way: the command agents' hooks run on every step.

`fast` serves it without building the command line (no typer, no git) when
the part is known from the environment or `--part` and the repository from
`HF_REPO`: the hook's cost is the agent's wait. Everything else (`--help`,
`--repo`, a part found from the directory) goes through the typed command.
Like the writer it calls (orchestrator/agents.py), it loads no pathlib or typing.
"""

from __future__ import annotations

import os
import sys


def payload_text(argument: str | None) -> str:
    """The hook's JSON: Codex passes it as the last argument, Claude Code on stdin."""
    if argument is not None:
        return argument
    if sys.stdin is None or sys.stdin.isatty():
        return ""
    try:
        return sys.stdin.read()  # whole: see parse_payload
    except (OSError, ValueError):
        return ""


def fast(args: list[str]) -> int | None:
    """`hf agent-event ...` answered directly; None when the typed command must."""
    words = args[1:]
    part = os.environ.get("HF_BATCH", "") + "/" + os.environ.get("HF_PART", "")
    positional: list[str] = []
    json_mode = False
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--part" and i + 1 < len(words):
            part, i = words[i + 1], i + 2
            continue
        if word == "--json":
            json_mode, i = True, i + 1
            continue
        if word.startswith("-") and word != "-":
            return None  # --help, --repo, --dry-run, --part=...: the typed command
        positional.append(word)
        i += 1
    batch, _, name = part.partition("/")
    common = os.environ.get("HF_REPO")
    if not (batch and name and common) or not 1 <= len(positional) <= 2:
        return None
    from hf_fanout.errors import HfError
    from hf_fanout.orchestrator.agents import REFUSED, parse_payload, record_event

    event = positional[0]
    payload = parse_payload(payload_text(positional[1] if len(positional) > 1 else None))
    try:
        outcome = record_event(common, batch, name, event, payload)
    except HfError as exc:
        from hf_fanout.cli import output

        output.start("agent-event", json_mode)
        output.emit_error(exc.code, exc.message, exc.hint)
        return exc.exit_code
    return render(outcome, REFUSED, json_mode=json_mode)


def render(outcome: object, refused_code: int, *, json_mode: bool = True) -> int:
    data = outcome.to_data()  # type: ignore[attr-defined]
    if json_mode:  # nothing on stdout without --json: a hook's stdout reaches the agent
        from hf_fanout.cli import output

        output.start("agent-event", True)
        output.emit(data)
    if data["refused"]:
        print(data["refused"], file=sys.stderr)
        return refused_code
    return 0


