"""Test harness: real servers (PostgreSQL, ...) for the test suite, kept apart from the tests using them."""
