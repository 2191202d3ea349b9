"""Argument checks of the journal's public calls: an int in a range, a partition number, an epoch.

They raise :class:`TypeError` (not an int; ``bool`` is refused) or :class:`ValueError` (out of range)
naming the argument. Any module may import them, inside the journal (the store's parts,
:mod:`journal.tail`, :mod:`journal.group_commit`) or outside it; this module imports nothing.

Example::

    partition = check_partition(partition)
    epoch = check_epoch(epoch)
    after_seq = check_int("after_seq", after_seq, 0, MAX_BIGINT)
"""

from __future__ import annotations

__all__ = ["MAX_BIGINT", "MAX_PARTITION", "check_epoch", "check_int", "check_partition"]

#: Partitions are numbered ``0 .. MAX_PARTITION`` (a PostgreSQL ``integer``).
MAX_PARTITION = 2**31 - 1
#: The largest seq or epoch (a PostgreSQL ``bigint``).
MAX_BIGINT = 2**63 - 1


def check_int(name: str, value: object, low: int, high: int) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) in ``low .. high``; else ``TypeError`` or ``ValueError``."""
    if value.__class__ is int and low <= value <= high:  # the common case, first
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value}")
    return value


def check_partition(partition: object) -> int:
    """A partition number, ``0 .. MAX_PARTITION``."""
    return check_int("partition", partition, 0, MAX_PARTITION)


def check_epoch(epoch: object) -> int:
    """An epoch, ``1 .. MAX_BIGINT``."""
    return check_int("epoch", epoch, 1, MAX_BIGINT)
