"""Checks across keys that need no data: they run on a fully typed ``PipelineSpec``.

Each check is a small function ``(spec, issues) -> None``; ``CHECKS`` lists them in the
order a run meets the things they look at (data, model, loss, training).
"""

from __future__ import annotations

import math
import re
from typing import Callable, Iterator, Optional

from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.datasets import KERAS_DATASETS, SAMPLES, KnownDataset
from kerapipe.spec.issues import WARNING, Issue, did_you_mean, safe_repr
from kerapipe.spec.model import (NESTED_LAYER_ARGS, LayerSpec, PipelineSpec, ScheduleSpec,
                                 is_custom_name)

_LAYERS = ("model", "layers")
_TEXT_DATASETS = ("imdb", "reuters")
_PASS_THROUGH = ("Activation", "Softmax", "Dropout", "GaussianDropout", "GaussianNoise",
                 "AlphaDropout", "ActivityRegularization")


def known_dataset(spec: PipelineSpec) -> Optional[KnownDataset]:
    """Facts about the data set when the source names one kerapipe knows."""
    source = spec.data.source
    if source.sample is not None:
        return SAMPLES[source.sample]
    if source.keras is not None:
        return KERAS_DATASETS[source.keras.name]
    return None


def output_activation(layers: list[LayerSpec]) -> str:
    """Activation of the model's output: ``softmax``, ``sigmoid``, ``linear``, ...

    The compile side uses it to infer ``from_logits`` when the loss does not say.
    """
    for layer in reversed(layers):
        if layer.name == "Softmax":
            return "softmax"
        if layer.name == "Activation" or "activation" in layer.kwargs:
            return str(layer.kwargs.get("activation") or "linear")
        if layer.name not in _PASS_THROUGH:
            return "linear"
    return "linear"


def _output_layer(layers: list[LayerSpec]) -> tuple[int, LayerSpec] | None:
    """The last layer that sets the output width (skipping activations and dropout)."""
    for index in range(len(layers) - 1, -1, -1):
        if layers[index].name not in _PASS_THROUGH:
            return index, layers[index]
    return None


def _loss_class(spec: PipelineSpec) -> str:
    entry = load_catalog().losses.get(spec.loss.name)
    return entry.name if entry else spec.loss.name


def every_layer(spec: PipelineSpec) -> Iterator[tuple[tuple, LayerSpec]]:
    """``(key path, layer)`` of every layer in the file, nested ones included.

    The one walk over layers: the model's layers, the layers inside their layer-valued
    arguments (``layer:``, ``backward_layer:``, at any depth) and the ``Random*`` layers
    of ``data.preprocess``. A layer's arguments sit at ``path + (layer.name, arg)``.
    """
    def walk(layer: LayerSpec, path: tuple) -> Iterator[tuple[tuple, LayerSpec]]:
        yield path, layer
        for arg in NESTED_LAYER_ARGS:
            nested = layer.kwargs.get(arg)
            if isinstance(nested, LayerSpec):
                yield from walk(nested, path + (layer.name, arg))

    for index, layer in enumerate(spec.model.layers):
        yield from walk(layer, _LAYERS + (index,))
    for index, step in enumerate(spec.data.preprocess):
        if isinstance(step.options, LayerSpec):
            yield from walk(step.options, ("data", "preprocess", index))


def check_split(spec: PipelineSpec, issues: list[Issue]) -> None:
    split = spec.data.split
    known = known_dataset(spec)
    test = 0.0 if known is not None and known.has_test_split else split.test
    if split.validation + test >= 1:
        issues.append(Issue("no-training-data", ("data", "split"), "validation and test fractions "
                            f"add up to {split.validation + test:g}, which leaves no training "
                            "examples. Make them sum to less than 1 (e.g. 0.1 and 0.1)."))
    if known is not None and spec.data.source.keras is not None:
        keras_source = spec.data.source.keras
        if keras_source.num_words is not None and keras_source.name not in _TEXT_DATASETS:
            issues.append(Issue("not-applicable", ("data", "source", "keras", "num_words"),
                                f"num_words applies to imdb and reuters only, not "
                                f"'{keras_source.name}'. Remove it."))


