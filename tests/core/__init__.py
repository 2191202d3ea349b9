"""Tests of the partition core: a Python reference model and the tests that hold the Rust core to it."""
