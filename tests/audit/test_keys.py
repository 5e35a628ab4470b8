"""Tests for audit/keys.py: signed-note key formats, loading and safety."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.errors import KeyLoadError
from audit.keys import NoteVerifier, Signer, generate_key, load_signer, load_verifiers

VECTOR = json.loads(
    (Path(__file__).resolve().parent.parent / "vectors" / "note" / "go_sumdb_note.json").read_text()
)


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_key(path: Path, text: str | bytes, mode: int = 0o600) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    os.chmod(path, mode)
    return path


def test_key_id_matches_go_vector() -> None:
    """The published PeterNeumann skey yields key id c74f20a3 and the published vkey."""
    signer = Signer.from_skey(VECTOR["peter_skey"])
    assert signer.key_id.hex() == "c74f20a3"
    assert signer.vkey == VECTOR["peter_vkey"]
    assert NoteVerifier.from_vkey(VECTOR["peter_vkey"]).key_id == signer.key_id


def test_generated_keys_round_trip_and_sign() -> None:
    """A generated skey/vkey pair parses back and its signatures verify."""
    skey, vkey = generate_key("example.org/log")
    signer, verifier = Signer.from_skey(skey), NoteVerifier.from_vkey(vkey)
    assert signer.to_skey() == skey and signer.vkey == vkey
    sig = signer.sign(b"hi")
    assert verifier.verify(b"hi", sig)
    assert not verifier.verify(b"ho", sig)
    assert not verifier.verify(b"hi", bytes([sig[0] ^ 1]) + sig[1:])


def test_every_single_byte_change_to_a_vkey_is_refused() -> None:
    """Changing any character of a vkey makes it fail to load (as note_test.go checks)."""
    vkey = VECTOR["peter_vkey"]
    for i in range(len(vkey)):
        mangled = vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1 :]
        with pytest.raises(KeyLoadError):
            NoteVerifier.from_vkey(mangled)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key id mismatch"),
        ("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not Ed25519"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "malformed"),
        ("PeterNeumann+c74f20a3", "malformed"),
    ],
)
def test_bad_vkeys_are_refused_with_reason(text: str, fragment: str) -> None:
    """Wrong key id, unknown algorithm and bad syntax are refused with a reason."""
    with pytest.raises(KeyLoadError, match=fragment):
        NoteVerifier.from_vkey(text)


def test_signer_repr_never_shows_key_material() -> None:
    """repr/str of a signer show name and key id only, and it cannot be pickled."""
    signer = Signer.from_skey(VECTOR["peter_skey"])
    secret = VECTOR["peter_skey"].rsplit("+", 1)[1]
    for text in (repr(signer), str(signer), f"{signer}"):
        assert "PeterNeumann" in text and "c74f20a3" in text
        assert secret not in text and "PRIVATE" not in text
    import pickle

    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(signer)


def test_load_signer_from_skey_file(tmp_path: Path) -> None:
    """A private skey file with mode 600 loads."""
    path = _write_key(tmp_path / "log.key", VECTOR["peter_skey"] + "\n")
    assert load_signer(path).key_id.hex() == "c74f20a3"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_load_signer_refuses_group_or_world_readable_file(tmp_path: Path, mode: int) -> None:
    """A key file readable by group or others is refused with a chmod 600 hint."""
    path = _write_key(tmp_path / "log.key", VECTOR["peter_skey"], mode)
    with pytest.raises(KeyLoadError, match="chmod 600"):
        load_signer(path)


def test_load_signer_from_pem_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PKCS#8 PEM keys load from a file or the environment under the given name."""
    key = Ed25519PrivateKey.generate()
    path = _write_key(tmp_path / "log.pem", _pem(key))
    signer = load_signer(path, name="example.org/log")
    assert signer.name == "example.org/log"
    assert signer.public_key == key.public_key().public_bytes_raw()
    monkeypatch.setenv("POLICYENGINE_SIGNING_KEY", _pem(key).decode())
    assert load_signer().public_key == signer.public_key


def test_load_signer_from_env_skey_or_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment variable may hold skey text or the path of a private key file."""
    monkeypatch.setenv("AUDIT_KEY", VECTOR["peter_skey"])
    assert load_signer(env="AUDIT_KEY").name == "PeterNeumann"
    path = _write_key(tmp_path / "k", VECTOR["peter_skey"], 0o644)
    monkeypatch.setenv("AUDIT_KEY", str(path))
    with pytest.raises(KeyLoadError, match="chmod 600"):
        load_signer(env="AUDIT_KEY")


def test_load_signer_without_key_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no file and no variable the error names the variable to set."""
    monkeypatch.delenv("POLICYENGINE_SIGNING_KEY", raising=False)
    with pytest.raises(KeyLoadError, match="set POLICYENGINE_SIGNING_KEY"):
        load_signer()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("hello", "unrecognised signing key"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "cannot read PEM"),
    ],
)
def test_load_signer_refuses_garbage(tmp_path: Path, content: str, fragment: str) -> None:
    """Files that hold no usable Ed25519 private key are refused."""
    with pytest.raises(KeyLoadError, match=fragment):
        load_signer(_write_key(tmp_path / "k", content))


def test_load_signer_missing_file(tmp_path: Path) -> None:
    """A missing key file is a KeyLoadError naming the path."""
    with pytest.raises(KeyLoadError, match=r"nope\.key"):
        load_signer(tmp_path / "nope.key")


def test_load_verifiers_from_texts_files_and_pem(tmp_path: Path) -> None:
    """Verifiers load from vkey strings, vkey files with comments, and PEM public keys."""
    key = Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "keys.txt").write_text(f"# log keys\n\n{VECTOR['enoch_vkey']}\n")
    (tmp_path / "pub.pem").write_bytes(pem)
    got = load_verifiers(
        [VECTOR["peter_vkey"], tmp_path / "keys.txt", str(tmp_path / "pub.pem")], name="x.org/log"
    )
    assert [v.name for v in got] == ["PeterNeumann", "EnochRoot", "x.org/log"]
    assert got[2].public_key == key.public_key().public_bytes_raw()


def test_load_verifiers_refuses_unknown_item(tmp_path: Path) -> None:
    """An item that is neither a vkey nor a readable file is refused."""
    with pytest.raises(KeyLoadError, match="neither a vkey nor a readable file"):
        load_verifiers([str(tmp_path / "missing")])
