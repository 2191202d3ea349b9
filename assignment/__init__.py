"""Leasehold's assignment service: partitions, leases, placement and the control plane around them.

The hot path lives in the Rust extension ``assignment._core``; :mod:`assignment.partition_core` is the
only module of this package that imports it (the journal reaches its record checker through
``journal.native``: the extension sits below both packages).
"""
