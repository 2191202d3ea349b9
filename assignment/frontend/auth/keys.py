"""Access keys (id + secret) in the platform's database: the admin credentials that sign HTTP API requests.

An access key id has AWS's shape (``AKIA`` + 16 upper-case letters and digits) and its secret 40
characters, both drawn from :mod:`secrets`, so an AWS SDK or CLI takes them without complaint. The table
is created by migration 0005. :class:`KeyStore` is synchronous (callers in the event loop use a thread);
``leasehold keys`` and the frontend's bootstrap key work on it directly.

Example::

    store = KeyStore(Journal.open("sqlite:///data/leasehold.db"))
    key = store.create("ci")
    assert store.get(key.access_key_id) == key
    store.delete(key.access_key_id)
"""

from __future__ import annotations

import re
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, Column, MetaData, String, Table, delete, select

from journal.sql import dialect_insert
from journal.store import Journal

__all__ = [
    "ACCESS_KEY_ID",
    "SECRET",
    "AccessKey",
    "KeyStore",
    "access_keys",
    "new_access_key_id",
    "new_secret",
    "parse_key",
]

#: An admin access key id, as AWS shapes a long-term one.
ACCESS_KEY_ID = re.compile(r"AKIA[A-Z0-9]{16}")
#: A secret access key: 40 characters of AWS's alphabet.
SECRET = re.compile(r"[A-Za-z0-9+/]{40}")
_ID_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
_MAX_DESCRIPTION = 256

metadata = MetaData()

access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key_id", String(20), primary_key=True),
    Column("secret", String(40), nullable=False),
    Column("description", String(_MAX_DESCRIPTION), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)


@dataclass(frozen=True, slots=True)
class AccessKey:
    """One access key; the secret stays out of ``repr`` so a logged key does not leak it."""

    access_key_id: str
    secret: str = field(repr=False)
    description: str = ""
    created_ms: int = 0


def new_access_key_id() -> str:
    """A fresh ``AKIA…`` id (16 random characters: 36**16, about 2**82, ids)."""
    return "AKIA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def new_secret() -> str:
    """A fresh 40-character secret (about 2**238)."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def parse_key(text: str, description: str = "") -> AccessKey:
    """An ``ACCESS_KEY_ID:SECRET`` string (a bootstrap flag, variable or file) as a key; ``ValueError``
    names what is wrong without repeating the secret."""
    key_id, sep, secret = text.strip().partition(":")
    if not sep:
        raise ValueError("a key is ACCESS_KEY_ID:SECRET")
    if not ACCESS_KEY_ID.fullmatch(key_id):
        raise ValueError(f"access key id {key_id[:24]!r} is not AKIA followed by 16 upper-case letters or digits")
    if not SECRET.fullmatch(secret):
        raise ValueError(f"the secret of {key_id} is not 40 characters of A-Z, a-z, 0-9, + and /")
    return AccessKey(key_id, secret, description)


class KeyStore:
    """The ``access_keys`` table of one database; every method is one transaction."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def create(self, description: str = "") -> AccessKey:
        """A new key with a fresh id and secret."""
        key = AccessKey(new_access_key_id(), new_secret(), description[:_MAX_DESCRIPTION], _now_ms())
        self._insert(key)
        return key

    def ensure(self, key: AccessKey) -> bool:
        """Add ``key`` unless its id exists (True when added). An existing id with another secret is a
        ``ValueError``: a bootstrap key must not silently replace the one stored."""
        if self._insert(AccessKey(key.access_key_id, key.secret, key.description, _now_ms())):
            return True
        stored = self.get(key.access_key_id)
        if stored is None or not secrets.compare_digest(stored.secret, key.secret):
            raise ValueError(f"access key {key.access_key_id} exists with another secret")
        return False

    def first_with_description(self, description: str) -> AccessKey | None:
        """The oldest key with exactly this description (``leasehold dev`` finds its own key so)."""
        with self.journal.reader.connect() as conn:
            row = conn.execute(
                select(access_keys)
                .where(access_keys.c.description == description)
                .order_by(access_keys.c.created_ms, access_keys.c.access_key_id)
                .limit(1)
            ).first()
        return None if row is None else _key(row)

    def get(self, access_key_id: str) -> AccessKey | None:
        """The key with this id, or None."""
        with self.journal.reader.connect() as conn:
            row = conn.execute(select(access_keys).where(access_keys.c.access_key_id == access_key_id)).first()
        return None if row is None else _key(row)

    def list(self) -> list[AccessKey]:
        """Every key, oldest first."""
        with self.journal.reader.connect() as conn:
            rows = conn.execute(select(access_keys).order_by(access_keys.c.created_ms, access_keys.c.access_key_id))
            return [_key(row) for row in rows]

    def delete(self, access_key_id: str) -> bool:
        """Delete a key (True when it existed)."""
        with self.journal.writer.begin() as conn:
            deleted = conn.execute(delete(access_keys).where(access_keys.c.access_key_id == access_key_id))
        return bool(deleted.rowcount)

    def _insert(self, key: AccessKey) -> bool:
        row = {
            "access_key_id": key.access_key_id,
            "secret": key.secret,
            "description": key.description,
            "created_ms": key.created_ms,
        }
        with self.journal.writer.begin() as conn:
            # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT DO NOTHING here.
            statement = dialect_insert(conn, access_keys).values(row).on_conflict_do_nothing()
            inserted = conn.execute(statement.returning(access_keys.c.access_key_id)).first()
        return inserted is not None


def _key(row: Any) -> AccessKey:
    return AccessKey(row.access_key_id, row.secret, row.description, row.created_ms)


def _now_ms() -> int:
    return int(time.time() * 1000)
