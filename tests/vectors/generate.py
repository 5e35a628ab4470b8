"""Regenerate the named receipt vectors under tests/vectors/receipts/.

Run ``python tests/vectors/generate.py`` after changing a format on purpose;
``tests/audit/test_receipt.py`` asserts the committed files equal what this
script writes, so a format change never goes unnoticed. Keys and times are
fixed (see ``memlog.py``), so the output is byte-for-byte reproducible.
Merkle and note vectors are copied from upstream (see their SOURCE.md).
"""

from __future__ import annotations

import base64
import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

from memlog import MemLog, fixed_signer  # noqa: E402

from audit.receipt import dumps_receipt  # noqa: E402

RECEIPTS = HERE / "receipts"
Mutation = Callable[[dict[str, Any]], None]


def _flip_root(r: dict[str, Any]) -> None:
    """Replace the checkpoint with one signing a different root (validly signed)."""
    log = MemLog().fill(6)
    r["checkpoint"] = log.checkpoint(6, root=bytes(32)).note


def _other_key(r: dict[str, Any]) -> None:
    log = MemLog(signer=fixed_signer("2")).fill(6)
    r["checkpoint"] = log.checkpoint(6).note


def _bump_index(r: dict[str, Any]) -> None:
    r["leaf_index"] += 1


def _edit_envelope(r: dict[str, Any]) -> None:
    r["envelope"]["actor"] = "mallory@example.org"


def _drop_proof_node(r: dict[str, Any]) -> None:
    r["inclusion_proof"].pop()


def _swap_proof_nodes(r: dict[str, Any]) -> None:
    r["inclusion_proof"][0], r["inclusion_proof"][1] = (
        r["inclusion_proof"][1],
        r["inclusion_proof"][0],
    )


def _edit_checkpoint_size(r: dict[str, Any]) -> None:
    r["checkpoint"] = r["checkpoint"].replace("\n6\n", "\n7\n", 1)


def _edit_envelope_b64(r: dict[str, Any]) -> None:
    raw = bytearray(base64.b64decode(r["envelope_b64"]))
    raw[-3] ^= 1
    r["envelope_b64"] = base64.b64encode(bytes(raw)).decode()


NEGATIVE: dict[str, tuple[Mutation, str]] = {
    "receipt_wrong_root": (_flip_root, "inclusion proof root mismatch"),
    "receipt_unknown_key": (_other_key, "no signature from a configured key"),
    "receipt_wrong_leaf_index": (_bump_index, "leaf index mismatch"),
    "receipt_envelope_edited": (_edit_envelope, "does not match envelope_b64"),
    "receipt_envelope_b64_edited": (_edit_envelope_b64, "does not match envelope_b64"),
    "receipt_proof_truncated": (_drop_proof_node, "wrong size"),
    "receipt_proof_swapped": (_swap_proof_nodes, "inclusion proof root mismatch"),
    "receipt_checkpoint_edited": (_edit_checkpoint_size, "invalid signature"),
}
"""Named negative vectors: file stem -> (mutation, expected message fragment)."""


def vectors() -> dict[str, bytes]:
    """Return every vector file name and its exact bytes."""
    log = MemLog().fill(6)
    good = log.receipt(2, 6)
    out = {
        "receipt_ok.json": dumps_receipt(good) + b"\n",
        "verifier.vkey": (log.signer.vkey + "\n").encode(),
    }
    for stem, (mutate, _fragment) in NEGATIVE.items():
        bad = copy.deepcopy(good)
        mutate(bad)
        out[f"{stem}.json"] = dumps_receipt(bad) + b"\n"
    return out


def main() -> None:
    """Write the vectors to tests/vectors/receipts/."""
    RECEIPTS.mkdir(exist_ok=True)
    for name, data in vectors().items():
        (RECEIPTS / name).write_bytes(data)
        print(f"wrote {RECEIPTS / name}")


if __name__ == "__main__":
    main()
