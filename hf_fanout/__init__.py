"""hf: run one coding task as parallel parts in git worktrees, joined back as one commit."""

__version__ = "0.1.0"
