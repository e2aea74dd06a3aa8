"""Write pipelines/data/imbalanced.csv: a generated 1:20 two-class table for the
class-weight example (pipelines/imbalanced.yaml) and bench/class_weight.py.

2,100 rows of 6 numeric features, `x1`..`x6`, and a label: 2,000 `ok` rows drawn around
0 and 100 `fraud` rows around a point 1.3 standard deviations away along every feature,
so the classes overlap: a model that minimises the plain loss calls most of the
overlapping rows `ok` (high accuracy, low minority recall), while a balanced loss
trades some majority rows for most of the minority. Rows are shuffled; values have 4
decimals. Deterministic; the output is committed:

    python scripts/make_imbalanced.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "pipelines" / "data" / "imbalanced.csv"
MAJORITY, MINORITY, FEATURES, SHIFT, SEED = 2000, 100, 6, 1.3, 14


def imbalanced_rows(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """``(x, label)``: float features ``(MAJORITY + MINORITY, FEATURES)`` and the label
    texts (``ok``/``fraud``), shuffled."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(0.0, 1.0, (MAJORITY, FEATURES)),
                        rng.normal(SHIFT, 1.0, (MINORITY, FEATURES))])
    label = np.array(["ok"] * MAJORITY + ["fraud"] * MINORITY)
    order = rng.permutation(len(label))
    return x[order], label[order]


def main() -> None:
    x, label = imbalanced_rows()
    header = ",".join([f"x{i + 1}" for i in range(FEATURES)] + ["label"])
    lines = [header] + [",".join(f"{v:.4f}" for v in row) + f",{name}"
                        for row, name in zip(x, label)]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(label):,} rows, {int((label == 'fraud').sum())} fraud)")


if __name__ == "__main__":
    main()
