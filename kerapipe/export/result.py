"""What ``kerapipe export`` reports: the ``ExportResult`` of an export that passed its
check, and ``ExportMismatch``, the failure of one that does not reproduce its model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from kerapipe.errors import EXIT_TRAINING, KerapipeError


class ExportMismatch(KerapipeError):
    """The exported model's outputs differ from the Keras model's beyond the tolerance,
    or it predicts other classes (exit 4, as a run whose model is unusable)."""

    exit_code = EXIT_TRAINING


@dataclass
class ExportResult:
    """What ``export_run`` wrote and how closely it reproduces the Keras model.

    Attributes:
        max_delta: the largest |difference| of any output value, exported vs Keras.
        max_relative: the largest |difference| divided by ``max(1, |Keras's value|)``:
            what the tolerance bounds (``max_delta`` itself for probabilities).
        agreed: examples whose predicted class (every classifier output's) is the Keras
            model's; ``None`` for a model that predicts no classes (regression).
        agreed_run: examples whose predicted class is the one predictions.csv holds;
            ``None`` when not compared (no predictions.csv, or not the test split).
        near_ties: disagreeing examples whose two best classes the Keras model scores
            within the tolerance of each other (not counted as failures).
    """

    format: str
    path: Path
    seconds: float
    examples: int
    split: str
    max_delta: float
    tolerance: float
    max_relative: float = 0.0
    agreed: Optional[int] = None
    agreed_run: Optional[int] = None
    near_ties: int = 0
    notes: list = field(default_factory=list)

    def summary(self) -> str:
        """The lines ``kerapipe export`` prints."""
        lines = [f"exported {self.format} to {self.path} ({self.seconds:.1f} s)",
                 f"parity on the {self.split} split ({self.examples} examples): "
                 f"max |Δp| = {self.max_delta:.3g}"
                 + (f" ({self.max_relative:.3g} of max(1, |value|))"
                    if self.max_relative != self.max_delta else "")
                 + f" (tolerance {self.tolerance:g})"]
        if self.agreed is not None:
            lines.append(f"predicted classes: {self.agreed}/{self.examples} equal the Keras "
                         "model's" + (f" ({self.near_ties} near-tie(s))" if self.near_ties
                                      else ""))
        if self.agreed_run is not None:
            lines.append(f"predicted classes: {self.agreed_run}/{self.examples} equal the "
                         "run's predictions.csv")
        return "\n".join(lines + [f"note: {note}" for note in self.notes])
