"""TensorFlow failures that have a user-facing cause, turned into kerapipe errors.

tf.data and Keras report an out-of-memory or an undecodable image deep inside a
traceback; a user needs the batch size to lower or the file to fix. ``user_faults``
wraps a stage of the loop (adapting preprocessing, fit, evaluate, predict) and
translates what comes from the file or the data:

* out of memory -> ``TrainingError`` (exit 4) naming the batch size;
* an undecodable image -> ``DataError`` (exit 3) naming the file;
* a ``ValueError``/``TypeError`` from Keras: it traces each step function before running
  it and refuses there the shapes and dtypes that do not fit (the model's output against
  the labels, the loss or a metric), so the file's model/loss/metrics do not fit the data
  -> ``SpecError`` (exit 2, code ``training-refused``);
* any other TensorFlow error (``InvalidArgumentError``, ...) is raised by a running step on
  real values (a label beyond the class count, a shape that differs in one batch):
  kerapipe cannot tell the file from the data -> ``TrainingError`` (exit 4);
* with imported code in the model, anything else -> ``TrainingError`` saying so.

Anything else (an error in kerapipe itself) propagates unchanged: exit 1, a bug.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any, Iterator, Optional

from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
import tensorflow as tf

from kerapipe.compiler.build import short_error
from kerapipe.compiler.sources.loading import LoadedData
from kerapipe.errors import KerapipeError, SpecError, TrainingError, TrainingStopped
from kerapipe.spec.issues import Issue
from kerapipe.spec.model import PipelineSpec


@contextlib.contextmanager
def user_faults(compiled, stage: str) -> Iterator[None]:
    """Around one stage of a compiled pipeline's loop (``training``, ``evaluation``)."""
    with translate_faults(compiled.spec, compiled.data, stage,
                          imported=bool(compiled.custom_objects), model=compiled.model,
                          source_file=compiled.source_file):
        yield


@contextlib.contextmanager
def translate_faults(spec: PipelineSpec, data: LoadedData, stage: str,
                     imported: bool = False, model: Any = None,
                     source_file: Optional[str] = None) -> Iterator[None]:
    """Out of memory -> ``TrainingError`` (exit 4) naming the batch size and a smaller
    one; a decode failure traced to an image file -> ``DataError`` (exit 3) naming it; a
    Keras refusal while tracing -> ``SpecError`` (exit 2); another TensorFlow error ->
    ``TrainingError`` (exit 4); with ``imported`` code in the model, any other error ->
    ``TrainingError`` saying so (see the module's docstring for why)."""
    try:
        yield
    except (KerapipeError, TrainingStopped, KeyboardInterrupt):
        raise
    except (tf.errors.ResourceExhaustedError, MemoryError) as err:
        raise out_of_memory(spec, stage, err) from err
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as err:
        explained = data.source.explain_decode_failure(data, err.message or "", stage)
        if explained is not None:  # the source names the file it could not decode
            raise explained from err
        if imported:
            raise _in_imported_code(spec, stage, err) from err
        raise failed_step(spec, stage, err, model) from err
    except tf.errors.OpError as err:
        if imported:
            raise _in_imported_code(spec, stage, err) from err
        raise failed_step(spec, stage, err, model) from err
    except (ValueError, TypeError) as err:
        if imported:
            raise _in_imported_code(spec, stage, err) from err
        if not _raised_in_keras(err):
            raise  # kerapipe's own: a bug, not the file
        raise refused_step(spec, stage, err, model, source_file) from err
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


def _raised_in_keras(err: BaseException) -> bool:
    """Whether the innermost frame of the traceback is Keras's or TensorFlow's code."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    name = tb.tb_frame.f_code.co_filename if tb is not None else ""
    return any(part in name for part in ("/keras/", "/tensorflow/", "/tf_keras/"))


def _output_shape(model: Any) -> str:
    try:
        return f"{tuple(model.output_shape[1:])}"
    except (AttributeError, ValueError, TypeError):
        return "unknown"


def refused_step(spec: PipelineSpec, stage: str, err: BaseException, model: Any,
                 source_file: Optional[str]) -> SpecError:
    """Keras refused the step while tracing it: the file's model, loss or metrics do not
    fit the data's shapes or dtypes (exit 2)."""
    issue = Issue("training-refused", ("model",), f"{stage} stopped: Keras refused the step "
                  f"function when it traced it: {short_error(err)}. The model outputs shape "
                  f"{_output_shape(model)} per example; check that the last layers (a "
                  "Flatten before Dense?), the loss and the metrics fit the labels "
                  f"({_labels(spec)}).", at_key=True)
    issue.file = source_file or ""
    return SpecError([issue])


def failed_step(spec: PipelineSpec, stage: str, err: BaseException, model: Any
                ) -> TrainingError:
    """A running step failed on real values (exit 4)."""
    return TrainingError(f"{stage} failed: TensorFlow stopped a step with "
                         f"{type(err).__name__}: {short_error(err)}. Likely causes: labels "
                         f"beyond the model's output ({_output_shape(model)} per example) or "
                         "the loss, or a batch of another shape. KERAPIPE_DEBUG=1 shows the "
                         "traceback.")


def _labels(spec: PipelineSpec) -> str:
    one_hot = spec.data.first_options("one_hot") is not None
    return "one-hot vectors" if one_hot else "one class index or target per example"


def _in_imported_code(spec: PipelineSpec, stage: str, err: BaseException) -> TrainingError:
    text = re.sub(r"\s+", " ", str(err)).strip()[:400]
    return TrainingError(f"{stage} failed in a model that uses imported code "
                         f"({', '.join(spec.imports)}): {type(err).__name__}: {text}. Check "
                         "the custom layers and losses; KERAPIPE_DEBUG=1 shows the traceback.")
