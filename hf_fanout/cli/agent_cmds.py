"""`hf agent-event EVENT`, the typed command (see agent_fast.py for the hooks' way)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from hf_fanout.cli.agent_fast import payload_text, render
from hf_fanout.cli.options import DryRun, Json, PartOpt, RepoOpt, command, open_ws
from hf_fanout.cli.output import emit


@command(epilog="Example: echo '{\"hook_event_name\": \"Stop\"}' | hf agent-event stop "
             "--part b1/api   |   hf agent-event waiting", name="agent-event")
def agent_event(
    event: Annotated[str, typer.Argument(
        help="stop, notification, user-prompt-submit, pre-tool-use, session-end, "
        "codex-notify, working, waiting or exited.")],
    payload: Annotated[str | None, typer.Argument(
        help="The event's JSON (default: read from stdin, as hooks give it).")] = None,
    part: PartOpt = None,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Record what the part's agent is doing (run by the agent's hooks; JSON on stdin)."""
    from hf_fanout.orchestrator.agents import REFUSED, parse_payload, record_event

    ws = open_ws(repo)
    if part is None and os.environ.get("HF_BATCH") and os.environ.get("HF_PART"):
        part = f"{os.environ['HF_BATCH']}/{os.environ['HF_PART']}"
    target = ws.resolve_part(part, named_by="--part BATCH/PART")
    if dry_run:
        emit({"dry_run": True, "event": event},
             f"would record {event} for {target.batch}/{target.name}")
        return
    outcome = record_event(ws.repo.common_dir, target.batch, target.name, event,
                           parse_payload(payload_text(payload)))
    from hf_fanout.cli import output

    code = render(outcome, REFUSED, json_mode=output.CURRENT.json)
    if code:
        raise typer.Exit(code)
