"""What only the person decides, refused when an agent asks: a process inside a
part (the marker in its environment or an ancestor's, or the sandbox) may act
on its own part only. Trusting configuration, accepting a changed fingerprint,
splitting, joining, dropping, collecting, and anything aimed at another part
are refused there with one line."""

from __future__ import annotations

from hf_fanout import processes
from hf_fanout.errors import InsidePart


def refuse_inside_part(what: str, own: str | None = None) -> None:
    """Refuse `what` from inside a part; `own` (`BATCH/PART`): allowed when it is
    the asking part itself."""
    inside = processes.inside_part()
    if inside is not None and inside.part != own:
        raise InsidePart(f"{what} from inside part {inside.part} ({inside.why})",
                         "only the person decides this: run it in a terminal of the "
                         "main tree, not under an agent")
