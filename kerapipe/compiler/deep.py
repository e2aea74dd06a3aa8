"""`kerapipe validate --deep`: build the model symbolically to catch shape errors.

No data is read and nothing is trained: the layers are constructed and called on a
symbolic ``keras.Input`` of the example shape known from the spec, and the first
failure is reported at the line of the offending layer.
"""

from __future__ import annotations

import re
from typing import Optional

import keras

from kerapipe.compiler.build import build_layer, build_loss, build_metric, build_optimizer
from kerapipe.spec.checks import known_dataset, trace_example_shape
from kerapipe.spec.issues import ERROR, NOTE, Issue
from kerapipe.spec.model import PipelineSpec
from kerapipe.spec.yaml_loader import Document


def _short(err: Exception) -> str:
    text = re.sub(r"\s+", " ", str(err)).strip()
    text = text.split(" Arguments received by ")[0]  # Keras appends a long call dump
    return (text[:400] + "...") if len(text) > 400 else text


def deep_check(spec: PipelineSpec, document: Optional[Document] = None) -> list[Issue]:
    """Issues found by constructing every object and calling the layers symbolically."""
    issues: list[Issue] = []
    shape = trace_example_shape(spec)
    known = known_dataset(spec)
    if shape is None:
        issues.append(Issue("deep-skipped", ("data", "source"), "the example shape depends on "
                            "the data, so --deep did not build the model (it reads no data).",
                            severity=NOTE))
    else:
        sequences = known is not None and known.input_shape is None
        tensor = keras.Input(shape=shape, dtype="int32" if sequences else "float32")
        for index, layer_spec in enumerate(spec.model.layers):
            path = ("model", "layers", index, layer_spec.name)
            try:
                layer = build_layer(layer_spec)
            except Exception as err:  # Keras raises many types for bad arguments
                issues.append(Issue("layer-arguments", path, f"Keras refused the arguments of "
                                    f"{layer_spec.name}: {_short(err)}", at_key=True))
                break
            try:
                tensor = layer(tensor)
            except Exception as err:
                issues.append(Issue("shape-error", path, f"{layer_spec.name} cannot take an "
                                    f"input of shape {tuple(tensor.shape)}: {_short(err)}",
                                    at_key=True))
                break
    for path, build in ((("loss",), lambda: build_loss(spec)),
                        (("optimizer",), lambda: build_optimizer(spec.optimizer))):
        try:
            build()
        except Exception as err:
            issues.append(Issue("keras-arguments", path, f"Keras refused it: {_short(err)}"))
    for index, metric in enumerate(spec.metrics):
        try:
            build_metric(metric)
        except Exception as err:
            issues.append(Issue("keras-arguments", ("metrics", index), f"Keras refused it: "
                                f"{_short(err)}"))
    for issue in issues:
        if document is not None:
            document.locate(issue)
    return [i for i in issues if i.severity in (ERROR, NOTE)]
