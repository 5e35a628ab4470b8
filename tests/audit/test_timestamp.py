"""RFC 3161 timestamps of checkpoints against a real TSA (`openssl ts -reply`) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from audit.errors import StorageError
from audit.log import AuditLog
from audit.timestamp import (
    TimestampError,
    checkpoint_digest,
    request_timestamp,
    verify_timestamp,
)
from tests.audit.conftest import fill
from tests.audit.tsa import Tsa, make_cert, running_tsa


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tsa]:
    """A loopback TSA for this module."""
    with running_tsa(tmp_path_factory.mktemp("tsa")) as running:
        yield running


def test_checkpoint_token_verifies(tsa: Tsa, log: AuditLog) -> None:
    """A token the TSA issued for a checkpoint's digest verifies with the TSA certificate."""
    fill(log, 3)
    digest = checkpoint_digest(log.checkpoint().note)
    info = verify_timestamp(request_timestamp(tsa.url, digest), digest, tsa.cert)
    assert info.gen_time.tzinfo is not None and info.serial >= 1


def test_token_for_another_checkpoint_fails(tsa: Tsa, log: AuditLog) -> None:
    """A token over one checkpoint does not verify for the next one."""
    fill(log, 1)
    token = request_timestamp(tsa.url, checkpoint_digest(log.checkpoint().note))
    fill(log, 1, start=1)
    with pytest.raises(TimestampError, match="not this checkpoint's digest"):
        verify_timestamp(token, checkpoint_digest(log.checkpoint().note), tsa.cert)


def _flip(token: bytes, part: str, digest: bytes) -> bytes:
    """Change one byte of the signature, of the imprint, or of genTime (a GeneralizedTime)."""
    out = bytearray(token)
    if part == "signature":
        out[-1] ^= 0x01
    elif part == "imprint":
        out[token.index(digest) + 5] ^= 0x01
    else:  # genTime: tag 0x18, then 'YYYYMMDD...Z'; bump the year's last digit
        at = token.index(b"\x18\x0f") + 5
        out[at] = ord("0") + (out[at] - ord("0") + 1) % 10
    return bytes(out)


@pytest.mark.parametrize("part", ["signature", "imprint", "gen_time"])
def test_altered_token_fails(tsa: Tsa, part: str) -> None:
    """Altering the token's signature, imprint or genTime fails verification."""
    digest = checkpoint_digest("x\n1\nroot\n\n- sig\n")
    token = request_timestamp(tsa.url, digest)
    with pytest.raises(TimestampError):
        verify_timestamp(_flip(token, part, digest), digest, tsa.cert)


def test_token_fails_for_another_tsa_certificate(tsa: Tsa) -> None:
    """A token does not verify against a certificate other than its signer's."""
    digest = checkpoint_digest("note\n")
    token = request_timestamp(tsa.url, digest)
    key = ec.generate_private_key(ec.SECP256R1())
    other = make_cert(key, "Test TSA", key, "Test CA", ca=False, eku=True)
    with pytest.raises(TimestampError, match=r"another certificate|does not verify"):
        verify_timestamp(token, digest, other)


def test_certificate_without_timestamping_eku_refused(tsa: Tsa) -> None:
    """A certificate without the critical id-kp-timeStamping EKU is not a TSA certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    plain = make_cert(key, "Test TSA", key, "Test CA", ca=False, eku=False)
    with pytest.raises(TimestampError, match="extended key usage"):
        verify_timestamp(b"", b"\x00" * 32, plain)


def test_unreachable_tsa_is_a_storage_error(tmp_path: Path) -> None:
    """A TSA that does not answer is reported as unavailable, not as a bad token."""
    with pytest.raises(StorageError, match="unavailable"):
        request_timestamp("http://127.0.0.1:9/", b"\x00" * 32, timeout=2)
