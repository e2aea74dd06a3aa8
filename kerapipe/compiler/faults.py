"""TensorFlow failures that have a user-facing cause, turned into kerapipe errors.

tf.data and Keras report an out-of-memory or an undecodable image deep inside a
traceback; a user needs the batch size to lower or the file to fix. ``user_faults``
wraps a stage of the loop (adapting preprocessing, fit, evaluate, predict) and
translates only what it can attribute; anything else propagates unchanged.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import tensorflow as tf

from kerapipe.compiler.data import CHANNELS, LoadedData, find_undecodable_image
from kerapipe.errors import DataError, TrainingError
from kerapipe.spec.model import PipelineSpec


@contextlib.contextmanager
def user_faults(spec: PipelineSpec, data: LoadedData, stage: str) -> Iterator[None]:
    """Out of memory -> ``TrainingError`` (exit 4) naming the batch size and a smaller
    one; a decode failure traced to an image file -> ``DataError`` (exit 3) naming it."""
    try:
        yield
    except (tf.errors.ResourceExhaustedError, MemoryError) as err:
        raise out_of_memory(spec, stage, err) from err
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as err:
        bad = _undecodable_image(spec, data) if data.is_images else None
        if bad is None:
            raise
        path, reason = bad
        raise DataError(f"{spec.data.source.images.dir}: {path} cannot be decoded "
                        f"({reason}); {stage} stopped at it. Replace or delete the "
                        "file.") from err


def out_of_memory(spec: PipelineSpec, stage: str, err: BaseException) -> TrainingError:
    batch = spec.data.batch_size
    detail = getattr(err, "message", "") or str(err) or type(err).__name__
    smaller = max(1, batch // 2)
    return TrainingError(
        f"out of memory during {stage} with data.batch_size {batch} "
        f"({detail.strip().splitlines()[0][:200]}). Try a smaller batch, e.g. "
        f"--set data.batch_size={smaller}, or a smaller model or image_size.")


def _undecodable_image(spec: PipelineSpec, data: LoadedData):
    channels = CHANNELS[spec.data.source.images.color_mode]
    paths = [p for split in (data.train, data.validation, data.test) if split is not None
             for p in split.x]
    return find_undecodable_image(paths, channels)
