"""Mixed precision (``train.precision``): Keras's dtype policy, scoped to one model build.

Keras's dtype policy is process-wide (``keras.config.set_dtype_policy``): a layer built
without ``dtype`` takes the policy in force when it is constructed. ``policy_scope`` sets
the pipeline's policy only while its trainable model is built and restores the one before
in ``finally``, so the preprocessing layers (built before), the inference model's layers
(built after) and any other pipeline compiled later in the same process stay float32.
Inside the scope, ``float32_scope`` builds a model's output layers in float32: the
logits or probabilities, and so the loss, are float32 (the Keras mixed precision guide's
advice; float16 logits overflow in a softmax).

A ``mixed_float16`` model trains with loss scaling: ``Model.compile`` wraps the optimizer
in ``keras.optimizers.LossScaleOptimizer`` when the compiled model's own policy is
``mixed_float16`` (``keras/src/trainers/trainer.py``); ``loss_scaled`` does it for a
compiled model whose policy is not (a model wrapped after the build, e.g. with a
regression target's unscaling layer). bfloat16 has float32's range and needs none.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
import keras
import tensorflow as tf

DEFAULT = "float32"
LOSS_SCALED = "mixed_float16"

# Wall time of an epoch at a mixed policy over float32 on 2 CPU cores, a small CNN on
# the bundled MNIST digits (bench/precision.py --rounds 3, TF 2.21 / Keras 3.15; an MLP
# of three Dense 1024 was no faster either: 1.03-1.09x the CPU time). CPUs have no fast
# 16-bit matrix units: every layer pays the casts, and bfloat16 kernels are emulated.
CPU_SLOWDOWN = {"mixed_float16": "2.7x", "mixed_bfloat16": "7.3x"}


@contextlib.contextmanager
def policy_scope(precision: str) -> Iterator[None]:
    """Within the block, layers built without a ``dtype`` take the policy ``precision``
    (``float32``, ``mixed_float16``, ``mixed_bfloat16``); the policy in force before is
    restored afterwards, whatever happens inside."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def float32_scope() -> contextlib.AbstractContextManager:
    """A block in which new layers compute in float32 (an output layer of a mixed model);
    a no-op under a float32 policy."""
    if keras.config.dtype_policy().name == DEFAULT:
        return contextlib.nullcontext()
    return policy_scope(DEFAULT)


def loss_scaled(optimizer: keras.optimizers.Optimizer, precision: str
                ) -> keras.optimizers.Optimizer:
    """``optimizer`` wrapped in a ``LossScaleOptimizer`` for a ``mixed_float16`` model
    (dynamic loss scaling: float16 gradients would underflow to zero); unchanged otherwise
    or when it is wrapped already."""
    if precision != LOSS_SCALED or isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer, name="loss_scale_optimizer")


def slow_precision_warning(precision: str) -> Optional[str]:
    """The warning for a mixed ``precision`` on a machine where it is slower than float32
    (no GPU nor TPU visible to TensorFlow), or ``None``."""
    if precision == DEFAULT or any(tf.config.list_physical_devices(kind)
                                   for kind in ("GPU", "TPU")):
        return None
    return (f"warning: train.precision is {precision}, but TensorFlow sees no GPU or TPU: "
            "on a CPU mixed precision is slower than float32 (bench/precision.py: a small "
            f"CNN's epoch took {CPU_SLOWDOWN[precision]} as long, an MLP's no less). It pays "
            "off on GPUs with tensor cores and on TPUs; use `precision: float32` here.")
