"""The shape of a trust file (``approvers.yaml``): strict pydantic models.

Imported only when a trust file is read (:func:`policyengine.trust.load_trust`),
so a gate without one never loads pydantic. What the fields mean:
:mod:`policyengine.trust`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from policyengine.strict import StrictModel

__all__ = ["ApproverEntry", "TrustFile"]


class ApproverEntry(StrictModel):
    """One item of ``approvers:``."""

    id: str = Field(min_length=1)
    roles: list[str] = Field(default_factory=list)
    keys: list[str] = Field(default_factory=list)


class TrustFile(StrictModel):
    """The shape of a trust file; any other key, at any depth, is refused."""

    api_version: Literal["policyengine/v1"] = Field("policyengine/v1", alias="apiVersion")
    kind: Literal["Approvers"] = "Approvers"
    approvers: list[ApproverEntry]
    waiver_roles: list[str] = Field(default_factory=list)
    admin_roles: list[str] = Field(default_factory=list)
