"""The public Python API: what ``policyengine`` and ``audit`` export, and how."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import audit
import policyengine

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", policyengine.__all__)
def test_every_public_name_is_its_modules_own_object(name):
    """Each name in policyengine.__all__ resolves to the object its module defines."""
    module = importlib.import_module(policyengine._LAZY[name])
    assert getattr(policyengine, name) is getattr(module, name)


@pytest.mark.parametrize("name", audit.__all__)
def test_every_audit_name_resolves(name):
    """Each name in audit.__all__ can be imported from the package."""
    assert getattr(audit, name) is not None


def test_unknown_names_are_attribute_errors():
    """A name the package does not export is an AttributeError, never None."""
    with pytest.raises(AttributeError, match="no attribute 'gat'"):
        policyengine.gat  # noqa: B018


def test_import_is_cheap():
    """Importing the package loads none of the heavy modules (start-up of the CLI)."""
    code = (
        "import sys, policyengine; "
        "heavy = [m for m in ('sqlalchemy', 'sqlmodel', 'jsonschema', 'celpy', 'pydantic') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_packages_are_marked_typed():
    """Both packages ship py.typed (PEP 561), so users' type checkers read our hints."""
    assert (ROOT / "policyengine" / "py.typed").is_file()
    assert (ROOT / "audit" / "py.typed").is_file()


def test_seq_is_a_distinct_identifier_type():
    """audit.Seq is a NewType over int: a position, not to be mixed with a size."""
    assert audit.Seq(3) == 3 and audit.Seq.__supertype__ is int


def test_public_names_never_shadow_a_submodule():
    """No exported name is also a submodule's name (importing it would swap the attribute)."""
    submodules = {p.stem for p in (ROOT / "policyengine").iterdir()
                  if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert not set(policyengine.__all__) & submodules
