"""Making a cluster's certificates: a CA and node certificates it signs (in memory, PEM).

Keys are ECDSA P-256 (fast to make, accepted by every TLS 1.2+/1.3 stack).
The CA may sign end certificates only (``BasicConstraints(ca, path_length=0)``);
a node certificate is good for both ends of a connection (``serverAuth`` and
``clientAuth``: the cluster uses mutual TLS) and names its host(s) as subject
alternative names, IP addresses as such, plus ``localhost`` and ``127.0.0.1``.
Nothing here touches the file system: :mod:`ember.common.tls_files` does.
"""

from __future__ import annotations

import datetime
import ipaddress
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOCAL_NAMES = ("localhost", "127.0.0.1")
#: backdating not-before absorbs clock skew between the cluster's machines
SKEW = datetime.timedelta(minutes=5)


class CertError(ValueError):
    """A certificate or key cannot be used as asked (names the file or host)."""


class Issued(NamedTuple):
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _window(days: int) -> tuple[datetime.datetime, datetime.datetime]:
    if days < 1:
        raise CertError(f"a certificate must be valid for at least 1 day, not {days}")
    now = datetime.datetime.now(datetime.UTC)
    return now - SKEW, now + datetime.timedelta(days=days)


def make_ca(name: str, days: int) -> Issued:
    """A self-signed CA certificate named ``name`` and its key."""
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start, end = _window(days)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def subject_names(host: str) -> list[x509.GeneralName]:
    """The SANs of ``host``'s certificate: the host (as an IP if it is one) + local."""
    out: list[x509.GeneralName] = []
    for name in (host, *LOCAL_NAMES):
        try:
            entry: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            entry = x509.DNSName(name)
        if entry not in out:
            out.append(entry)
    return out


def _load_ca(ca: Issued) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise CertError("the CA key is not an ECDSA key made by 'ember tls init'")
    if ca_key.public_key() != ca_cert.public_key():
        raise CertError("the CA key does not belong to the CA certificate")
    return ca_cert, ca_key


def make_node_cert(ca: Issued, host: str, days: int) -> Issued:
    """A certificate for ``host`` signed by ``ca``, and its key."""
    ca_cert, ca_key = _load_ca(ca)
    key = _new_key()
    start, end = _window(days)
    end = min(end, ca_cert.not_valid_after_utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(subject_names(host)), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_ski.value
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def check_signed_by(cert_pem: bytes, ca_pem: bytes) -> None:
    """Raise :class:`CertError` unless the certificate was issued by the CA (and is in date)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        ca = x509.load_pem_x509_certificate(ca_pem)
    except ValueError as exc:
        raise CertError(f"not a PEM certificate ({exc})") from exc
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CertError("the certificate was not issued by this CA") from exc
    now = datetime.datetime.now(datetime.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise CertError(
            f"the certificate is valid from {cert.not_valid_before_utc:%Y-%m-%d} to "
            f"{cert.not_valid_after_utc:%Y-%m-%d} only"
        )
