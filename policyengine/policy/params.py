"""Parameter overrides: ``--set policy.param=value`` and layered ``{policy: {param: value}}``.

Owns parsing one ``--set`` and merging override layers (later wins per
param); reading a params file is ``load.py``'s job, applying the result to
policies ``compile.py``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policyengine.errors import ConfigError
from policyengine.inputs import DocumentError, parse_yaml

__all__ = ["merge_overrides", "parse_set"]


def parse_set(text: str) -> tuple[str, str, Any]:
    """Parse ``policy.param=value`` (value read as a YAML scalar: 0.9, true, text).

    Raises:
        ConfigError: when the text is not of that form.
    """
    target, sep, raw = text.partition("=")
    policy, dot, param = target.rpartition(".")
    if not sep or not dot or not policy or not param:
        raise ConfigError(f"bad --set {text!r}: expected policy.param=value")
    try:  # the bounded reader: a 5,001-digit or non-finite value is bad input
        value = parse_yaml(raw, f"--set {target}") if raw.strip() else ""
    except DocumentError as exc:
        if exc.kind != "syntax":
            raise
        value = raw
    return policy, param, value


def merge_overrides(*layers: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Merge override layers ``{policy: {param: value}}``; later layers win per param."""
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        if not layer:
            continue
        if not isinstance(layer, Mapping):
            raise ConfigError("bad params: expected a mapping {policy-name: {param: value}}")
        for policy, values in layer.items():
            if not isinstance(values, Mapping):
                raise ConfigError(f"bad params for {policy!r}: expected a mapping of param: value")
            merged.setdefault(str(policy), {}).update(values)
    return merged
