"""TensorFlow failures that have a user-facing cause, turned into kerapipe errors.

tf.data and Keras report an out-of-memory or an undecodable image deep inside a
traceback; a user needs the batch size to lower or the file to fix. ``user_faults``
wraps a stage of the loop (adapting preprocessing, fit, evaluate, predict) and
translates only what it can attribute; anything else propagates unchanged.
"""

from __future__ import annotations

import contextlib
import re
from typing import Iterator, Optional

import tensorflow as tf

from kerapipe.compiler.data import CHANNELS, LoadedData, find_undecodable_image
from kerapipe.errors import DataError, KerapipeError, TrainingError
from kerapipe.spec.model import PipelineSpec

# What TensorFlow's image decoders say (decode_image/png/jpeg/gif/bmp); other
# InvalidArgumentErrors (shapes, labels) are not worth a scan of every image file.
_DECODE_MESSAGE = re.compile(r"image|PNG|JPEG|GIF|BMP|Input is empty|decode", re.I)


@contextlib.contextmanager
def user_faults(compiled, stage: str) -> Iterator[None]:
    """Around one stage of a compiled pipeline's loop (``training``, ``evaluation``)."""
    with translate_faults(compiled.spec, compiled.data, stage,
                          imported=bool(compiled.custom_objects)):
        yield


@contextlib.contextmanager
def translate_faults(spec: PipelineSpec, data: LoadedData, stage: str,
                     imported: bool = False) -> Iterator[None]:
    """Out of memory -> ``TrainingError`` (exit 4) naming the batch size and a smaller
    one; a decode failure traced to an image file -> ``DataError`` (exit 3) naming it; with
    ``imported`` code in the model, any other error -> ``TrainingError`` saying so."""
    from kerapipe.callbacks import TrainingStopped

    try:
        yield
    except (KerapipeError, TrainingStopped, KeyboardInterrupt):
        raise
    except (tf.errors.ResourceExhaustedError, MemoryError) as err:
        raise out_of_memory(spec, stage, err) from err
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as err:
        bad = (_undecodable_image(spec, data) if data.is_images
               and _DECODE_MESSAGE.search(err.message or "") else None)
        if bad is not None:
            path, reason = bad
            raise DataError(f"{spec.data.source.images.dir}: {path} cannot be decoded "
                            f"({reason}); {stage} stopped at it. Replace or delete the "
                            "file.") from err
        if not imported:
            raise
        raise _in_imported_code(spec, stage, err) from err
    except Exception as err:
        if not imported:
            raise
        raise _in_imported_code(spec, stage, err) from err


def out_of_memory(spec: PipelineSpec, stage: str, err: BaseException) -> TrainingError:
    batch = spec.data.batch_size
    detail = getattr(err, "message", "") or str(err) or type(err).__name__
    smaller = (f"a smaller batch, e.g. --set data.batch_size={batch // 2}, or "
               if batch > 1 else "")
    return TrainingError(
        f"out of memory during {stage} with data.batch_size {batch} "
        f"({detail.strip().splitlines()[0][:200]}). Try {smaller}a smaller model or "
        "image_size.")


def _in_imported_code(spec: PipelineSpec, stage: str, err: BaseException) -> TrainingError:
    text = re.sub(r"\s+", " ", str(err)).strip()[:400]
    return TrainingError(f"{stage} failed in a model that uses imported code "
                         f"({', '.join(spec.imports)}): {type(err).__name__}: {text}. Check "
                         "the custom layers and losses; KERAPIPE_DEBUG=1 shows the traceback.")


def _undecodable_image(spec: PipelineSpec, data: LoadedData) -> Optional[tuple[str, str]]:
    channels = CHANNELS[spec.data.source.images.color_mode]
    paths = [p for split in (data.train, data.validation, data.test) if split is not None
             for p in split.x]
    return find_undecodable_image(paths, channels)
