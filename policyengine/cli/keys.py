"""`policyengine keys generate NAME`: an Ed25519 key pair for an approver or a log.

Writes ``NAME.key`` (C2SP signed-note private key, mode 600) and ``NAME.pub``
(the verifier key to put in the trust file or give to auditors) and prints the
verifier key. Never prints the private key.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, TextIO

from policyengine.cli._common import guarded


def register(subparsers: Any) -> None:
    """Add the ``keys`` command."""
    parser = subparsers.add_parser("keys", help="generate signing keys")
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    gen = sub.add_parser("generate", help="write NAME.key (mode 600) and NAME.pub")
    gen.add_argument("name", metavar="NAME", help="key name (e.g. the approver id or log origin)")
    gen.add_argument("--out", metavar="DIR", default=".", help="directory to write to (default .)")
    gen.add_argument("--force", action="store_true", help="overwrite existing files")
    gen.set_defaults(func=guarded(_generate), logs=False)


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
