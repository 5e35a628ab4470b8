"""The shape of ``policyengine.yaml``: strict pydantic models of the file.

Imported only when a configuration file is read (:func:`policyengine.config.load_config`):
a gate with nothing configured never loads pydantic. Every model forbids
unknown keys at every depth (:class:`~policyengine.strict.StrictModel`).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from policyengine.strict import StrictModel

__all__ = ["ConfigFile", "Witnessing"]


class _Environment(StrictModel):
    """One section under ``environments:``."""

    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Parameter overrides per policy name, applied when this environment is selected."""


class _Promotion(StrictModel):
    """The ``promotion:`` section."""

    max_decision_age: str | int | None = None
    """Oldest ``allow`` decision ``promote`` accepts (``24h``, ``7d`` or seconds)."""


class _WitnessRef(StrictModel):
    """One witness under ``witnessing.witnesses``."""

    url: str
    """Submission prefix: checkpoints go to ``<url>/add-checkpoint`` (c2sp.org/tlog-witness)."""
    vkey: str
    """The witness's cosignature/v1 verifier key (signature type 0x04)."""


class Witnessing(StrictModel):
    """The ``witnessing:`` section: who vouches for each checkpoint the log signs."""

    witnesses: list[_WitnessRef] = Field(default_factory=list)
    min_witnesses: int = 0
    """Cosignatures each checkpoint needs; fewer fails the write (after it is recorded)."""
    timestamp_url: str | None = None
    """An RFC 3161 timestamp authority URL; each checkpoint's note digest is timestamped."""
    timeout_seconds: float = 10.0


class ConfigFile(StrictModel):
    """The shape of ``policyengine.yaml``; any other key, at any depth, is refused."""

    log: str | None = None
    origin: str | None = None
    signing_key: str | None = None
    log_keys: list[str] = Field(default_factory=list)
    policies: str | list[str] | None = None
    trust_file: str | None = None
    allow_unsigned_approvals: bool = False
    environment: str | None = None
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    environments: dict[str, _Environment] = Field(default_factory=dict)
    promotion: _Promotion = _Promotion()
    witnessing: Witnessing | None = None
    service: dict[str, Any] | None = None
    """Read and checked by the service (``policyengine.service.settings``), not by the gate."""
