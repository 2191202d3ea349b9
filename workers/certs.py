"""The cluster CA and its certificates: what ``leasehold certs`` writes and :mod:`workers.tls` reads.

One certificate authority signs one certificate per component identity. A certificate says two things:

- its **role** (``server``, ``frontend``, ``worker`` or ``client``), in the URI SAN
  ``spiffe://leasehold/<role>/<name>``, which the gRPC servers check per method (:mod:`workers.tls`);
- the DNS name ``<role>.leasehold``, which a caller names as the TLS target, so gRPC's own hostname
  check proves that the peer it dialled holds a certificate of the role it meant to reach (a frontend
  cannot be fooled into sending invocations to a stolen ``client`` certificate posing as a worker).

Keys are ECDSA P-256 (fast handshakes, small certificates), written 0600. The layout of ``DIR``::

    DIR/ca.pem  DIR/ca-key.pem            the CA (keep ca-key.pem off the hosts that only run components)
    DIR/<name>/ca.pem cert.pem key.pem    one identity; a process takes --tls-dir DIR/<name>

``leasehold certs init DIR`` makes the CA and one identity per role, named after it
(``DIR/server``, ``DIR/frontend``, ``DIR/worker``, ``DIR/client``); ``leasehold certs issue DIR --role R
--name N`` adds another. The library is ``cryptography`` (PyCA), the well-kept one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["ROLES", "Authority", "identity_name", "issue", "main", "register", "role_host", "role_uri"]

#: The roles a certificate can carry.
ROLES = ("server", "frontend", "worker", "client")
#: Default validity of an identity certificate, and of the CA.
IDENTITY_DAYS = 397
CA_DAYS = 3650
_URI_PREFIX = "spiffe://leasehold/"


def role_uri(role: str, name: str) -> str:
    """The URI SAN of an identity: ``spiffe://leasehold/<role>/<name>``."""
    return f"{_URI_PREFIX}{role}/{name}"


def role_host(role: str) -> str:
    """The DNS SAN every certificate of ``role`` carries, and the TLS target name a caller of it uses."""
    return f"{role}.leasehold"


def identity_name(uri: str) -> tuple[str, str] | None:
    """``(role, name)`` of a URI SAN made by :func:`role_uri`, or ``None`` for any other URI."""
    if not uri.startswith(_URI_PREFIX):
        return None
    role, _, name = uri[len(_URI_PREFIX) :].partition("/")
    return (role, name) if role in ROLES and name else None


def _check_name(what: str, value: str) -> str:
    if not value or len(value) > 64 or not all(c.isalnum() or c in "-_." for c in value) or value[0] == ".":
        raise ValueError(f"{what} {value!r}: want 1-64 letters, digits, '-', '_' or '.' (not starting with '.')")
    return value


@dataclass(frozen=True)
class Authority:
    """A CA's certificate and key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, days: int = CA_DAYS) -> Authority:
        """A new self-signed CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Leasehold cluster CA")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def load(cls, directory: Path) -> Authority:
        """The CA of ``directory`` (``ca.pem``, ``ca-key.pem``)."""
        cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        key = serialization.load_pem_private_key((directory / "ca-key.pem").read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{directory / 'ca-key.pem'}: not an EC key")
        return cls(cert, key)

    def save(self, directory: Path) -> None:
        """Write ``ca.pem`` and ``ca-key.pem`` (0600) into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "ca.pem").write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        _write_secret(directory / "ca-key.pem", _key_pem(self.key))


def issue(
    authority: Authority,
    role: str,
    name: str,
    *,
    days: int = IDENTITY_DAYS,
    not_before: dt.datetime | None = None,
) -> tuple[bytes, bytes]:
    """A new identity's ``(cert_pem, key_pem)``, valid for both ends of a TLS connection."""
    if role not in ROLES:
        raise ValueError(f"role {role!r}: want one of {', '.join(ROLES)}")
    _check_name("name", name)
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{role}/{name}")]))
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(role_host(role)), x509.UniformResourceIdentifier(role_uri(role, name))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(authority.key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def write_identity(authority: Authority, directory: Path, cert_pem: bytes, key_pem: bytes) -> None:
    """Write one identity's folder: ``ca.pem``, ``cert.pem``, ``key.pem`` (0600)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.pem").write_bytes(authority.cert.public_bytes(serialization.Encoding.PEM))
    (directory / "cert.pem").write_bytes(cert_pem)
    _write_secret(directory / "key.pem", key_pem)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_secret(path: Path, data: bytes) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def init(directory: Path, *, force: bool = False, exist_ok: bool = False) -> list[Path]:
    """Make a CA and one identity per role in ``directory``; the identity folders written.

    An existing CA is an error unless ``force`` (replace everything) or ``exist_ok`` (leave it all as it is
    and write nothing: what a container's one-shot ``certs`` service does on every start)."""
    if (directory / "ca.pem").exists() and not force:
        if exist_ok:
            return []
        raise FileExistsError(f"{directory / 'ca.pem'} exists (use --force to replace the CA, --exist-ok to keep it)")
    authority = Authority.create()
    authority.save(directory)
    written = []
    for role in ROLES:
        write_identity(authority, directory / role, *issue(authority, role, role))
        written.append(directory / role)
    return written


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add the ``certs`` subcommand (``init``, ``issue``)."""
    parser = subparsers.add_parser("certs", help="make the cluster CA and component certificates", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    actions = parser.add_subparsers(dest="certs_action", required=True)
    init_parser = actions.add_parser("init", help="make the CA and one identity per role")
    init_parser.add_argument("dir", type=Path)
    replace = init_parser.add_mutually_exclusive_group()
    replace.add_argument("--force", action="store_true", help="replace an existing CA and its identities")
    replace.add_argument("--exist-ok", action="store_true", help="do nothing when the CA exists")
    issue_parser = actions.add_parser("issue", help="issue one more identity from the CA in DIR")
    issue_parser.add_argument("dir", type=Path)
    issue_parser.add_argument("--role", required=True, choices=ROLES)
    issue_parser.add_argument("--name", required=True, help="the identity's name and folder (DIR/NAME)")
    issue_parser.add_argument("--days", type=int, default=IDENTITY_DAYS)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``certs init`` or ``certs issue``; 0 on success, 2 for a refused request."""
    try:
        if args.certs_action == "init":
            for folder in init(args.dir, force=args.force, exist_ok=args.exist_ok):
                print(f"wrote {folder}")
            if args.exist_ok and not args.force:
                print(f"CA in {args.dir}")
            return 0
        if not 1 <= args.days <= 3650:
            raise ValueError("--days must be between 1 and 3650")
        folder = args.dir / _check_name("--name", args.name)
        if folder.exists():
            raise FileExistsError(f"{folder} exists")
        authority = Authority.load(args.dir)
        write_identity(authority, folder, *issue(authority, args.role, args.name, days=args.days))
        print(f"wrote {folder}")
        return 0
    except (OSError, ValueError) as exc:
        print(f"leasehold certs: {exc}")
        return 2


def main(argv: list[str] | None = None) -> int:
    """``python -m workers.certs``."""
    parser = argparse.ArgumentParser(prog="leasehold")
    register(parser.add_subparsers(required=True))
    args = parser.parse_args(["certs", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
