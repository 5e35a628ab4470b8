"""RFC 3161 trusted timestamps on checkpoints: request, and verify offline.

Owns the Time-Stamp Protocol pieces the log needs:

- :func:`build_request`: a DER ``TimeStampReq`` (RFC 3161 §2.4.1) for a
  SHA-256 digest, with a nonce and ``certReq`` set;
- :func:`token_from_response`: checks a ``TimeStampResp`` (§2.4.2) answers
  that request (status granted, same imprint and nonce) and returns the
  ``TimeStampToken`` (a CMS SignedData over ``TSTInfo``) as DER;
- :func:`request_timestamp`: POSTs the request to a TSA URL over HTTP;
- :func:`verify_timestamp`: checks a token against a digest and the TSA
  certificate an auditor trusts: message imprint, signed attributes
  (content type, message digest of the ``TSTInfo``), the signature by the
  certificate's key, the signer id naming that certificate, and the
  certificate's critical ``id-kp-timeStamping`` extended key usage (§2.3).

What is timestamped is the SHA-256 of the checkpoint note as the log signed
it (:func:`checkpoint_digest`). ASN.1 is read and written with
``asn1crypto``; signatures are checked with ``cryptography``. Storing tokens
is :mod:`audit.evidence`'s job.
"""

from __future__ import annotations

import hashlib
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from audit.errors import IntegrityError, StorageError

__all__ = [
    "TimestampError",
    "TimestampInfo",
    "build_request",
    "checkpoint_digest",
    "load_tsa_cert",
    "request_timestamp",
    "token_from_response",
    "verify_timestamp",
]

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class TimestampError(IntegrityError):
    """A timestamp token or TSA answer does not verify."""

    code = "audit_timestamp_invalid"


@dataclass(frozen=True)
class TimestampInfo:
    """What a verified token says."""

    gen_time: datetime
    """The time the TSA vouches for (TSTInfo genTime)."""
    serial: int
    """The token's serial number at the TSA."""


def checkpoint_digest(note: str) -> bytes:
    """SHA-256 of a checkpoint note as the log signed it: the imprint to timestamp."""
    return hashlib.sha256(note.encode("utf-8")).digest()


def build_request(digest: bytes, nonce: int) -> bytes:
    """A DER TimeStampReq (RFC 3161 §2.4.1) for a SHA-256 ``digest``."""
    return tsp.TimeStampReq({
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest},
        "nonce": nonce,
        "cert_req": True,
    }).dump()


