"""Write `pipelines/data/two_inputs.npz`: the data of the two-input (and two-output) example.

Deterministic (a fixed seed), from the MNIST sample shipped inside kerapipe, so it needs
no network:

    python scripts/make_two_inputs.py

Arrays, one row per example (600: 60 of each digit):
- ``x_image`` (600, 28, 28, 1) uint8: the digit's image;
- ``x_meta`` (600, 3) float32: two noisy facts about the digit (is it even, is it 5 or
  more) and one column of noise, so the second input carries information of its own;
- ``y`` (600,) uint8: the digit;
- ``y_size`` (600,) float32: the share of the image's pixels the digit's ink covers
  (above half intensity), times 10: a regression target for a second output.

MNIST: Yann LeCun, Corinna Cortes, Christopher J. C. Burges, CC BY-SA 3.0.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "pipelines" / "data" / "two_inputs.npz"
PER_CLASS = 60


def make() -> dict[str, np.ndarray]:
    """The arrays (see the module's docstring)."""
    with resources.files("kerapipe.data").joinpath("mnist_sample.npz").open("rb") as handle:
        sample = np.load(handle)
        x, y = sample["x"], sample["y"]
    rng = np.random.default_rng(12)
    chosen = np.concatenate([rng.choice(np.flatnonzero(y == digit), PER_CLASS, replace=False)
                             for digit in range(10)])
    chosen = rng.permutation(chosen)
    images, digits = x[chosen].reshape(-1, 28, 28, 1), y[chosen].astype(np.uint8)
    noise = rng.normal(0, 0.3, (len(digits), 3)).astype(np.float32)
    meta = np.stack([digits % 2 == 0, digits >= 5, np.zeros(len(digits), bool)], axis=1)
    meta = meta.astype(np.float32) + noise
    size = (images > 127).mean(axis=(1, 2, 3)).astype(np.float32) * 10
    return {"x_image": images, "x_meta": meta, "y": digits, "y_size": size}


def main() -> None:
    arrays = make()
    np.savez_compressed(OUT, **arrays)
    shapes = ", ".join(f"{name} {a.shape} {a.dtype}" for name, a in arrays.items())
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes): {shapes}")


if __name__ == "__main__":
    main()
