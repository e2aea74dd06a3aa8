"""`kerapipe validate --deep`: build the model symbolically to catch shape errors.

No data is read and nothing is trained: the layers are constructed and called on a
symbolic ``keras.Input`` of the example shape known from the spec, and the first
failure is reported at the line of the offending layer.
"""

from __future__ import annotations

from typing import Optional


from kerapipe.compiler.build import (build_core_model, build_loss, build_metric,
                                     build_optimizer, short_error)
from kerapipe.spec.checks import known_dataset, trace_example_shape
from kerapipe.spec.issues import ERROR, NOTE, Issue
from kerapipe.spec.model import PipelineSpec, is_custom_name
from kerapipe.spec.yaml_loader import Document


def deep_check(spec: PipelineSpec, document: Optional[Document] = None) -> list[Issue]:
    """Issues found by constructing every object and calling the layers symbolically."""
    issues: list[Issue] = []
    shape = trace_example_shape(spec)
    known = known_dataset(spec)
    if spec.imports:
        issues.append(Issue("deep-skipped", ("imports",), "this pipeline imports Python code, "
                            "which validate never runs, so --deep did not build the model; "
                            "`kerapipe plan --allow-imports` builds it.", severity=NOTE))
    elif shape is None:
        issues.append(Issue("deep-skipped", ("data", "source"), "the example shape depends on "
                            "the data, so --deep did not build the model (it reads no data).",
                            severity=NOTE))
    else:
        sequences = known is not None and known.input_shape is None
        _, model_issues = build_core_model(spec, shape, "int32" if sequences else "float32")
        issues += model_issues
    loss = () if is_custom_name(spec.loss.name) else ((("loss",), lambda: build_loss(spec)),)
    for path, build in (*loss,
                        (("optimizer",), lambda: build_optimizer(spec.optimizer))):
        try:
            build()
        except Exception as err:
            issues.append(Issue("keras-arguments", path, f"Keras refused it: {short_error(err)}"))
    for index, metric in enumerate(spec.metrics):
        try:
            build_metric(metric)
        except Exception as err:
            issues.append(Issue("keras-arguments", ("metrics", index), f"Keras refused it: "
                                f"{short_error(err)}"))
    for issue in issues:
        if document is not None:
            document.locate(issue)
    return [i for i in issues if i.severity in (ERROR, NOTE)]
