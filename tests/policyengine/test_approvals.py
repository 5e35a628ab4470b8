"""Signed approvals: only a trusted key of an approver holding the role makes one count."""

from __future__ import annotations

import pytest

from audit.keys import Signer
from policyengine.approvals import (
    approval_statement,
    load_trust,
    revocation_statement,
    sign_statement,
    statement_bytes,
    verify_statement,
    waiver_statement,
)
from policyengine.errors import ConfigError

DIGEST = "sha256:" + "3e" * 32


@pytest.fixture
def trust(tmp_path, keys):
    """A trust file: bob holds model-risk, carol holds domain-owner."""
    path = tmp_path / "approvers.yaml"
    path.write_text(
        "approvers:\n"
        f"  - id: bob@bank.example\n    roles: [model-risk]\n    keys: ['{keys['bob'][1]}']\n"
        f"  - id: carol@bank.example\n    roles: [domain-owner]\n    keys: ['{keys['carol'][1]}']\n"
    )
    return load_trust(path)


def _statement(approver="bob@bank.example", role="model-risk", digest=DIGEST):
    return approval_statement(
        model="credit-risk-scorer",
        version="2.3.0",
        digest=digest,
        role=role,
        approver=approver,
        time="2026-11-26T15:00:00.000000Z",
        expires=None,
    )


def _signed(statement, keys, who):
    return sign_statement(statement, Signer.from_skey(keys[who][0]))


def test_valid_signature_counts(trust, keys):
    """An approval signed by the approver's trusted key, in a role they hold, counts as signed."""
    st = _statement()
    check = verify_statement(st, _signed(st, keys, "bob"), trust, roles=frozenset(["model-risk"]))
    assert (
        check.ok and check.signed and check.key_id == Signer.from_skey(keys["bob"][0]).key_id.hex()
    )


def test_key_not_in_trust_file_rejected(trust, keys):
    """A signature by a key the trust file does not list for that approver does not count."""
    st = _statement()
    check = verify_statement(
        st, _signed(st, keys, "mallory"), trust, roles=frozenset(["model-risk"])
    )
    assert not check and "not a key of 'bob@bank.example' in the trust file" in check.reason


def test_another_approvers_key_rejected(trust, keys):
    """Carol's key cannot sign an approval in Bob's name."""
    st = _statement()
    check = verify_statement(st, _signed(st, keys, "carol"), trust, roles=frozenset(["model-risk"]))
    assert not check and "not a key of 'bob@bank.example'" in check.reason


def test_role_not_held_rejected(trust, keys):
    """A valid signature by an approver lacking the role does not count, and says so."""
    st = _statement(role="domain-owner")
    check = verify_statement(st, _signed(st, keys, "bob"), trust, roles=frozenset(["domain-owner"]))
    assert (
        not check
        and "does not hold role domain-owner" in check.reason
        and "model-risk" in check.reason
    )


def test_altered_statement_rejected(trust, keys):
    """Changing any signed field (here the digest) breaks the signature."""
    st = _statement()
    sig = _signed(st, keys, "bob")
    forged = dict(st, digest="sha256:" + "00" * 32)
    check = verify_statement(forged, sig, trust, roles=frozenset(["model-risk"]))
    assert not check and "does not verify" in check.reason


def test_unknown_approver_rejected(trust, keys):
    """An approver absent from the trust file does not count."""
    st = _statement(approver="mallory@evil.example")
    check = verify_statement(st, _signed(st, keys, "mallory"), trust, roles=None)
    assert not check and "not in the trust file" in check.reason


def test_unsigned_refused_by_default(trust):
    """Unsigned approvals do not count unless the configuration allows them."""
    check = verify_statement(_statement(), None, trust, roles=frozenset(["model-risk"]))
    assert not check and "unsigned" in check.reason


def test_unsigned_allowed_is_marked(trust):
    """With allow_unsigned, an unsigned approval counts and is marked unsigned."""
    check = verify_statement(
        _statement(), None, trust, roles=frozenset(["model-risk"]), allow_unsigned=True
    )
    assert check.ok and not check.signed


def test_unsigned_allowed_still_checks_role(trust):
    """allow_unsigned does not bypass the role check for a known approver."""
    check = verify_statement(
        _statement(role="domain-owner"),
        None,
        trust,
        roles=frozenset(["domain-owner"]),
        allow_unsigned=True,
    )
    assert not check and "does not hold role" in check.reason


def test_bad_base64_rejected(trust):
    """A malformed signature is a rejection, not an exception."""
    check = verify_statement(_statement(), {"key_id": "00", "sig": "!!"}, trust)
    assert not check and "base64" in check.reason


def test_statement_bytes_are_canonical():
    """The signed bytes are RFC 8785: sorted keys, no whitespace."""
    raw = statement_bytes({"b": 1, "a": None})
    assert raw == b'{"a":null,"b":1}'


def test_waiver_and_revocation_signed(trust, keys):
    """Waivers and revocations verify the same way (any trusted approver when no waiver roles)."""
    w = waiver_statement(
        waiver_id="w-1",
        rules=["slo/latency-p95"],
        model="m",
        version=None,
        versions=">=1,<3",
        reason="r",
        ticket="T-1",
        approver="carol@bank.example",
        time="2026-11-26T15:00:00Z",
        expires="2027-01-01T00:00:00Z",
    )
    assert verify_statement(w, _signed(w, keys, "carol"), trust)
    r = revocation_statement(
        waiver_id="w-1",
        model="m",
        reason="done",
        approver="carol@bank.example",
        time="2026-11-27T15:00:00Z",
    )
    assert verify_statement(r, _signed(r, keys, "carol"), trust)


def test_trust_file_errors(tmp_path):
    """A malformed trust file (no list, bad key, duplicate id) is a ConfigError saying what."""
    bad = tmp_path / "a.yaml"
    bad.write_text("approvers: {}\n")
    with pytest.raises(ConfigError, match="approvers: input should be a valid list"):
        load_trust(bad)
    bad.write_text("approvers:\n  - {id: x, roles: [r], keys: [not-a-key]}\n")
    with pytest.raises(ConfigError, match="not a verifier key"):
        load_trust(bad)
    bad.write_text("approvers:\n  - {id: x}\n  - {id: x}\n")
    with pytest.raises(ConfigError, match="listed twice"):
        load_trust(bad)
    bad.write_text("kind: Policy\napprovers: []\n")
    with pytest.raises(ConfigError, match="kind: input should be 'Approvers', got 'Policy'"):
        load_trust(bad)
    bad.write_text("approvers: []\nwaiver_roles: risk-officer\n")
    with pytest.raises(ConfigError, match="waiver_roles: input should be a valid list"):
        load_trust(bad)


def test_no_trust_file_is_empty():
    """Without a trust file nothing signed counts."""
    assert load_trust(None).approvers == {}
