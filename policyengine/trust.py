"""The trust file: approvers, the roles each holds, their public keys.

Owns the file's shape (:class:`~policyengine.trust_file.TrustFile`, validated strictly: an unknown
key at any depth is refused, so a misspelled ``waiver_role:`` cannot leave
the waiver roles empty and let any approver grant waivers) and the loaded
:class:`TrustStore`. The file (for example ``approvers.yaml``)::

    apiVersion: policyengine/v1        # optional; any other version is refused
    kind: Approvers                    # optional
    approvers:
      - id: bob@bank.example
        roles: [model-risk]
        keys: ["bob@bank.example+1a2b3c4d+AbC..."]   # C2SP signed-note verifier keys
    waiver_roles: [model-risk]         # roles that may grant and revoke waivers;
                                       # left out or empty: any trusted approver
    admin_roles: [governance-admin]    # roles that may revoke anyone's approval
                                       # (an approver may always revoke their own)

Not handled here: signing or verifying statements (``approvals.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from policyengine.errors import ConfigError

if TYPE_CHECKING:
    from audit.keys import NoteVerifier
    from policyengine.trust_file import ApproverEntry

__all__ = ["API_VERSION", "Approver", "TrustStore", "load_trust"]

API_VERSION: Final = "policyengine/v1"


def __getattr__(name: str) -> Any:
    if name == "TrustFile":  # the file's model (pydantic), loaded on first use
        from policyengine.trust_file import TrustFile

        return TrustFile
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Approver:
    """One person allowed to approve, with the roles they hold and their keys."""

    id: str
    """Identity as written in approvals (user id or e-mail)."""
    roles: frozenset[str]
    """Roles this approver holds (e.g. ``model-risk``, ``ml-lead``)."""
    keys: tuple[str, ...]
    """Verifier keys (C2SP signed-note vkey text)."""


@dataclass(frozen=True)
class TrustStore:
    """The approvers of a trust file, by id."""

    approvers: Mapping[str, Approver] = field(default_factory=dict)
    """Approver id -> approver."""
    source: str = "(no trust file)"
    """Where the approvers were read from, for messages."""
    waiver_roles: frozenset[str] = frozenset()
    """Roles allowed to grant or revoke waivers; empty means any trusted approver."""
    admin_roles: frozenset[str] = frozenset()
    """Roles allowed to revoke any approver's approval; empty means nobody but its approver."""

    def is_admin(self, approver: str) -> bool:
        """True when ``approver`` holds one of the admin roles."""
        entry = self.approvers.get(approver)
        return entry is not None and bool(entry.roles & self.admin_roles)

    def verifiers(self, approver: str) -> list[NoteVerifier]:
        """Parsed verifier keys of ``approver`` (empty when unknown)."""
        from audit.keys import NoteVerifier

        entry = self.approvers.get(approver)
        return [NoteVerifier.from_vkey(k) for k in entry.keys] if entry else []


def load_trust(path: str | Path | None) -> TrustStore:
    """Read a trust file; ``None`` gives an empty store (nothing signed counts).

    Raises:
        ConfigError: the file is unreadable, malformed, has an unknown key or
            apiVersion, lists an approver twice, or lists a bad key.
    """
    if path is None:
        return TrustStore()
    import yaml

    src = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{src}: cannot read trust file: {exc}") from exc
    from policyengine.strict import validate_file
    from policyengine.trust_file import TrustFile

    parsed = validate_file(TrustFile, {} if data is None else data, src)
    approvers: dict[str, Approver] = {}
    for index, item in enumerate(parsed.approvers):
        if item.id in approvers:
            raise ConfigError(f"{src}: approver {item.id!r} listed twice; merge the entries")
        approvers[item.id] = _approver(item, f"{src}: approvers[{index}]")
    return TrustStore(
        approvers=approvers, source=src, waiver_roles=frozenset(parsed.waiver_roles),
        admin_roles=frozenset(parsed.admin_roles),
    )


def _approver(item: ApproverEntry, where: str) -> Approver:
    from audit.keys import NoteVerifier

    for key in item.keys:
        try:
            NoteVerifier.from_vkey(key.strip())
        except Exception as exc:  # any parse failure: the key is unusable
            raise ConfigError(f"{where}: key {key[:40]!r} is not a verifier key: {exc}") from exc
    return Approver(
        id=item.id, roles=frozenset(item.roles), keys=tuple(k.strip() for k in item.keys)
    )
