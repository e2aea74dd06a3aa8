"""What the sources of in-memory arrays share (``ArraySource``: the bundled samples,
keras.datasets, .npz files): ``pad_sequences`` pads ragged sequences into an array (they
cannot be batched without it), and features must be finite float32-range numbers of at
least one value each."""

from __future__ import annotations

from typing import Any

import numpy as np

from kerapipe.compiler.sources import Source
from kerapipe.compiler.sources.raw import RawData, is_ragged
from kerapipe.compiler.values import check_finite, check_float32
from kerapipe.errors import DataError


class ArraySource(Source):
    """A source whose examples are arrays held in memory."""

    def prepare_features(self, x: Any, name: str, raw: RawData, pad_steps: list) -> np.ndarray:
        """Pad sequences when asked; check that features are finite numbers."""
        where = raw.where
        if pad_steps:
            x = pad_sequences(x, pad_steps, where, name)
        elif is_ragged(x):
            lengths = sorted({len(item) for item in x[:1000] if hasattr(item, "__len__")})
            example = (f" (e.g. lengths {lengths[0]} and {lengths[-1]})" if len(lengths) > 1
                       else "")
            raise DataError(f"{where}: '{name}' holds sequences of different lengths"
                            f"{example}, which cannot be batched as they are. Add a step that "
                            "pads them to one length to data.preprocess, e.g. "
                            "`- pad_sequences: 200`.")
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise DataError(f"{where}: '{name}' holds {x.dtype} values; features must be "
                            "numbers.")
        if x.ndim == 1:
            x = x.reshape(-1, 1)  # one feature per example
        if 0 in x.shape[1:]:  # checked before any TensorFlow op: one crashed the process
            raise DataError(f"{where}: '{name}' has shape {tuple(x.shape)}, so its examples "
                            "hold no values (a dimension of size 0). Each example needs at "
                            "least one feature; check how the array was made.")
        if x.dtype.kind == "f":
            check_finite(where, name, x)
            check_float32(where, name, x)
        return x

    def prepare_inputs(self, x: np.ndarray, where: str) -> np.ndarray:
        """``predict``'s arrays padded by the pipeline's ``pad_sequences`` steps."""
        steps = self.spec.data.options_of("pad_sequences")
        return pad_sequences(x, steps, where, "x") if steps else x


def pad_sequences(x: Any, steps: list, where: str, name: str) -> Any:
    """``x`` padded by each ``pad_sequences`` step's options, in order.

    Raises:
        DataError: naming the array when its items are no sequences of numbers.
    """
    from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)
    import keras

    padded: Any = list(x) if is_ragged(x) else x
    for step in steps:
        try:
            padded = keras.utils.pad_sequences(padded, maxlen=step.maxlen,
                                               padding=step.padding,
                                               truncating=step.truncating)
        except (ValueError, TypeError) as err:
            raise DataError(f"{where}: pad_sequences cannot pad '{name}' ({err}). It pads "
                            "sequences of numbers, e.g. word indices.") from err
    return padded
