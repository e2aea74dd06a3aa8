"""Where the Keras class of a layer name comes from, and how it is constructed.

The one place that turns a catalogued layer name into a Keras object: ``keras.layers``
by default, the pipeline's imported classes for ``module.Name``. Each origin the
catalogue knows is resolved here and nowhere else.
"""

from __future__ import annotations

from typing import Any, Optional

from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
import keras

from kerapipe.spec.model import is_custom_name


def construct_layer(name: str, kwargs: dict, custom: Optional[dict[str, Any]] = None,
                    input_shape: Optional[tuple] = None) -> Any:
    """A new layer of the class ``name`` names, from keyword arguments already resolved.

    Args:
        name: the layer's name in the file (`Dense`, `module.Name`).
        kwargs: its keyword arguments (nested layers already built).
        custom: the pipeline's imported classes by ``module.Name``.
        input_shape: the shape (batch axis first) of the tensor it will be called on,
            when known. Unused by keras.layers classes.
    """
    if is_custom_name(name):
        return (custom or {})[name](**kwargs)
    return getattr(keras.layers, name)(**kwargs)
