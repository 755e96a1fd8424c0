"""The git adapter: every call to git or pygit2 goes through `git.py`."""
