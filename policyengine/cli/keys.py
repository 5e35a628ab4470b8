"""`policyengine keys generate|rotate`: key pairs for approvers and the log.

``generate NAME`` writes ``NAME.key`` (C2SP signed-note private key, mode 600)
and ``NAME.pub`` (the verifier key to put in the trust file or give to
auditors) and prints the verifier key.

``rotate`` replaces the log's signing key: it appends a ``key_transition``
entry signed by the key in force that introduces a new key (see
``audit.transition``), then writes the new key where the configured signing
key lives; the old one is kept beside it as ``<file>.prev-<key id>``. The new
key is first written as ``<file>.next``, so a crash after the log changed
never loses it. Neither command prints a private key.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, TextIO

from policyengine.cli._common import add_config_options, config_from_args, guarded


def register(subparsers: Any) -> None:
    """Add the ``keys`` command."""
    parser = subparsers.add_parser("keys", help="generate signing keys")
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    gen = sub.add_parser("generate", help="write NAME.key (mode 600) and NAME.pub")
    gen.add_argument("name", metavar="NAME", help="key name (e.g. the approver id or log origin)")
    gen.add_argument("--out", metavar="DIR", default=".", help="directory to write to (default .)")
    gen.add_argument("--force", action="store_true", help="overwrite existing files")
    gen.set_defaults(func=guarded(_generate), logs=False)
    rot = sub.add_parser(
        "rotate", help="hand the log's signing to a new key by a signed key transition")
    rot.add_argument("--by", metavar="ID", default="policyengine keys rotate",
                     help="who rotates (recorded as the entry's actor)")
    add_config_options(rot, policies=False)
    rot.set_defaults(func=guarded(_rotate), logs=False)


def _safe_stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name)


def _generate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from audit.keys import generate_key
    from policyengine.errors import InputError

    directory = Path(args.out)
    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / f"{_safe_stem(args.name)}.key"
    pub_path = key_path.with_suffix(".pub")
    if key_path.exists() and not args.force:
        raise InputError(f"{key_path} exists; pass --force to overwrite or choose another name")
    skey, vkey = generate_key(args.name)
    if key_path.exists():
        key_path.unlink()
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(skey + "\n")
    pub_path.write_text(vkey + "\n", encoding="utf-8")
    err.write(f"wrote {key_path} (private, mode 600) and {pub_path}\n")
    out.write(vkey + "\n")
    return 0


def _key_file(config: Any) -> Path:
    """The file the configured signing key lives in (rotation rewrites it)."""
    from policyengine.errors import InputError

    value = config.signing_key or config.env.get("POLICYENGINE_SIGNING_KEY", "").strip()
    if value.startswith(("PRIVATE+KEY+", "-----BEGIN")):
        raise InputError(
            "POLICYENGINE_SIGNING_KEY holds the key itself: rotation writes the new key to a "
            "file, so point the variable (or signing_key:) at a key file first")
    if value:
        return Path(value)
    dev = config.state_dir / "dev-signing.key"
    if config.ci or not dev.is_file():
        raise InputError("no signing key configured to rotate: pass --signing-key FILE or "
                         "set POLICYENGINE_SIGNING_KEY to the key file")
    return dev


def _write_private(path: Path, text: str) -> None:
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")


def _rotate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit.keys import Signer
    from policyengine.errors import InputError
    from policyengine.ledger import log_errors, open_log

    config = config_from_args(args)
    path = _key_file(config)
    old = config.signer(err)
    new = Signer(old.name, Ed25519PrivateKey.generate())
    staged = path.with_name(path.name + ".next")
    if staged.exists():
        raise InputError(f"{staged} exists: a rotation was interrupted; check the log with "
                         "`policyengine audit verify` and move the key in force into place")
    _write_private(staged, new.to_skey())
    log = open_log(config, old)
    try:
        with log_errors(config):
            signed = log.rotate_key(new, args.by)
    except BaseException:
        staged.unlink()  # the log did not change: the old key stays in force
        raise
    kept = path.with_name(f"{path.name}.prev-{old.key_id.hex()}")
    os.replace(path, kept)
    os.replace(staged, path)
    pub = path.with_suffix(".pub")
    if pub.is_file():
        pub.write_text(new.vkey + "\n", encoding="utf-8")
    err.write(f"rotated the log's key at seq {signed.appended.seq}: {old.name}+"
              f"{old.key_id.hex()} -> {new.key_id.hex()}; new key in {path}, old key kept as "
              f"{kept}; auditors keep verifying with the log's first key\n")
    out.write(new.vkey + "\n")
    return 0