def trace_example_shape(spec: PipelineSpec, issues: Optional[list[Issue]] = None
                        ) -> Optional[tuple[int, ...]]:
    """Shape of one example after preprocessing, when it is known without data.

    Follows the shape through reshape/resize/pad_sequences steps; reports impossible
    reshapes to ``issues`` when given. ``None`` when the shape depends on the data.
    """
    issues = [] if issues is None else issues
    known = known_dataset(spec)
    source = spec.data.source
    shape: Optional[tuple[int, ...]] = known.input_shape if known else None
    if source.images is not None:
        channels = {"grayscale": 1, "rgb": 3, "rgba": 4}[source.images.color_mode]
        shape = (*source.images.image_size, channels)
    for index, step in enumerate(spec.data.preprocess):
        path = ("data", "preprocess", index, step.kind)
        if step.kind == "reshape":
            target = list(step.options.target_shape)
            shape = _check_reshape(shape, target, path + ("target_shape",), issues)
        elif step.kind == "resize":
            shape = (*step.options.size, *shape[2:]) if shape and len(shape) >= 2 else None
        elif step.kind == "pad_sequences":
            shape = (step.options.maxlen,)
        elif step.kind == "normalize":
            _check_axis(shape, step.options.axis, path + ("axis",), issues)
        elif step.kind == "RandomCrop":
            _check_crop(shape, step.options.kwargs, path, issues)
    return shape


def _check_axis(shape: Optional[tuple[int, ...]], axis: Optional[int], path: tuple,
                issues: list[Issue]) -> None:
    """``normalize.axis`` names an axis of the example: 1..rank, or -rank..-1."""
    if shape is None or axis is None or axis == 0:  # 0 is refused by NormalizeStep
        return
    rank = len(shape)
    if not (1 <= axis <= rank or -rank <= axis <= -1):
        issues.append(Issue("out-of-range", path, f"an example here has shape {list(shape)} "
                            f"({rank} axes), so axis must be from 1 to {rank} or from -{rank} "
                            f"to -1 (or null for one mean and variance). Received: axis={axis}"))


def _check_crop(shape: Optional[tuple[int, ...]], kwargs: dict, path: tuple,
                issues: list[Issue]) -> None:
    """A ``RandomCrop`` fits in the image it crops.

    The traced shape stays as it is: augmentation runs on training batches only, so the
    model sees the uncropped shape (the compile side refuses a step that changes it).
    """
    height, width = kwargs.get("height"), kwargs.get("width")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (height, width)):
        return  # a wrong type is reported already (or Keras reports it)
    first = 1 if kwargs.get("data_format") == "channels_first" else 0
    image = shape[first:first + 2] if shape is not None and len(shape) == 3 else None
    if min(height, width) < 1 or (image and (height > image[0] or width > image[1])):
        within = f"the {image[0]}x{image[1]} image" if image else "an image"
        size = f"{safe_repr(height)}x{safe_repr(width)}"
        issues.append(Issue("crop-size", path, f"a crop of {size} does not fit in "
                            f"{within} it receives: height and width are from 1 up to the "
                            "image's (Keras would enlarge the image instead of cropping it). "
                            "Lower them, or resize first. Received: "
                            f"height={safe_repr(height)}, width={safe_repr(width)}",
                            at_key=True))


def check_shapes(spec: PipelineSpec, issues: list[Issue]) -> None:
    trace_example_shape(spec, issues)


