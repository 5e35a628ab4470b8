"""Where features that live elsewhere attach to the decision page: replay and what-if.

The decision page shows a "Replay" section and a what-if link only when a
provider is registered here; with none (the default) the page says nothing
about them, so no page offers a button that does not work. A provider is a
read-only function of the service and the decision's seq returning the
section's HTML (already escaped) or None; it must not write to the log.

Register from the module that implements the feature, for example::

    from policyengine.service.pages import hooks
    hooks.register_replay(render_replay_section)   # (svc, seq) -> str | None
    hooks.register_whatif(whatif_link)             # (svc, seq) -> str | None
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Section", "register_replay", "register_whatif", "sections"]

Section = Callable[[Any, int], "str | None"]
"""(service, decision seq) -> HTML of the section, or None to show nothing."""

_REPLAY: list[Section] = []
_WHATIF: list[Section] = []


def register_replay(section: Section) -> None:
    """Show ``section`` as the decision page's "Replay" section."""
    _REPLAY[:] = [section]


def register_whatif(section: Section) -> None:
    """Show ``section`` as the decision page's what-if link."""
    _WHATIF[:] = [section]


def sections(svc: Any, seq: int) -> dict[str, str]:
    """The registered sections' HTML for decision ``seq`` (empty when none registered)."""
    found: dict[str, str] = {}
    for name, providers in (("replay", _REPLAY), ("whatif", _WHATIF)):
        for provider in providers:
            html = provider(svc, seq)
            if html:
                found[name] = html
    return found
