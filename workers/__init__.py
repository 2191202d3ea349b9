"""Leasehold's worker agent and sandboxes (arrives with the worker issue)."""
