"""Function credentials: short-lived sessions bound to one function, that any frontend can check alone.

A session is what a sandbox's environment carries, as on AWS: ``AWS_ACCESS_KEY_ID`` (``ASIA…``),
``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN``. The token is self-contained: a JSON claim (the
function's name and ARN, the id of its current incarnation, its role's name, when it was issued and when
it expires) and an HMAC-SHA256 over it with the cluster secret, a random value created once in the
database and read by every frontend. The access key id and the secret are derived from the token with
the same secret, so no frontend keeps a row per session, and a token cannot be paired with another key.

A session is refused (``UnrecognizedClientException``) when its MAC or key id does not match, it has
expired, its function no longer exists or is another incarnation (deleted and created again), or it was
issued before the function's revocation time (``leasehold keys revoke-sessions FUNCTION``). What exists
and what is revoked is read through a short cache (:data:`STATE_TTL_S`), the bound on a delete or a
revocation taking effect.

Example::

    issuer = SessionIssuer(cluster_secret(journal), account="000000000000")
    creds = issuer.issue(name="resize", arn=arn, incarnation="9f2c01aa", role="leasehold", now_ms=now)
    verified = issuer.verify(creds.access_key_id, creds.session_token, now_ms=now)  # Claim or ValueError
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, Column, MetaData, String, Table, select

from journal.sql import dialect_insert, upsert
from journal.store import Journal

__all__ = [
    "SESSION_TTL_S",
    "STATE_TTL_S",
    "SessionClaim",
    "SessionCredentials",
    "SessionIssuer",
    "cluster_secret",
    "cluster_secrets",
    "revoke_sessions",
    "revoked_before_ms",
    "session_revocations",
]

#: How long function credentials are valid. A sandbox never outlives them: the worker retires a sandbox
#: whose credentials would expire before an invocation's deadline (it is created again, with new ones).
SESSION_TTL_S = 12 * 3600
#: How long a frontend trusts what it read about a function's incarnation and revocation.
STATE_TTL_S = 2.0
_PREFIX = "LH1"
_SECRET_NAME = "session_hmac"
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # base32: upper-case letters and digits, as AWS's ids

metadata = MetaData()

cluster_secrets = Table(
    "cluster_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(128), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)
session_revocations = Table(
    "session_revocations",
    metadata,
    Column("function", String(64), primary_key=True),
    Column("before_ms", BigInteger, nullable=False),
)


def cluster_secret(journal: Journal) -> bytes:
    """The cluster's session secret, created by whichever frontend asks first (one INSERT … ON CONFLICT
    DO NOTHING, then a read: concurrent first frontends agree)."""
    with journal.writer.begin() as conn:
        row = {"name": _SECRET_NAME, "value": secrets.token_hex(32), "created_ms": int(time.time() * 1000)}
        conn.execute(dialect_insert(conn, cluster_secrets).values(row).on_conflict_do_nothing())
        value = conn.execute(select(cluster_secrets.c.value).where(cluster_secrets.c.name == _SECRET_NAME)).scalar()
    assert value is not None
    return bytes.fromhex(value)


def revoke_sessions(journal: Journal, function: str, now_ms: int | None = None) -> int:
    """Refuse every session of ``function`` issued before now (its later sessions still work); the
    revocation time."""
    before = int(time.time() * 1000) if now_ms is None else now_ms
    with journal.writer.begin() as conn:
        upsert(conn, session_revocations, {"function": function}, {"before_ms": before})
    return before


def revoked_before_ms(journal: Journal, function: str) -> int:
    """Sessions of ``function`` issued before this time are revoked (0: none)."""
    with journal.reader.connect() as conn:
        value = conn.execute(
            select(session_revocations.c.before_ms).where(session_revocations.c.function == function)
        ).scalar()
    return int(value or 0)


@dataclass(frozen=True, slots=True)
class SessionCredentials:
    """What a sandbox's environment carries (the secret and the token stay out of ``repr``)."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration_ms: int = 0


@dataclass(frozen=True, slots=True)
class SessionClaim:
    """What a verified token says."""

    function: str
    arn: str
    incarnation: str
    role: str
    issued_ms: int
    expires_ms: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionIssuer:
    """Issues and verifies function sessions with the cluster secret."""

    def __init__(self, secret: bytes, *, ttl_s: float = SESSION_TTL_S) -> None:
        self._mac_key = hmac.new(secret, b"leasehold session mac", hashlib.sha256).digest()
        self._id_key = hmac.new(secret, b"leasehold session key id", hashlib.sha256).digest()
        self._secret_key = hmac.new(secret, b"leasehold session secret", hashlib.sha256).digest()
        self.ttl_s = ttl_s

    def issue(
        self, *, name: str, arn: str, incarnation: str, role: str, now_ms: int, ttl_s: float | None = None
    ) -> SessionCredentials:
        """Credentials for one function incarnation, valid ``ttl_s`` (default :data:`SESSION_TTL_S`)."""
        expires = now_ms + int((self.ttl_s if ttl_s is None else ttl_s) * 1000)
        claim = {"fn": name, "arn": arn, "inc": incarnation, "role": role, "iat": now_ms, "exp": expires}
        body = _b64(json.dumps(claim, separators=(",", ":"), sort_keys=True).encode())
        mac = _b64(hmac.new(self._mac_key, body.encode(), hashlib.sha256).digest())
        token = f"{_PREFIX}.{body}.{mac}"
        return SessionCredentials(self._key_id(token), self._secret(token), token, expires)

    def _key_id(self, token: str) -> str:
        digest = hmac.new(self._id_key, token.encode(), hashlib.sha256).digest()
        return "ASIA" + "".join(_ID_ALPHABET[b % 32] for b in digest[:16])

    def _secret(self, token: str) -> str:
        digest = hmac.new(self._secret_key, token.encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()[:40]

    def verify(self, access_key_id: str, token: str, *, now_ms: int) -> tuple[SessionClaim, str]:
        """The token's claim and the session's secret; ``ValueError`` for a token that is not ours, not this
        key's, malformed or expired. (Whether its function still exists is the caller's question.)"""
        prefix, _, rest = token.partition(".")
        body, _, mac = rest.partition(".")
        if prefix != _PREFIX or not body or not mac:
            raise ValueError("not a Leasehold session token")
        expected = _b64(hmac.new(self._mac_key, body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected.encode(), mac.encode("utf-8", "replace")):
            raise ValueError("the token's MAC does not match")
        if not hmac.compare_digest(self._key_id(token).encode(), access_key_id.encode("utf-8", "replace")):
            raise ValueError("the token belongs to another access key id")
        doc: Any = json.loads(_unb64(body))
        claim = SessionClaim(
            str(doc["fn"]), str(doc["arn"]), str(doc["inc"]), str(doc["role"]), int(doc["iat"]), int(doc["exp"])
        )
        if claim.expires_ms <= now_ms:
            raise ValueError("the session has expired")
        return claim, self._secret(token)
