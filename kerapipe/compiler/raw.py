"""What every source's loader returns (``RawData``): the interface between the sources
(``keras_data``, ``npz``, ``csv_source``, ``images``) and the shared checks and splits of
``data.load_data``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from kerapipe.compiler.csv_stream import CsvStream


@dataclass
class RawData:
    """What a loader returns: arrays before checks and splitting."""

    x: Any  # an ndarray, or an object array of ragged sequences
    y: np.ndarray
    x_test: Any = None
    y_test: Optional[np.ndarray] = None
    names: tuple[str, str, str, str] = ("x", "y", "x_test", "y_test")  # for messages
    where: str = ""  # the file or data set, for messages
    class_names: Optional[list[str]] = None  # fixed by the source (strings, image folders)
    num_classes: Optional[int] = None  # known count of a named data set
    regression: Optional[bool] = None  # fixed by the source; None: decided by the loss
    fingerprint: str = ""
    description: str = ""
    is_images: bool = False
    example_shape: Optional[tuple[int, ...]] = None
    lines: Optional[np.ndarray] = None  # CSV: the file line of each example, for messages
    csv: Optional[CsvStream] = None  # CSV: x holds row numbers; tf.data reads the features
    label_text: Optional[Callable[[int], str]] = None  # CSV: a label as written, for messages


def is_ragged(x: Any) -> bool:
    """Whether ``x`` holds sequences of different lengths (a list, or an object array)."""
    return isinstance(x, (list, tuple)) or (isinstance(x, np.ndarray) and x.dtype == object)
