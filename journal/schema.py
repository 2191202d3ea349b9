"""The journal's tables (SQLAlchemy Core); the migrations in ``journal/migrations`` create them.

* ``partition_head`` — one row per partition, the fence: ``epoch`` (bumped by every take-over),
  ``next_seq`` (the seq the next record gets) and ``first_seq`` (the oldest record kept after
  compaction). Records ``first_seq .. next_seq - 1`` all exist; anything else is damage.
* ``journal`` — the records, ``PRIMARY KEY (partition, seq)``; ``payload`` is the bytes of a
  ``journal.v1.Record``, ``kind`` its oneof name, ``crc`` a CRC-32 over partition, seq, epoch, kind and
  payload (see :func:`record_crc`).
* ``snapshots`` — partition core snapshots, ``PRIMARY KEY (partition, seq)``: the state after
  applying records up to and including ``seq``, with a CRC like the records'.

It also holds the record CRC (:func:`record_crc`, :func:`encoded_record_crc`, :func:`snapshot_crc`): the
one Python definition, used by every Python site that computes or checks one (the Rust core has its
own in ``record_crc.rs``). Any module may import this one; it imports nothing of the journal.

Example::

    crc = record_crc(partition, seq, epoch, "worker_updated", payload)
    rows = conn.execute(select(journal.c.seq).where(journal.c.partition == partition)).scalars()
"""

from __future__ import annotations

import struct
import zlib

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, MetaData, PrimaryKeyConstraint, String, Table

__all__ = [
    "KIND_MAX_LEN",
    "RECORD_HEADER",
    "VERSION_TABLE",
    "encoded_record_crc",
    "journal",
    "metadata",
    "partition_head",
    "record_crc",
    "snapshot_crc",
    "snapshots",
]

#: Name of the table in which Alembic keeps the schema revision (not ``alembic_version``, so the journal
#: can share a database with other Alembic users).
VERSION_TABLE = "leasehold_journal_version"

#: Longest ``kind`` (a oneof field name of ``journal.v1.Record``).
KIND_MAX_LEN = 64

metadata = MetaData()

partition_head = Table(
    "partition_head",
    metadata,
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("epoch", BigInteger, nullable=False),
    Column("next_seq", BigInteger, nullable=False),
    Column("first_seq", BigInteger, nullable=False),
)

journal = Table(
    "journal",
    metadata,
    Column("partition", Integer, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("kind", String(KIND_MAX_LEN), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("crc", BigInteger, nullable=False),
    PrimaryKeyConstraint("partition", "seq", name="journal_pk"),
    sqlite_with_rowid=False,
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("partition", Integer, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("crc", BigInteger, nullable=False),
    PrimaryKeyConstraint("partition", "seq", name="snapshots_pk"),
)

#: The fixed part of a record CRC's header: partition, seq, epoch, length of the kind name.
RECORD_HEADER = struct.Struct(">IQQB")


def record_crc(partition: int, seq: int, epoch: int, kind: str, payload: bytes) -> int:
    """CRC-32 (zlib) of a record and where it lives, so a record moved or renumbered fails it too."""
    return encoded_record_crc(partition, seq, epoch, kind.encode(), payload)


def encoded_record_crc(partition: int, seq: int, epoch: int, kind_bytes: bytes, payload: bytes) -> int:
    """:func:`record_crc` of a kind already encoded (the appender and the checker keep the kinds' bytes).

    The one Python definition of the record CRC; the Rust core's is ``record_crc.rs``.
    """
    # Chained rather than concatenated: the same CRC without copying the header (this runs per record).
    return zlib.crc32(
        payload, zlib.crc32(kind_bytes, zlib.crc32(RECORD_HEADER.pack(partition, seq, epoch, len(kind_bytes))))
    )


def snapshot_crc(partition: int, seq: int, epoch: int, data: bytes) -> int:
    """CRC-32 (zlib) of a snapshot and its place (partition, seq, epoch)."""
    return record_crc(partition, seq, epoch, "snapshot", data)
