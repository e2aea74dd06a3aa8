"""Write pipelines/data/token_sequences.npz: generated "reviews" for the transformer example.

The transformer example (pipelines/transformer_imdb.yaml) trains on IMDB, which Keras
downloads. Tests, benchmarks and offline users train the same file on this stand-in
instead (`--set 'data.source={npz: data/token_sequences.npz}'`): 2,000 sequences of 64
token ids below 1,000, with a label a model must read the whole sequence to get: the
side of the label gets 8-16 of its tokens ("positive" 1..99, "negative" 100..199), the
other side 0-8, so the counts overlap now and then; the other ids are noise.
Deterministic; the output is committed:

    python scripts/make_token_sequences.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "pipelines" / "data" / "token_sequences.npz"
COUNT, LENGTH, VOCABULARY, SEED = 2000, 64, 1000, 7


def token_sequences(count: int = COUNT, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: int16 token ids ``(count, LENGTH)`` and int8 labels 0/1, balanced."""
    rng = np.random.default_rng(seed)
    x = rng.integers(200, VOCABULARY, (count, LENGTH))
    y = rng.integers(0, 2, count)
    for row, label in enumerate(y):
        strong, weak = rng.integers(8, 17), rng.integers(0, 9)  # overlap: some noise  # the label's side wins
        positive, negative = (strong, weak) if label else (weak, strong)
        places = rng.choice(LENGTH, positive + negative, replace=False)
        x[row, places[:positive]] = rng.integers(1, 100, positive)
        x[row, places[positive:]] = rng.integers(100, 200, negative)
    return x.astype(np.int16), y.astype(np.int8)


def main() -> None:
    x, y = token_sequences()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, x=x, y=y)
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes): x {x.shape}, y {y.shape}")


if __name__ == "__main__":
    main()
