"""Runtimes that run inside sandboxes: the built-in Python bootstrap (stdlib only, started by path)."""
