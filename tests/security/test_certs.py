"""``leasehold certs``: the CA and identities it writes, what it refuses, and what a certificate says."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from workers.certs import ROLES, Authority, identity_name, issue, role_uri
from workers.tls import Tls

ROOT = Path(__file__).resolve().parents[2]


def _certs(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assignment.cli", "certs", *argv], check=False, capture_output=True, text=True, cwd=ROOT
    )


def test_init_writes_a_ca_and_one_identity_per_role_with_private_keys_private(tmp_path: Path) -> None:
    done = _certs("init", str(tmp_path / "c"))
    assert done.returncode == 0, done
    ca = x509.load_pem_x509_certificate((tmp_path / "c" / "ca.pem").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert stat.S_IMODE((tmp_path / "c" / "ca-key.pem").stat().st_mode) == 0o600
    for role in ROLES:
        identity = Tls.load(tmp_path / "c" / role)
        assert (identity.role, identity.name) == (role, role)
        assert stat.S_IMODE((tmp_path / "c" / role / "key.pem").stat().st_mode) == 0o600
        assert not (tmp_path / "c" / role / "ca-key.pem").exists(), "the CA key stays at the top"
        cert = x509.load_pem_x509_certificate(identity.cert)
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.DNSName) == [f"{role}.leasehold"]
        assert names.get_values_for_type(x509.UniformResourceIdentifier) == [role_uri(role, role)]
        assert cert.issuer == ca.subject


def test_init_refuses_to_replace_a_ca_unless_asked(tmp_path: Path) -> None:
    assert _certs("init", str(tmp_path)).returncode == 0
    before = (tmp_path / "ca.pem").read_bytes()
    refused = _certs("init", str(tmp_path))
    assert refused.returncode == 2
    assert "exists" in refused.stdout
    assert "--force" in refused.stdout
    assert _certs("init", str(tmp_path), "--exist-ok").returncode == 0
    assert (tmp_path / "ca.pem").read_bytes() == before, "--exist-ok keeps the CA"
    assert _certs("init", str(tmp_path), "--force").returncode == 0
    assert (tmp_path / "ca.pem").read_bytes() != before
    assert _certs("init", str(tmp_path), "--force", "--exist-ok").returncode == 2  # one or the other


def test_issue_adds_an_identity_and_refuses_bad_names_roles_and_clashes(tmp_path: Path) -> None:
    assert _certs("init", str(tmp_path)).returncode == 0
    done = _certs("issue", str(tmp_path), "--role", "worker", "--name", "worker-7")
    assert done.returncode == 0, done
    assert (Tls.load(tmp_path / "worker-7").role, Tls.load(tmp_path / "worker-7").name) == ("worker", "worker-7")
    assert "exists" in _certs("issue", str(tmp_path), "--role", "worker", "--name", "worker-7").stdout
    for name in ("../escape", "a/b", "", ".hidden", "x" * 65, "sp ace"):
        refused = _certs("issue", str(tmp_path), "--role", "worker", "--name", name)
        assert refused.returncode == 2, name
        assert "--name" in refused.stdout, (name, refused.stdout)
    assert _certs("issue", str(tmp_path), "--role", "admin", "--name", "x").returncode == 2  # argparse choices
    assert "--days" in _certs("issue", str(tmp_path), "--role", "worker", "--name", "w9", "--days", "0").stdout
    assert _certs("issue", str(tmp_path / "nowhere"), "--role", "worker", "--name", "w").returncode == 2


def test_identity_names_parse_only_leasehold_uris() -> None:
    assert identity_name(role_uri("server", "s1")) == ("server", "s1")
    assert identity_name("spiffe://leasehold/admin/x") is None
    assert identity_name("spiffe://leasehold/server/") is None
    assert identity_name("spiffe://other/server/s1") is None
    authority = Authority.create()
    with pytest.raises(ValueError, match="role"):
        issue(authority, "root", "x")
    with pytest.raises(ValueError, match="name"):
        issue(authority, "server", "../x")