def _tst_info(token: bytes) -> tuple[cms.SignedData, bytes, tsp.TSTInfo]:
    """Unwrap a token: its SignedData, the DER of its TSTInfo, and the parsed TSTInfo."""
    try:
        info = cms.ContentInfo.load(token)
        if info["content_type"].native != "signed_data":
            raise TimestampError("timestamp token is not CMS SignedData")
        signed = info["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise TimestampError("timestamp token does not hold a TSTInfo")
        tst = encap["content"].parsed
        tst_der = tst.dump()
        tst.native  # noqa: B018 - parse everything now, so malformed DER fails here
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampError(f"timestamp token is not valid DER: {exc}") from exc
    return signed, tst_der, tst


def token_from_response(response: bytes, digest: bytes, nonce: int) -> bytes:
    """The TimeStampToken DER of a TSA response to :func:`build_request` (digest, nonce).

    Raises:
        TimestampError: not granted, malformed, or answering another imprint or nonce.
    """
    try:
        resp = tsp.TimeStampResp.load(response)
        status = resp["status"]["status"].native
        token = resp["time_stamp_token"]
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampError(f"TSA response is not a TimeStampResp: {exc}") from exc
    if status not in ("granted", "granted_with_mods") or token.native is None:
        raise TimestampError(f"TSA refused the request: status {status}")
    der = token.dump()
    _signed, _raw, tst = _tst_info(der)
    if tst["message_imprint"]["hashed_message"].native != digest:
        raise TimestampError("TSA response timestamps another digest")
    if tst["nonce"].native != nonce:
        raise TimestampError(f"TSA response nonce: expected {nonce}, got {tst['nonce'].native}")
    return der


def request_timestamp(url: str, digest: bytes, *, timeout: float = 10.0) -> bytes:
    """Ask the TSA at ``url`` to timestamp ``digest``; return the token DER.

    Raises:
        StorageError: the TSA is unreachable or answers an HTTP error.
        TimestampError: the answer is not a granted timestamp of ``digest``.
    """
    nonce = secrets.randbits(63)
    req = urllib.request.Request(
        url, data=build_request(digest, nonce), method="POST",
        headers={"Content-Type": "application/timestamp-query"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read(1 << 20)
    except (urllib.error.URLError, OSError) as exc:
        raise StorageError(f"timestamp authority {url} unavailable: {exc}") from exc
    return token_from_response(body, digest, nonce)


def load_tsa_cert(data: bytes) -> x509.Certificate:
    """Load a TSA certificate from PEM or DER.

    Raises:
        TimestampError: neither PEM nor DER X.509.
    """
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise TimestampError(f"TSA certificate is not PEM or DER X.509: {exc}") from exc


def _check_cert(cert: x509.Certificate) -> None:
    """RFC 3161 §2.3: exactly the id-kp-timeStamping EKU, marked critical."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound as exc:
        raise TimestampError("TSA certificate has no extended key usage: "
                             "expected id-kp-timeStamping") from exc
    if list(ext.value) != [ExtendedKeyUsageOID.TIME_STAMPING] or not ext.critical:
        raise TimestampError("TSA certificate extended key usage: expected only "
                             "id-kp-timeStamping, marked critical")


def _check_signer_id(signer: cms.SignerInfo, cert: x509.Certificate) -> None:
    sid = signer["sid"]
    if sid.name == "issuer_and_serial_number":
        if sid.chosen["serial_number"].native != cert.serial_number:
            raise TimestampError("timestamp token was signed by another certificate (serial)")
        issuer = sid.chosen["issuer"].dump()
        if issuer != cert.issuer.public_bytes():
            raise TimestampError("timestamp token was signed by another certificate (issuer)")
        return
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    if sid.chosen.native != ski:
        raise TimestampError("timestamp token was signed by another certificate (key id)")


def _signed_attrs(signer: cms.SignerInfo, tst_der: bytes) -> bytes:
    """RFC 5652 §5.4: check content type and message digest; return the DER SET signed."""
    attrs = signer["signed_attrs"]
    if attrs.native is None:
        raise TimestampError("timestamp token has no signed attributes")
    values = {a["type"].native: a["values"][0].native for a in attrs}
    if values.get("content_type") != "tst_info":
        raise TimestampError("timestamp token signed attributes: content type is not TSTInfo")
    algo = signer["digest_algorithm"]["algorithm"].native
    if algo not in _HASHES:
        raise TimestampError(f"timestamp token digest algorithm {algo} is not supported")
    if values.get("message_digest") != hashlib.new(algo, tst_der).digest():
        raise TimestampError("timestamp token signed attributes: TSTInfo digest mismatch")
    # The signature covers the attributes with the universal SET tag, not the [0] tag.
    return b"\x31" + attrs.dump()[1:]


def _check_signature(signer: cms.SignerInfo, data: bytes, cert: x509.Certificate) -> None:
    algo = _HASHES[signer["digest_algorithm"]["algorithm"].native]()
    key = cert.public_key()
    sig = signer["signature"].native
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, data, padding.PKCS1v15(), algo)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(sig, data, ec.ECDSA(algo))
        else:
            raise TimestampError(f"TSA key type {type(key).__name__} is not supported")
    except InvalidSignature as exc:
        raise TimestampError("timestamp token signature does not verify with the TSA "
                             "certificate") from exc


def verify_timestamp(token: bytes, digest: bytes, cert: x509.Certificate) -> TimestampInfo:
    """Verify an RFC 3161 token over SHA-256 ``digest`` with the trusted TSA ``cert``.

    Raises:
        TimestampError: malformed token, another imprint, a bad signature, a
            signer other than ``cert``, a certificate without the timeStamping
            EKU, or a genTime outside the certificate's validity.
    """
    _check_cert(cert)
    signed, tst_der, tst = _tst_info(token)
    imprint = tst["message_imprint"]
    if imprint["hash_algorithm"]["algorithm"].native != "sha256":
        raise TimestampError("timestamp imprint: expected a SHA-256 digest")
    if imprint["hashed_message"].native != digest:
        raise TimestampError(
            f"timestamp imprint {imprint['hashed_message'].native.hex()} is not this "
            f"checkpoint's digest {digest.hex()}")
    signers = list(signed["signer_infos"])
    if len(signers) != 1:
        raise TimestampError(f"timestamp token: expected one signer, got {len(signers)}")
    _check_signer_id(signers[0], cert)
    _check_signature(signers[0], _signed_attrs(signers[0], tst_der), cert)
    gen_time: datetime = tst["gen_time"].native
    if not cert.not_valid_before_utc <= gen_time <= cert.not_valid_after_utc:
        raise TimestampError(f"timestamp genTime {gen_time.isoformat()} is outside the TSA "
                             "certificate's validity")
    return TimestampInfo(gen_time, int(tst["serial_number"].native))

