"""Leasehold's append-only, fenced journal of partition records (protobuf messages in ``journal.v1``)."""
