"""What Keras itself lists, read for the typed arguments of the catalogue.

- ``build_arg_defs``: the catalogue's shared types (``arg_defs``): the activation names,
  and the initializer, regularizer, constraint and dtype names Keras's ``get`` functions
  accept (tried one by one, so a name that needs arguments, ``constant``, is left out);
- ``read_from_keras``: argument values Keras keeps in a constant of its source rather
  than in the docstring (the resize interpolations, the loss reductions).

Used by ``gen_keras_catalog.py``; fragments as in ``catalog_arg_types.py``.
"""

from __future__ import annotations

import inspect
from typing import Any


def read_from_keras(keras: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Types whose values Keras keeps in a constant rather than in the docstring (which
    lists fewer: Resizing's misses `area`); the TensorFlow backend's, kerapipe's."""
    from keras.src.backend.tensorflow import image
    from keras.src.losses import loss

    resize = {"interpolation": {"enum": list(image.RESIZE_INTERPOLATIONS)}}
    reduction = {"reduction": {"enum": _set_literal(loss.standardize_reduction)}}
    return {"layers": {"Resizing": resize, "UpSampling2D": resize},
            "hub_layers": {"ImageConverter": resize},  # it resizes with keras's Resizing
            "losses": {"*": reduction}}


def _set_literal(fn: Any) -> list[Any]:
    """The values of the one set literal in ``fn``'s source (``allowed = {...}``), in
    their order there."""
    import ast
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    found = [node for node in ast.walk(tree) if isinstance(node, ast.Set)]
    if len(found) != 1:
        raise SystemExit(f"cannot read the accepted values of {fn.__qualname__}: teach "
                         "read_from_keras where this Keras keeps them")
    return [ast.literal_eval(element) for element in found[0].elts]


def _names_get_accepts(keras: Any, module_name: str) -> list[str]:
    """The string names ``keras.<module>.get`` turns into an object (the abstract base
    class's name left out: its object cannot be used)."""
    import importlib
    module = getattr(keras, module_name)
    names = importlib.import_module(f"keras.src.{module_name}").ALL_OBJECTS_DICT
    base = {"initializers": keras.initializers.Initializer,
            "regularizers": keras.regularizers.Regularizer,
            "constraints": keras.constraints.Constraint}[module_name]
    accepted = []
    for name in sorted(names):
        try:
            obj = module.get(name)
        except Exception:  # e.g. `constant` needs its value: the name alone fails
            continue
        if type(obj) is not base:
            accepted.append(name)
    return accepted


def _dtype_names(keras: Any) -> list[str]:
    """The dtype and dtype-policy names a layer's ``dtype`` takes: Keras's dtypes, the
    mixed policies and the quantized ``<mode>_from_<policy>`` ones Keras builds by name
    (``gptq``/``awq`` need bit and group sizes in the name: left out)."""
    from keras.src.backend.common import dtypes

    names = sorted(dtypes.ALLOWED_DTYPES) + ["int", "mixed_bfloat16", "mixed_float16"]
    sources = ["bfloat16", "float16", "float32", "mixed_bfloat16", "mixed_float16"]
    for mode in keras.src.dtype_policies.QUANTIZATION_MODES:
        for source in sources:
            try:
                keras.dtype_policies.get(f"{mode}_from_{source}")
            except Exception:
                continue
            names.append(f"{mode}_from_{source}")
    return names


def build_arg_defs(keras: Any, activations: list[str]) -> dict[str, Any]:
    """The shared types: a name Keras's ``get`` accepts, a ``{class_name, config}``
    mapping (Keras's serialized form, which kerapipe passes on verbatim), or null."""
    def named(names: list[str]) -> dict[str, Any]:
        return {"anyOf": [{"enum": names}, {"type": "object"}, {"type": "null"}]}

    return {
        # An activation: a catalogue name or null (a mapping names a layer, not this).
        "activation": {"anyOf": [{"enum": list(activations)}, {"type": "null"}]},
        "initializer": named(_names_get_accepts(keras, "initializers")),
        "regularizer": named(_names_get_accepts(keras, "regularizers")),
        "constraint": named(_names_get_accepts(keras, "constraints")),
        "dtype": named(_dtype_names(keras)),
    }


ARG_DEF_DOCS = {
    "activation": "An activation function by its Keras name (`relu`, `softmax`, ...), or "
                  "null for none (linear).",
    "initializer": "A Keras initializer by name (`glorot_uniform`, `he_normal`, `zeros`, "
                   "...) or as `{class_name: ..., config: {...}}`.",
    "regularizer": "A Keras regularizer by name (`l1`, `l2`, `l1l2`) or as `{class_name: "
                   "L2, config: {l2: 0.01}}`; null for none.",
    "constraint": "A Keras weight constraint by name (`max_norm`, `non_neg`, `unit_norm`, "
                  "...) or as `{class_name: ..., config: {...}}`; null for none.",
    "dtype": "The dtype of the layer's computations and weights (`float32`, ...) or a "
             "dtype policy name (`mixed_float16`, `mixed_bfloat16`).",
}
