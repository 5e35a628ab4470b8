"""The Engine: what every operation works with, built once per command or process.

Owns one configuration's resources: the audit log (opened through
``ledger.open_log``), the checkpoint signer, the approvers' trust store and
the configured policies compiled per stage (compiling happens here and
nowhere else). Each is made on first use, so an operation meets them in its
own fail-closed order (a bad card is reported before a missing key), and
kept, so a long-running process (the service) compiles and opens once.

The command line builds one Engine per command, the service one per process
(``service/runtime.py``); gate, promote, approvals and the registry flow take
it instead of loose log, signer, policy-set and trust arguments.

Also owns who acts when nobody said (:func:`default_actor`) and the seam
through which a process observes decisions (:class:`Observer`, the service's
metrics).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from policyengine.ledger import open_log, record
from policyengine.trust import TrustStore, load_trust

if TYPE_CHECKING:
    from audit.keys import Signer
    from audit.log import AuditLog
    from policyengine.config import Config
    from policyengine.ledger import Recorded
    from policyengine.policy import CompiledPolicySet, PolicyDocument

__all__ = ["Engine", "Observer", "Policies", "compile_configured", "default_actor"]

_MAX_STAGES = 32
"""Compiled sets kept per Engine: stages come from requests, so the cache is bounded."""


class Observer(Protocol):
    """What a process learns about each decision (the service's metrics)."""

    def evaluation(self) -> AbstractContextManager[Any]:
        """A context timing one whole gate run."""
        ...

    def decided(self, decision: Mapping[str, Any], kind: str) -> None:
        """Count one logged decision on intent ``kind``."""
        ...


class _Unobserved:
    """The command line's observer: nothing is measured."""

    def evaluation(self) -> AbstractContextManager[Any]:
        return nullcontext()

    def decided(self, decision: Mapping[str, Any], kind: str) -> None:
        return None


@dataclass(frozen=True)
class Policies:
    """The configured policies compiled with one stage's parameters."""

    compiled: CompiledPolicySet
    """The compiled set (``.bundle_digest`` names it in every decision)."""
    documents: tuple[PolicyDocument, ...]
    """The documents it was compiled from (file and line of each rule)."""
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """The param overrides it was compiled with (recorded with the bundle, for replay)."""
    roots: tuple[str, ...] = ()
    """The configured policy paths the documents were found under."""


def compile_configured(config: Config, stage: str, *, engine: str | None = None) -> Policies:
    """Load and compile the configured policies with the parameters for ``stage``.

    ``engine`` picks the CEL runtime (``policy.compile.ENGINES``); None: the
    ``engine_setting`` in force, else ``$POLICYENGINE_ENGINE``, else reference.

    With ``allow_unsigned_approvals`` the approvals pack's own switch is turned on
    too, so the history's unsigned (marked) approvals are counted consistently.

    Raises:
        PolicyLoadError, ConfigError: the policies or their parameters are bad.
    """
    from policyengine.policy import compile_policies, load_policies

    docs = load_policies(list(config.policies))
    params = config.params_for(stage)
    if config.allow_unsigned_approvals and any(doc.name == "approvals" for doc in docs):
        params.setdefault("approvals", {})["allow_unsigned"] = True
    compiled = compile_policies(docs, params=params, engine=engine)
    return Policies(compiled, tuple(docs), params, tuple(str(p) for p in config.policies))


def default_actor(config: Config) -> str:
    """Who acts when nobody said: the CI identity when known, else the local user."""
    import getpass

    env = config.env
    for key in ("POLICYENGINE_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "USER"):
        if env.get(key):
            return str(env[key])
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (containers)
        return "unknown"


class Engine:
    """One configuration's log, signer, trust store and compiled policies.

    Args:
        config: the resolved configuration.
        err: where the development key is announced when it is first made.
        log: an already open log (the service's, timed); default: opened from
            ``config`` on first use.
        signer: the checkpoint signer; default: ``config.signer`` on first use.
        observer: told about every decision; default: nothing is measured.
        cel_engine: the CEL runtime its policies compile for (the service's
            setting); default: as :func:`compile_configured`.
    """

    def __init__(
        self,
        config: Config,
        *,
        err: TextIO | None = None,
        log: AuditLog | Any = None,
        signer: Signer | None = None,
        observer: Observer | None = None,
        cel_engine: str | None = None,
    ) -> None:
        self.config = config
        self.cel_engine = cel_engine
        self.err = err
        self.observer: Observer = observer or _Unobserved()
        self._log = log
        self._signer = signer
        self._trust: TrustStore | None = None
        self._policies: OrderedDict[str, Policies] = OrderedDict()
        self._lock = threading.Lock()
        self.bundles_recorded: set[str] = set()
        """Bundle digests known to have their ``policy_bundle`` entry in this log."""

    @property
    def signer(self) -> Signer:
        """The checkpoint signer (loaded on first use).

        Raises:
            KeyUnavailableError: no usable key (exit 3); nothing can be written.
        """
        if self._signer is None:
            self._signer = self.config.signer(self.err)
        return self._signer

    @signer.setter
    def signer(self, value: Signer | None) -> None:
        self._signer = value

    @property
    def has_signer(self) -> bool:
        """True when a signer is loaded (never loads one)."""
        return self._signer is not None

    @property
    def log(self) -> AuditLog:
        """The audit log, opened with the signer on first use.

        Raises:
            KeyUnavailableError: no usable signing key.
            LogUnavailableError: the log cannot be opened.
        """
        if self._log is None:
            self._log = open_log(self.config, self.signer)
        return self._log  # type: ignore[no-any-return]

    @log.setter
    def log(self, value: AuditLog | Any) -> None:
        self._log = value

    @property
    def trust(self) -> TrustStore:
        """The approvers' trust store, read once."""
        if self._trust is None:
            self._trust = load_trust(self.config.trust_file)
        return self._trust

    def policies(self, stage: str) -> Policies:
        """The configured policies compiled with ``stage``'s parameters, once per stage.

        Policies are read at first use; a process sees changes when it restarts
        (every decision records the bundle digest it was made under).
        """
        # One compilation at a time: concurrent first requests wait for it
        # instead of each compiling the same policies (they share one GIL).
        with self._lock:
            if stage in self._policies:
                self._policies.move_to_end(stage)
                return self._policies[stage]
            found = compile_configured(self.config, stage, engine=self.cel_engine)
            self._policies[stage] = found
            while len(self._policies) > _MAX_STAGES:
                self._policies.popitem(last=False)
            return found

    def compiled(self, stage: str) -> CompiledPolicySet:
        """The compiled policy set for ``stage`` (see :meth:`policies`)."""
        return self.policies(stage).compiled

    def actor(self, given: str | None = None) -> str:
        """``given``, else :func:`default_actor`."""
        return given or default_actor(self.config)

    def record(
        self, entry_type: str, subject: Mapping[str, Any], actor: str, payload: Any
    ) -> Recorded:
        """Record one entry through the ledger (entry, signed checkpoint, receipt).

        Subject fields that are empty are left out.

        Raises:
            LogUnavailableError: nothing was written.
            RecordedIncompleteError: the entry is in the log, its receipt failed.
        """
        clean = {k: str(v) for k, v in subject.items() if v not in (None, "")}
        return record(self.log, self.config, entry_type, clean, actor, payload)

    def close(self) -> None:
        """Release the log's connections, if it was opened."""
        if self._log is not None:
            self._log.close()
