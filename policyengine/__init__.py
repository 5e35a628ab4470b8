"""policyengine: declarative governance for the ML model lifecycle.

The public Python API: the same operations the command line and the service
run, importable and typed (``py.typed``). Build an :class:`Engine` from a
configuration once, then call the operations with it::

    from policyengine import Engine, load_config, load_document
    from policyengine.gate import gate

    engine = Engine(load_config({"log": "sqlite:///audit.db"}))
    result = gate(engine, load_document("card.yaml"), "production", "promote")
    print(result.allow, result.seq)

- configuration and the engine: :func:`load_config`, :class:`Config`, :class:`Engine`;
- operations: ``policyengine.gate.gate`` (:class:`GateResult`) and
  ``policyengine.promote.promote`` (named by their modules: a package attribute
  cannot be both the function and the submodule), :func:`record_event`,
  :func:`record_statement`, :func:`approval_statement`, :func:`waiver_statement`,
  :func:`verify_statement`, :func:`load_trust`;
- registry flow: :func:`registered`, :func:`moved`;
- the engine core: :func:`load_policies`, :func:`compile_policies`,
  :func:`evaluate`, :class:`Context`, :class:`Decision`, :class:`RuleResult`;
- inputs: :func:`load_document`, :func:`validate_card`;
- errors: :class:`PolicyEngineError` and its subclasses (each with a stable ``code``).

Names are imported on first use (PEP 562), so ``import policyengine`` and the
command line's start-up stay cheap. The audit log itself is the separate,
standalone package :mod:`audit`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from policyengine._lazy import lazy_names
from policyengine._version import __version__ as __version__

_LAZY: dict[str, str] = {
    "Config": "policyengine.config",
    "load_config": "policyengine.config",
    "Engine": "policyengine.engine",
    "GateResult": "policyengine.gate",
    "PromotionRefusedError": "policyengine.promote",
    "record_event": "policyengine.promote",
    "approval_statement": "policyengine.approvals",
    "record_statement": "policyengine.approvals",
    "verify_statement": "policyengine.approvals",
    "waiver_statement": "policyengine.approvals",
    "TrustStore": "policyengine.trust",
    "load_trust": "policyengine.trust",
    "moved": "policyengine.registry",
    "registered": "policyengine.registry",
    "Context": "policyengine.policy.evaluate",
    "compile_policies": "policyengine.policy.compile",
    "evaluate": "policyengine.policy.evaluate",
    "load_policies": "policyengine.policy.load",
    "Decision": "policyengine.decision",
    "RuleResult": "policyengine.decision",
    "load_document": "policyengine.inputs",
    "validate_card": "policyengine.cards.validate",
    "CardValidationError": "policyengine.errors",
    "ConfigError": "policyengine.errors",
    "EvaluationError": "policyengine.errors",
    "InputError": "policyengine.errors",
    "KeyUnavailableError": "policyengine.errors",
    "LogUnavailableError": "policyengine.errors",
    "PolicyEngineError": "policyengine.errors",
    "PolicyLoadError": "policyengine.errors",
}
"""Public name -> the module that defines it."""

__all__ = [
    "CardValidationError",
    "Config",
    "ConfigError",
    "Context",
    "Decision",
    "Engine",
    "EvaluationError",
    "GateResult",
    "InputError",
    "KeyUnavailableError",
    "LogUnavailableError",
    "PolicyEngineError",
    "PolicyLoadError",
    "PromotionRefusedError",
    "RuleResult",
    "TrustStore",
    "approval_statement",
    "compile_policies",
    "evaluate",
    "load_config",
    "load_document",
    "load_policies",
    "load_trust",
    "moved",
    "record_event",
    "record_statement",
    "registered",
    "validate_card",
    "verify_statement",
    "waiver_statement",
]

if TYPE_CHECKING:  # what type checkers and IDEs see; nothing is imported at run time
    from policyengine.approvals import (
        approval_statement,
        record_statement,
        verify_statement,
        waiver_statement,
    )
    from policyengine.cards.validate import validate_card
    from policyengine.config import Config, load_config
    from policyengine.decision import Decision, RuleResult
    from policyengine.engine import Engine
    from policyengine.errors import (
        CardValidationError,
        ConfigError,
        EvaluationError,
        InputError,
        KeyUnavailableError,
        LogUnavailableError,
        PolicyEngineError,
        PolicyLoadError,
    )
    from policyengine.gate import GateResult
    from policyengine.inputs import load_document
    from policyengine.policy.compile import compile_policies
    from policyengine.policy.evaluate import Context, evaluate
    from policyengine.policy.load import load_policies
    from policyengine.promote import PromotionRefusedError, record_event
    from policyengine.registry import moved, registered
    from policyengine.trust import TrustStore, load_trust


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
