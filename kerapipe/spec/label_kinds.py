"""What the labels are (``data.labels``): classes, binary, multi-label, regression or raw.

The kind decides the labels' shape and dtype, which losses, activations and metrics fit
them (checked by ``validate``), and what ``predictions.csv`` holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kerapipe.spec.typed import spec_field

LABEL_KINDS = ("classes", "binary", "multi_label", "regression", "raw")
LabelKind = Literal[LABEL_KINDS]  # type: ignore[valid-type]


@dataclass(frozen=True)
class LabelsSpec:
    """The kind of labels; inferred from the loss and the data when absent."""

    kind: LabelKind = spec_field(doc="`classes` (class indices or names), `binary` (0/1), "
                                 "`multi_label` (a set of classes per example), "
                                 "`regression` (numbers) or `raw` (any array, passed to "
                                 "the loss as it is).")
    shorthand = "kind"
