"""Certificates for the HTTPS tests (cryptography's x509 builder): a till's self-signed one, and a
shop CA with certificates it issues (a chain file: leaf, then the CA)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["ShopCa", "self_signed"]


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _builder(subject: str, issuer: str, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer)).public_key(public_key)
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30)))


def _key_pem(key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    protection = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, protection)


def self_signed(folder: Path, name: str, *, password: bytes | None = None) -> tuple[Path, Path]:
    """A till's self-signed certificate for `name` (not 127.0.0.1: the pin must not need it);
    `password`: its key encrypted with it."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_builder(name, name, key.public_key())
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(_key_pem(key, password))
    return cert_path, key_path


class ShopCa:
    """A CA that issues every till of a shop its certificate."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.key = folder, ec.generate_private_key(ec.SECP256R1())
        self.cert = (_builder("Shop CA", "Shop CA", self.key.public_key())
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .sign(self.key, hashes.SHA256()))

    def issue(self, name: str) -> tuple[Path, Path]:
        """`name`'s certificate as a chain file (leaf, then this CA) and its key."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (_builder(name, "Shop CA", key.public_key())
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                .sign(self.key, hashes.SHA256()))
        chain, key_path = self.folder / f"{name}-chain.pem", self.folder / f"{name}.key"
        pem = serialization.Encoding.PEM
        chain.write_bytes(cert.public_bytes(pem) + self.cert.public_bytes(pem))
        key_path.write_bytes(_key_pem(key))
        return chain, key_path
