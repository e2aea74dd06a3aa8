"""`kerapipe validate --deep`: build the model symbolically to catch what Keras refuses.

No data is read and nothing is trained: the preprocessing layers and the model are
built without allocating weights and called on a symbolic ``keras.Input`` of the
example shape known from the spec (typed features: their encoder adapted on made-up
cells); the loss, optimizer, schedule and metrics are built
and used once on a dummy batch of the shapes the run will have. Every refusal is
reported at the line of the offending key, exactly as ``plan`` and ``run`` report it
(the same guarded builders, ``compiler/build.py``).

The checks of the model's output against the labels live here too; ``compile_pipeline``
runs them again on the label shape and class count of the loaded data.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from kerapipe.compiler.build import (build_core_model, build_loss, build_metric,
                                     build_optimizer, dummy_batch, exercise_loss_and_metrics,
                                     exercise_optimizer)
from kerapipe.compiler.datasets import input_dtype
from kerapipe.compiler.preprocess import preprocessing_layers
from kerapipe.errors import SpecError, TrainingError
from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.checks import known_dataset
from kerapipe.spec.graph import model_nodes, output_node
from kerapipe.spec.issues import ERROR, NOTE, Issue
from kerapipe.spec.known_datasets import regression_without_data
from kerapipe.spec.known_datasets import example_shape_without_data, listed_columns_shape
from kerapipe.spec.model import PipelineSpec, is_custom_name
from kerapipe.spec.steps import step_kind, trace_shape
from kerapipe.spec.validate import pipeline_folder
from kerapipe.spec.yaml_loader import Document

# Losses that take one class index per example and one score per class.
SPARSE_LOSSES = frozenset({"SparseCategoricalCrossentropy", "CategoricalGeneralizedCrossEntropy"})
# Losses that compare each output with the label at the same place: equal shapes.
ELEMENTWISE_LOSSES = frozenset({
    "BinaryCrossentropy", "BinaryFocalCrossentropy", "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy", "CategoricalHinge", "CosineSimilarity", "Hinge", "Huber",
    "KLDivergence", "LogCosh", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanSquaredError", "MeanSquaredLogarithmicError", "Poisson", "SquaredHinge"})


# --deep allocates the weights of models up to this size (initializers refuse bad values
# only when called: `kernel_initializer: {class_name: Constant, config: {value: x}}`);
# larger ones are checked without weights, to stay fast and light.
DEEP_ALLOCATION_BOUND = 64 << 20


def deep_check(spec: PipelineSpec, document: Optional[Document] = None) -> list[Issue]:
    """Issues found by constructing every object and calling the layers symbolically."""
    issues: list[Issue] = []
    known = known_dataset(spec)
    raw_shape = raw_example_shape(spec)
    output_shape: Optional[tuple] = None
    if spec.imports:
        issues.append(Issue("deep-skipped", ("imports",), "this pipeline imports Python code, "
                            "which validate never runs, so --deep did not build the model; "
                            "`kerapipe plan --allow-imports` builds it.", severity=NOTE))
    elif raw_shape is None and spec.data.features is None:
        issues.append(Issue("deep-skipped", ("data", "source"), "the example shape depends on "
                            "the data, so --deep did not build the model (it reads no data).",
                            severity=NOTE))
    else:
        try:
            preprocessing = (typed_feature_preprocessing(spec) if spec.data.features is not None
                             else preprocessing_layers(spec, raw_shape, input_dtype(spec)))
            folder = pipeline_folder(document.file if document is not None else "<text>")
            model = build_core_model(spec, preprocessing.model_input_shape,
                                     preprocessing.model_input_dtype,
                                     allocate=False, base_dir=folder,
                                     allocate_up_to=DEEP_ALLOCATION_BOUND)
            output_shape = tuple(model.output_shape[1:])
        except SpecError as err:
            issues += err.issues
        except TrainingError as err:  # the weights would not fit in memory
            issues.append(Issue("model-too-large", getattr(err, "path", ("model",)),
                                str(err), at_key=True))
    classes = known.num_classes if known is not None else None
    labels = None
    # Labels are known without data when the source's kind tells (named sets, image folders).
    if raw_shape is not None and regression_without_data(spec.data.source) is not None:
        labels = label_shape(spec, classes, ())  # class indices or one target per example
        one_hot = one_hot_conflict(spec, classes)
        if one_hot is not None:
            issues.append(one_hot)
    loss = None if is_custom_name(spec.loss.name) else _collect(issues, lambda: build_loss(spec))
    if _collect(issues, lambda: build_optimizer(spec.optimizer)) is not None:
        _collect(issues, lambda: exercise_optimizer(spec.optimizer))
    for index, metric in enumerate(spec.metrics):
        _collect(issues, lambda: build_metric(metric, ("metrics", index)))
    if output_shape is not None and labels is not None and not any(
            i.severity == ERROR for i in issues):
        mismatch = output_mismatch(spec, output_shape, labels)
        sparse = spec.data.first_options("one_hot") is None
        batch = dummy_batch(output_shape, labels, sparse_labels=sparse)
        if mismatch is not None:
            issues.append(mismatch)
        elif batch is not None:
            _collect(issues, lambda: exercise_loss_and_metrics(spec, loss, batch))
    for issue in issues:
        if document is not None:
            document.locate(issue)
    return [i for i in issues if i.severity in (ERROR, NOTE)]


def _collect(issues: list[Issue], build: Callable[[], Any]) -> Any:
    """``build()``, or ``None`` with what Keras refused added to ``issues``."""
    try:
        result = build()
    except SpecError as err:
        issues += err.issues
        return None
    return True if result is None else result


# Made-up cells of each kind of typed column (``FeatureSpec.holds``), on which --deep
# adapts the features' encoder: distinct values, so that every Keras layer adapts.
MADE_UP_CELLS = {"number": [0.0, 1.0, 2.0, 3.0], "integer": [0, 1, 2, 3],
                 "string": ["a", "b", "c", "d"], "text": ["a b", "b c", "c d", "d a"]}


def typed_feature_preprocessing(spec: PipelineSpec) -> Any:
    """The typed features' preprocessing (``data.features``: keras.utils.FeatureSpace and
    TextVectorization), built as ``run`` builds it and adapted on a few made-up cells of
    each column's kind instead of the data, which --deep never reads: every Keras refusal
    of a feature's arguments and the model's input (one vector, or a dict by
    ``model.inputs``) are as in the run. Widths learned from the data (a vocabulary's
    one-hot size) are those of the made-up cells.

    Raises:
        SpecError: Keras refused a feature, at its key.
    """
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import numpy as np
    import tensorflow as tf

    from kerapipe.compiler.preprocess import build_preprocessing

    columns = {feature.name: np.asarray(
        MADE_UP_CELLS["text" if feature.is_text else feature.holds],
        dtype=object if feature.holds == "string" else feature.raw_dtype,
    ).reshape((-1, *feature.input_shape)) for feature in spec.data.features}
    return build_preprocessing(spec, lambda: tf.data.Dataset.from_tensor_slices(columns),
                               None, ())


def raw_example_shape(spec: PipelineSpec) -> Optional[tuple[int, ...]]:
    """Shape of one example as the data gives it (before the layer steps), when it is
    known without data: a named data set, an image folder's ``image_size``, a CSV's
    listed numeric columns (``csv.features``), after the steps applied when the data is
    loaded (``pad_sequences``, stage ``load``). What a load step makes of files is known
    only once they are read."""
    shape = example_shape_without_data(spec.data.source)
    if shape is None and spec.data.features is None:
        shape = listed_columns_shape(spec.data.source)
    loaded = [s for s in spec.data.preprocess if step_kind(s.kind).stage == "load"]
    if loaded and known_dataset(spec) is None:
        return None
    return trace_shape(shape, spec.data.preprocess, stages=("load",))


def label_shape(spec: PipelineSpec, num_classes: Optional[int], raw: tuple) -> tuple:
    """Shape of one label as the model sees it: ``raw`` (``()`` for a class index), or
    ``(classes,)`` after a ``one_hot`` step (``(None,)`` when the count is unknown)."""
    one_hot = spec.data.first_options("one_hot")
    if one_hot is None:
        return tuple(raw)
    return (one_hot.num_classes or num_classes,)


def one_hot_conflict(spec: PipelineSpec, num_classes: Optional[int]) -> Optional[Issue]:
    """A ``one_hot`` step with fewer classes than the labels have (tf.one_hot would turn
    the labels beyond it into all-zero vectors without a word)."""
    index, step = next(((i, s) for i, s in enumerate(spec.data.preprocess)
                        if s.kind == "one_hot"), (None, None))
    if step is None or num_classes is None or step.options.num_classes is None \
            or step.options.num_classes >= num_classes:
        return None
    return Issue("one-hot-classes", ("data", "preprocess", index, "one_hot", "num_classes"),
                 f"the labels have {num_classes} classes (0..{num_classes - 1}), but one_hot "
                 f"makes vectors of {step.options.num_classes}; labels from "
                 f"{step.options.num_classes} up would become all zeros. Set num_classes: "
                 f"{num_classes}, or remove it (the count in the data is used). Received: "
                 f"num_classes={step.options.num_classes}")


def output_mismatch(spec: PipelineSpec, output_shape: tuple, labels: tuple) -> Optional[Issue]:
    """The model's output shape against the labels' shape (both per example) for the loss.

    Sparse losses take a class index per example and a score per class, so the output has
    one more axis than the label; element-wise losses (``mse``, ``binary_crossentropy``,
    ``categorical_crossentropy``, ...) need equal shapes (a scalar label counts as
    ``(1,)``). Other and imported losses are not checked.
    """
    if is_custom_name(spec.loss.name):
        return None
    entry = load_catalog().losses.get(spec.loss.name)
    loss = entry.name if entry else spec.loss.name
    node = output_node(model_nodes(spec))
    last = node.path + (node.layer.name,) if node is not None else ("model",)
    out, want = tuple(output_shape), tuple(labels)
    if loss in SPARSE_LOSSES:
        if len(out) == len(want) + 1:
            return None
        flat = (" Add `- Flatten` (or a pooling layer) before the last Dense layers."
                if len(out) > len(want) + 1 else "")
        return Issue("output-shape", last, f"the model outputs shape {out} per example, but "
                     f"{spec.loss.name} takes {'one class index' if not want else want} per "
                     f"example and one score per class, i.e. an output of shape "
                     f"({', '.join(map(str, want)) + ', ' if want else ''}classes).{flat} "
                     f"Received: output shape {out}", at_key=True)
    if loss not in ELEMENTWISE_LOSSES:
        return None
    out_cmp, want_cmp = out or (1,), want or (1,)
    if len(out_cmp) == len(want_cmp) and all(a is None or b is None or a == b
                                             for a, b in zip(out_cmp, want_cmp)):
        return None
    if len(out_cmp) > len(want_cmp):
        return Issue("output-shape", last, f"the model outputs shape {out} per example, but "
                     f"labels have shape {want_cmp}. Add `- Flatten` (or a pooling layer) "
                     f"before the last Dense layers. Received: output shape {out}", at_key=True)
    what = ("one value per example (a class index or a target)" if not want
            else f"of shape {want}")
    fix = (" For class labels, use sparse_categorical_crossentropy; for a continuous target, "
           "an output of 1 unit." if not want else "")
    return Issue("output-shape", ("loss",), f"{spec.loss.name} compares each output with the "
                 f"label at the same place, but the model outputs shape {out} per example and "
                 f"the labels are {what}.{fix} Received: output shape {out}, label shape "
                 f"{want_cmp}")
