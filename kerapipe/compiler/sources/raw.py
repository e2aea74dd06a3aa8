"""What every source's ``load`` returns (``RawData``): the examples before the shared checks
and splits of ``loading.load_data``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np


@dataclass
class RawData:
    """What a source's ``load`` returns: arrays before checks and splitting.

    ``ids`` (and ``test_ids``) name where each example came from, one per example: the
    position in the source arrays before any shuffle (``None`` means exactly that), a
    CSV file's line number or id column value, an image's path inside the folder.
    """

    x: Any  # an ndarray, an object array of ragged sequences, CSV row numbers, image paths
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
    example_shape: Optional[tuple[int, ...]] = None
    lines: Optional[np.ndarray] = None  # CSV: the file line of each example, for messages
    label_text: Optional[Callable[[int], str]] = None  # CSV: a label as written, for messages
    ids: Optional[np.ndarray] = None
    test_ids: Optional[np.ndarray] = None
    feature_names: Optional[list[str]] = None  # CSV: the feature columns, in model order
    # A model of several outputs: the labels of each output after the first (whose are
    # ``y``), by output name, with their array names for messages.
    output_y: Optional[dict] = None
    output_y_test: Optional[dict] = None
    output_arrays: Optional[dict] = None  # output name -> (array name, test array name)
    # ``data.split.column``: each example's split (0 train, 1 validation, 2 test).
    parts: Optional[np.ndarray] = None


def is_ragged(x: Any) -> bool:
    """Whether ``x`` holds sequences of different lengths (a list, or an object array)."""
    return isinstance(x, (list, tuple)) or (isinstance(x, np.ndarray) and x.dtype == object)
