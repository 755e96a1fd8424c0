"""`python -m hf_fanout` is `hf`."""

from hf_fanout.cli import entry

entry()
