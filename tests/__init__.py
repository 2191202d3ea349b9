"""Leasehold's tests: unit and integration tests per package."""