def _check_reshape(shape: Optional[tuple[int, ...]], target: list[int], path: tuple,
                   issues: list[Issue]) -> Optional[tuple[int, ...]]:
    unknown = [d for d in target if d == -1]
    if len(unknown) > 1 or any(d == 0 or d < -1 for d in target):
        issues.append(Issue("reshape-size", path, "a target shape holds positive sizes and at "
                            f"most one -1. Received: target_shape={target}"))
        return None
    if shape is None:
        return None
    size = math.prod(shape)
    known_part = math.prod(d for d in target if d != -1)
    fits = size % known_part == 0 if unknown else size == known_part
    if not fits:
        issues.append(Issue("reshape-size", path, f"cannot reshape an example of shape "
                            f"{list(shape)} ({size} values) to {target} ({known_part} values). "
                            f"Use sizes whose product is {size}."))
        return None
    return tuple(size // known_part if d == -1 else d for d in target)


def check_output_units(spec: PipelineSpec, issues: list[Issue]) -> None:
    known = known_dataset(spec)
    if known is None or known.num_classes is None:
        return
    found = _output_layer(spec.model.layers)
    if found is None:
        return
    index, layer = found
    units = layer.kwargs.get("units")
    classes = known.num_classes
    if not isinstance(units, int) or units == classes or (classes == 2 and units == 1):
        return
    name = spec.data.source.sample or spec.data.source.keras.name
    issues.append(Issue("class-count-mismatch", _LAYERS + (index, layer.name, "units"),
                        f"the output layer has {safe_repr(units)} units but '{name}' has {classes} "
                        f"classes. Set units: {classes}" + (" (or 1 with a sigmoid and "
                        "binary_crossentropy)." if classes == 2 else ".")))


def class_count(spec: PipelineSpec) -> Optional[int]:
    """The number of classes when known without data: the named data set's, else the
    output layer's ``units`` (from 2; one unit may be a sigmoid or a regression)."""
    known = known_dataset(spec)
    if known is not None:
        return known.num_classes
    found = _output_layer(spec.model.layers)
    units = found[1].kwargs.get("units") if found else None
    if isinstance(units, int) and not isinstance(units, bool) and units >= 2:
        return units
    return None


def check_top_k(spec: PipelineSpec, issues: list[Issue]) -> None:
    classes = class_count(spec)
    top_k = spec.output.top_k
    if classes is not None and top_k > classes:
        issues.append(Issue("out-of-range", ("output", "top_k"), f"top_k {top_k} asks for more "
                            f"ranks than the {classes} classes the model predicts; "
                            f"predictions.csv would have rows of different lengths. Set top_k "
                            f"to at most {classes}. Received: top_k={top_k}"))


def check_logits(spec: PipelineSpec, issues: list[Issue]) -> None:
    activation = output_activation(spec.model.layers)
    from_logits = spec.loss.kwargs.get("from_logits")
    if activation in ("softmax", "sigmoid") and from_logits is True:
        issues.append(Issue("logits-conflict", ("loss", "from_logits"), f"the last layer applies "
                            f"{activation}, so it outputs probabilities, not logits. Remove "
                            "`from_logits: true` (kerapipe infers it) or drop the activation."))
    elif activation == "linear" and from_logits is False:
        issues.append(Issue("probabilities-expected", ("loss", "from_logits"), "the last layer has "
                            "no activation, so it outputs logits, but the loss says "
                            "`from_logits: false`. Remove it (kerapipe infers it).",
                            severity=WARNING))


def check_loss_matches_labels(spec: PipelineSpec, issues: list[Issue]) -> None:
    loss = _loss_class(spec)
    one_hot = any(step.kind == "one_hot" for step in spec.data.preprocess)
    known = known_dataset(spec)
    if one_hot and loss == "SparseCategoricalCrossentropy":
        issues.append(Issue("loss-label-mismatch", ("loss",), "labels are one-hot (a `one_hot` "
                            "step) but sparse_categorical_crossentropy expects class indices. "
                            "Use categorical_crossentropy, or remove the one_hot step."))
    elif not one_hot and loss == "CategoricalCrossentropy" and (known is None or known.num_classes):
        issues.append(Issue("loss-label-mismatch", ("loss",), "categorical_crossentropy expects "
                            "one-hot labels, but labels are class indices. Use "
                            "sparse_categorical_crossentropy, or add `- one_hot: {}` to "
                            "data.preprocess."))
    if known is not None and known.num_classes is None and loss in (
            "SparseCategoricalCrossentropy", "CategoricalCrossentropy"):
        issues.append(Issue("regression-target", ("loss",), "this data set has a continuous "
                            "target, not classes; a classification loss will not learn it. Use "
                            "mean_squared_error with `Dense: {units: 1}`.", severity=WARNING))


def logged_metric_names(spec: PipelineSpec) -> list[str]:
    """Names that Keras's History will hold for this run (what `monitor` may name)."""
    names = ["loss"]
    metrics = load_catalog().metrics
    for metric in spec.metrics:
        if metric.name in ("accuracy", "acc") or metric.name in metrics.by_alias:
            names.append(metric.name)  # Keras logs string identifiers as written
        else:
            entry = metrics.get(metric.name)
            names.append(entry.logged_name if entry and entry.logged_name else metric.name)
    if spec.data.split.validation > 0:
        names += ["val_" + name for name in list(names)]
    return names


def check_early_stopping(spec: PipelineSpec, issues: list[Issue]) -> None:
    early = spec.train.early_stopping
    if early is None:
        return
    path = ("train", "early_stopping", "monitor")
    available = logged_metric_names(spec)
    if early.monitor not in available:
        if early.monitor.startswith("val_") and spec.data.split.validation == 0:
            why = " There is no validation split (data.split.validation is 0)."
        else:
            why = did_you_mean(early.monitor, available)
        issues.append(Issue("unknown-monitor", path, f"'{early.monitor}' is not a metric this "
                            f"run logs.{why} It logs: {', '.join(available)}."))
    if early.patience >= spec.train.epochs:
        issues.append(Issue("patience-ge-epochs", ("train", "early_stopping", "patience"),
                            f"patience {early.patience} is not below epochs "
                            f"{spec.train.epochs}, so early stopping can never trigger.",
                            severity=WARNING))


def check_suspicious_values(spec: PipelineSpec, issues: list[Issue]) -> None:
    rate = spec.optimizer.learning_rate
    if not isinstance(rate, ScheduleSpec) and rate > 1:
        issues.append(Issue("large-learning-rate", ("optimizer", "learning_rate"), f"learning "
                            f"rate {rate:g} is above 1; training will most likely diverge "
                            "(typical values: 0.0001 to 0.01).", severity=WARNING))
    known = known_dataset(spec)
    if known is not None and spec.data.batch_size > known.train_size:
        issues.append(Issue("batch-larger-than-data", ("data", "batch_size"), f"batch size "
                            f"{spec.data.batch_size} exceeds the {known.train_size} training "
                            "examples; each epoch is a single partial batch.", severity=WARNING))
    train = spec.train
    if train.jit_compile is True and train.deterministic and spec.seed is not None:
        issues.append(Issue("jit-ignored", ("train", "jit_compile"), "Keras turns XLA off while "
                            "deterministic ops are on, so `jit_compile: true` has no effect. "
                            "Set train.deterministic: false to use XLA.", severity=WARNING))
    for index, layer in enumerate(spec.model.layers):
        for arg in ("input_shape", "input_dim"):
            if arg in layer.kwargs and layer.name != "Embedding":  # Embedding.input_dim is vocab
                issues.append(Issue("input-shape-ignored", _LAYERS + (index, layer.name, arg),
                                    f"kerapipe infers the model's input from the data; Keras "
                                    f"ignores `{arg}` here (with a warning). Remove it.",
                                    severity=WARNING))
    last = spec.model.layers[-1]
    if last.name in ("Dropout", "GaussianDropout", "AlphaDropout"):
        issues.append(Issue("dropout-last", _LAYERS + (len(spec.model.layers) - 1, last.name),
                            "dropout as the last layer drops output logits; put it before the "
                            "output layer.", severity=WARNING))


_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\Z")


def import_name(entry: str) -> Optional[str]:
    """The module name an `imports:` entry defines (a file's stem, or the module name
    itself), or ``None`` when the entry is neither a ``.py`` file nor a module name."""
    if entry.endswith(".py"):
        stem = entry.replace("\\", "/").rsplit("/", 1)[-1][:-3]
        return stem if _MODULE_NAME.match(stem) and "." not in stem else None
    return entry if _MODULE_NAME.match(entry) else None


def custom_references(spec: PipelineSpec) -> list[tuple[tuple, str]]:
    """``(key path, name)`` of every ``module.Name`` layer (nested ones too) and loss."""
    found = [(path + (layer.name,), layer.name) for path, layer in every_layer(spec)
             if is_custom_name(layer.name)]
    if is_custom_name(spec.loss.name):
        found.append((("loss",), spec.loss.name))
    return found


def check_imports(spec: PipelineSpec, issues: list[Issue]) -> None:
    """Every `imports:` entry defines one module name; every ``module.Name`` uses one."""
    names: dict[str, int] = {}
    for index, entry in enumerate(spec.imports):
        name = import_name(entry)
        if name is None:
            issues.append(Issue("bad-import", ("imports", index), f"'{entry}' is neither a "
                                "`.py` file whose name is a Python module name (letters, "
                                "digits, _) nor an installed module name such as "
                                "`my_package.layers`."))
        elif name in names:
            issues.append(Issue("bad-import", ("imports", index), f"'{entry}' defines the "
                                f"module name '{name}', like imports[{names[name]}]; rename "
                                "one of the files."))
        else:
            names[name] = index
    for path, reference in custom_references(spec):
        module = reference.rsplit(".", 1)[0]
        if module not in names:
            listed = (f"imports: lists {', '.join(names)}" if names
                      else "the pipeline has no `imports:`")
            issues.append(Issue("unknown-import", path, f"'{reference}' names module "
                                f"'{module}', but {listed}. Keras names have no dot; a custom "
                                f"class needs its file in `imports:`, e.g. `imports: "
                                f"[{module}.py]`.", at_key=path[0] != "loss"))


def imports_not_allowed(spec: PipelineSpec) -> Issue:
    """The issue (exit 2) of a pipeline that imports code the caller did not allow."""
    return Issue("imports-not-allowed", ("imports",), f"this pipeline imports Python code "
                 f"({', '.join(spec.imports)}), which would run with your permissions. Read "
                 "it first; to run it, pass --allow-imports (Python: allow_imports=True).",
                 at_key=True)


CHECKS: list[Callable[[PipelineSpec, list[Issue]], None]] = [
    check_imports,
    check_split,
    check_shapes,
    check_output_units,
    check_top_k,
    check_logits,
    check_loss_matches_labels,
    check_early_stopping,
    check_suspicious_values,
]


def run_checks(spec: PipelineSpec) -> list[Issue]:
    """Every cross-key issue of a typed spec (errors and warnings)."""
    issues: list[Issue] = []
    for check in CHECKS:
        check(spec, issues)
    return issues


__all__ = ["run_checks", "logged_metric_names", "output_activation", "known_dataset",
           "trace_example_shape", "every_layer", "class_count", "did_you_mean"]
