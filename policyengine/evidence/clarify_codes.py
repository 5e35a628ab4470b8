"""SageMaker Clarify bias metric codes and the canonical fairness metric each means.

Shared by the Clarify evidence parser and the SageMaker card importer (a card's
metric groups can hold Clarify bias results); the codes are Clarify's own
(DI, DPPL, ...), documented with its pre- and post-training bias metrics.
"""

from __future__ import annotations

__all__ = ["CLARIFY_FAIRNESS"]

CLARIFY_FAIRNESS = {
    "DI": "demographic_parity_ratio",
    "DPPL": "demographic_parity_difference",
    "RD": "equal_opportunity_difference",
    "AD": "accuracy_difference",
    "CDDL": "conditional_demographic_disparity_labels",
    "CDDPL": "conditional_demographic_disparity_predicted_labels",
}
