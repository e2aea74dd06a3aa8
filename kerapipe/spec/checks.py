"""Checks across keys that need no data: they run on a fully typed ``PipelineSpec``.

Each check is a small function ``(spec, issues) -> None``; ``CHECKS`` lists them in the
order a run meets the things they look at (data, model, loss, training).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterator, Optional

from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.known_datasets import (KnownDataset, example_shape_without_data,
                                          known_dataset_name, regression_without_data)
from kerapipe.spec.known_datasets import known_dataset as _known_dataset
from kerapipe.spec.issues import WARNING, Issue, did_you_mean
from kerapipe.spec.label_kinds import (BINARY_LOSSES, ONE_HOT_LOSSES, REGRESSION_LOSSES,
                                       SPARSE_CLASS_LOSSES)
from kerapipe.spec.metrics import (RunLabels, logged_metric_name, metric_issues, output_heads,
                                   run_labels)
from kerapipe.spec.applications import backbone_issues, is_backbone
from kerapipe.spec.graph import (ModelNode, as_nodes, graph_issues, model_nodes, output_node,
                                 toward_input)
from kerapipe.spec.model import (NESTED_LAYER_ARGS, LayerSpec, PipelineSpec, ScheduleSpec,
                                 is_custom_name)
from kerapipe.spec.steps import trace_shape

_PASS_THROUGH = ("Activation", "Softmax", "Dropout", "GaussianDropout", "GaussianNoise",
                 "AlphaDropout", "ActivityRegularization")


def known_dataset(spec: PipelineSpec) -> Optional[KnownDataset]:
    """Facts about the data set when the source names one kerapipe knows."""
    return _known_dataset(spec.data.source)


def output_activation(model: Any, output: Optional[str] = None) -> str:
    """Activation of the model's output: ``softmax``, ``sigmoid``, ``linear``, ...

    ``model``: a ``PipelineSpec``, its nodes (``graph.model_nodes``), or layers as a
    chain. Read from the
    output node back toward the input, past activations and dropout. The compile side
    uses it to infer ``from_logits`` when the loss does not say. ``output``: the node of
    one output of several (``OutputHead.node``); default: the (first) output.
    """
    nodes = as_nodes(model)
    start = (next((node for node in nodes if node.name == output), None) if output is not None
             else output_node(nodes))
    for layer in (node.layer for node in toward_input(nodes, start)):
        if layer.name == "Softmax":
            return "softmax"
        if layer.name == "Activation" or "activation" in layer.kwargs:
            return str(layer.kwargs.get("activation") or "linear")
        if layer.name not in _PASS_THROUGH:
            return "linear"
    return "linear"


def output_layer(spec: PipelineSpec) -> Optional[ModelNode]:
    """The node that sets the output width: the output node, or the first node toward
    the input that is no activation or dropout."""
    nodes = model_nodes(spec)
    return next((node for node in toward_input(nodes, output_node(nodes))
                 if node.layer.name not in _PASS_THROUGH), None)


CLASS_LOSSES = BINARY_LOSSES | SPARSE_CLASS_LOSSES | ONE_HOT_LOSSES


def _loss_class(spec: PipelineSpec) -> str:
    entry = load_catalog().losses.get(spec.loss.name)
    return entry.name if entry else spec.loss.name


def every_layer(spec: PipelineSpec) -> Iterator[tuple[tuple, LayerSpec]]:
    """``(key path, layer)`` of every layer in the file, nested ones included.

    The one walk over layers: the model's nodes, the layers inside their layer-valued
    arguments (``layer:``, ``backward_layer:``, at any depth) and the ``Random*`` layers
    of ``data.preprocess``. A layer's arguments sit at ``path + (layer.name, arg)``.
    """
    def walk(layer: LayerSpec, path: tuple) -> Iterator[tuple[tuple, LayerSpec]]:
        yield path, layer
        for arg in NESTED_LAYER_ARGS:
            nested = layer.kwargs.get(arg)
            if isinstance(nested, LayerSpec):
                yield from walk(nested, path + (layer.name, arg))

    for node in model_nodes(spec):
        yield from walk(node.layer, node.path)
    for index, step in enumerate(spec.data.preprocess):
        if isinstance(step.options, LayerSpec):
            yield from walk(step.options, ("data", "preprocess", index))


def check_graph(spec: PipelineSpec, issues: list[Issue]) -> None:
    """The wiring of ``model.layers`` (``graph.graph_issues``)."""
    issues += graph_issues(spec)


def check_split(spec: PipelineSpec, issues: list[Issue]) -> None:
    split = spec.data.split
    known = known_dataset(spec)
    test = 0.0 if known is not None and known.has_test_split else split.test_fraction
    if split.validation_fraction + test >= 1:
        issues.append(Issue("no-training-data", ("data", "split"), "validation and test fractions "
                            f"add up to {split.validation_fraction + test:g}, which leaves no "
                            "training "
                            "examples. Make them sum to less than 1 (e.g. 0.1 and 0.1)."))


def trace_example_shape(spec: PipelineSpec, issues: Optional[list[Issue]] = None
                        ) -> Optional[tuple[int, ...]]:
    """Shape of one example after preprocessing, when it is known without data.

    Follows the shape through each step's effect (``steps.STEPS``); reports what a step
    cannot take (an impossible reshape, an axis or a crop that does not fit) to
    ``issues`` when given. ``None`` when the shape depends on the data.
    """
    return trace_shape(example_shape_without_data(spec.data.source), spec.data.preprocess,
                       issues)


def check_shapes(spec: PipelineSpec, issues: list[Issue]) -> None:
    trace_example_shape(spec, issues)


def check_backbones(spec: PipelineSpec, issues: list[Issue]) -> None:
    """A backbone that takes the model's input gets examples of a size it accepts
    (``applications.backbone_issues``); deeper ones are checked by ``--deep``."""
    graph = model_nodes(spec)
    nodes = [node for node in graph if is_backbone(node.layer.name)]
    if not nodes:
        return
    example = trace_example_shape(spec)
    for node in nodes:
        if len(graph.inputs) == 1 and node.inputs == graph.inputs:  # the model's one input
            issues += backbone_issues(node.layer, node.path, example)


def check_output_units(spec: PipelineSpec, issues: list[Issue]) -> None:
    """The output layer's units against a named data set's classes (``class_count_issue``),
    before any data is read; the compile side applies the same rule to the classes of
    every other source once its labels are read."""
    known = known_dataset(spec)
    found = output_layer(spec)
    if known is None or known.num_classes is None or found is None:
        return
    units = found.layer.kwargs.get("units")
    if isinstance(units, int) and not isinstance(units, bool):
        name = known_dataset_name(spec.data.source)
        issue = class_count_issue(units, known.num_classes, f"'{name}' has",
                                  found.path + (found.layer.name, "units"))
        if issue is not None:
            issues.append(issue)


def class_count_issue(units: int, classes: int, holder: str, path: tuple) -> Optional[Issue]:
    """The one rule of the output layer's width against the number of classes, for every
    source: one unit per class (or one sigmoid unit for two classes). Fewer units leave
    classes out; more are units for no class, whether the classes are named (strings,
    folders) or indices (a named data set, an npz or TFRecord file: the count is the
    largest label plus one), so a typo of the class count is never trained on.

    Args:
        units: the output layer's units.
        classes: the number of classes.
        holder: what has the classes, with its verb (``'mnist' has``, ``the labels (a,
            b) hold``).
        path: the key path of the output layer's ``units``.
    """
    if units == classes or (units == 1 and classes == 2):
        return None
    extra = (f", so {units - classes} of its units would stand for no class"
             if units > classes else "")
    return Issue("class-count-mismatch", path, f"the output layer has {units} units but "
                 f"{holder} {classes} classes{extra}. Set units: {classes}"
                 + (" (or 1 with a sigmoid and binary_crossentropy)." if classes == 2 else "."))


def output_units(spec: PipelineSpec) -> Optional[int]:
    """The ``units`` of the layer that sets the output width, when the file gives them."""
    found = output_layer(spec)
    units = found.layer.kwargs.get("units") if found is not None else None
    return units if isinstance(units, int) and not isinstance(units, bool) else None


def class_count(spec: PipelineSpec) -> Optional[int]:
    """The number of classes when known without data: the named data set's, else the
    output layer's ``units`` (from 2; one unit may be a sigmoid or a regression)."""
    known = known_dataset(spec)
    if known is not None:
        return known.num_classes
    found = output_layer(spec)
    units = found.layer.kwargs.get("units") if found else None
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
    """``from_logits`` against the output's activation: for the model's output and the
    top-level loss, or for each output of several with its own loss (at its key path)."""
    heads = output_heads(spec)
    targets = ([(head.node, head.loss, head.path + ("loss",) if head.own_loss else ("loss",))
                for head in heads] if heads else [(None, spec.loss, ("loss",))])
    nodes = model_nodes(spec)
    for node, loss, path in targets:
        activation = output_activation(nodes, output=node)
        from_logits = loss.kwargs.get("from_logits")
        which = "the last layer" if node is None else f"output '{node}'"
        if activation in ("softmax", "sigmoid") and from_logits is True:
            issues.append(Issue("logits-conflict", path + ("from_logits",), f"{which} applies "
                                f"{activation}, so it outputs probabilities, not logits. "
                                "Remove `from_logits: true` (kerapipe infers it) or drop the "
                                "activation."))
        elif activation == "linear" and from_logits is False:
            issues.append(Issue("probabilities-expected", path + ("from_logits",), f"{which} "
                                "has no activation, so it outputs logits, but the loss says "
                                "`from_logits: false`. Remove it (kerapipe infers it).",
                                severity=WARNING))


def check_loss_matches_labels(spec: PipelineSpec, issues: list[Issue]) -> None:
    declared = spec.data.labels
    if declared is not None and declared.kind != "classes":
        return  # other kinds: check_label_kind
    loss = _loss_class(spec)
    one_hot = spec.data.first_options("one_hot") is not None
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


_LOSS_FOR_KIND = {
    "classes": "sparse_categorical_crossentropy",
    "binary": "binary_crossentropy (with one sigmoid unit)",
    "multi_label": "binary_crossentropy (with a sigmoid per label)",
    "regression": "a regression loss: mean_squared_error, mean_absolute_error or huber",
}


def check_label_kind(spec: PipelineSpec, issues: list[Issue]) -> None:
    """A kind written in ``data.labels`` against the loss, the last activation, the
    output's units and the options that apply to other kinds; one issue per conflict, at
    the key to change. (The metrics: ``check_metrics``; inferred kinds fit the loss by
    construction.)"""
    declared = spec.data.labels
    if declared is None:
        return
    heads = output_heads(spec)
    if heads:
        issues.append(Issue("not-applicable", ("data", "labels"), "data.labels describes the "
                            f"labels of a model of one output; each of this model's "
                            f"{len(heads)} outputs takes its labels' kind from its own loss. "
                            "Remove data.labels.", at_key=True))
        return
    kind, name = declared.kind, spec.loss.name
    loss = _loss_class(spec)
    conflict = None
    if is_custom_name(name) or kind == "raw":
        pass
    elif kind == "regression" and loss in CLASS_LOSSES:
        conflict = (f"{name} counts classes, but `labels: regression` are numbers to "
                    "predict. Use " + _LOSS_FOR_KIND["regression"])
    elif kind != "regression" and loss in REGRESSION_LOSSES:
        conflict = (f"{name} measures the distance to a number, but `labels: {kind}` are "
                    f"classes. Use {_LOSS_FOR_KIND[kind]}, or `labels: regression`")
    elif kind == "multi_label" and loss in SPARSE_CLASS_LOSSES | ONE_HOT_LOSSES:
        conflict = (f"{name} takes exactly one class per example, but `labels: multi_label` "
                    "are sets of classes (multi-hot vectors). Use "
                    + _LOSS_FOR_KIND["multi_label"])
    elif kind == "binary" and loss in SPARSE_CLASS_LOSSES | ONE_HOT_LOSSES:
        conflict = (f"{name} takes one score per class, but `labels: binary` are one 0/1 "
                    "value per example. Use " + _LOSS_FOR_KIND["binary"]
                    + ", or `labels: classes`")
    elif kind == "classes" and loss in BINARY_LOSSES and (output_units(spec) or 1) > 1:
        conflict = (f"{name} compares each output unit with its own 0/1 label, but `labels: "
                    "classes` are one class index per example. Use "
                    "sparse_categorical_crossentropy, or `labels: multi_label` for a set of "
                    "classes per example")
    if conflict:
        issues.append(Issue("label-kind-conflict", ("loss",), conflict + "."))
    activation, path = _last_activation(spec)
    fix = {"multi_label": "softmax makes the labels' probabilities compete (they sum to 1), "
                          "but multi_label labels are independent. Use activation: sigmoid "
                          "(or none: the loss then takes logits)",
           "binary": "softmax of one unit is always 1, whatever `labels: binary` are. Use "
                     "activation: sigmoid",
           "regression": "softmax outputs sum to 1, whatever the `labels: regression` "
                         "target. Remove the activation (a linear output)"}
    if activation == "softmax" and kind in fix and path is not None:
        issues.append(Issue("label-kind-conflict", path, f"{fix[kind]}."))
    units = output_units(spec)
    if kind == "binary" and units is not None and units != 1:
        found = output_layer(spec)
        issues.append(Issue("class-count-mismatch", found.path + (found.layer.name, "units"),
                            f"`labels: binary` are one 0/1 value per example, but the output "
                            f"layer has {units} units. Set units: 1 (with activation: "
                            "sigmoid), or use `labels: classes`."))
    for index, step in enumerate(spec.data.preprocess):
        if step.kind == "one_hot" and kind != "classes":
            issues.append(Issue("not-applicable", ("data", "preprocess", index, "one_hot"),
                                f"one_hot turns class indices into vectors, but the labels "
                                f"are `labels: {kind}`. Remove the step.", at_key=True))
    if spec.output.top_k > 1 and kind not in ("classes", "binary"):
        issues.append(Issue("not-applicable", ("output", "top_k"), f"top_k ranks classes, but "
                            f"`labels: {kind}` predictions are "
                            + ("label sets above the threshold" if kind == "multi_label" else
                               "values" if kind == "regression" else "arrays")
                            + f". Remove it. Received: top_k={spec.output.top_k}",
                            at_key=True))


def _last_activation(spec: PipelineSpec) -> tuple[str, Optional[tuple]]:
    """The output's activation (``output_activation``) and the key path that sets it."""
    nodes = model_nodes(spec)
    for node in toward_input(nodes, output_node(nodes)):
        layer = node.layer
        if layer.name == "Softmax":
            return "softmax", node.path + (layer.name,)
        if layer.name == "Activation" or "activation" in layer.kwargs:
            return (str(layer.kwargs.get("activation") or "linear"),
                    node.path + (layer.name, "activation"))
        if layer.name not in _PASS_THROUGH:
            break
    return "linear", None


def logged_metric_names(spec: PipelineSpec) -> list[str]:
    """Names that Keras's History will hold for this run (what `monitor` may name)."""
    heads = output_heads(spec)
    if heads:  # Keras prefixes each output's loss and metrics with the output's name
        names = ["loss"] + [f"{head.name}_loss" for head in heads] + [
            f"{head.name}_{logged_metric_name(metric)}" for head in heads
            for metric in head.metrics]
    else:
        names = ["loss"] + [logged_metric_name(metric) for metric in spec.metrics]
    if spec.data.split.has_validation:
        names += ["val_" + name for name in list(names)]
    return names


def check_metrics(spec: PipelineSpec, issues: list[Issue]) -> None:
    """Metrics that cannot measure the run's labels, where the spec tells their kind (a
    named data set, an image folder); ``compile_pipeline`` checks again on the data."""
    labels = labels_from_spec(spec)
    if labels is not None:
        issues += metric_issues(spec, labels)


def labels_from_spec(spec: PipelineSpec) -> Optional[RunLabels]:
    """The kind of the run's labels as far as the spec tells it (``None``: the data
    decides): a named data set's classes or target, an image folder's classes, the
    output layer's units."""
    known = known_dataset(spec)
    regression = regression_without_data(spec.data.source)
    found = output_layer(spec)
    units = found.layer.kwargs.get("units") if found is not None else None
    return run_labels(spec, regression=regression,
                      num_classes=known.num_classes if known is not None else None,
                      output_units=units if isinstance(units, int) else None,
                      logits=output_activation(spec) not in ("softmax", "sigmoid"))


def monitor_issues(spec: PipelineSpec, monitor: str, path: tuple,
                   default: str = "") -> list[Issue]:
    """The one rule of a ``monitor`` (``train.early_stopping``, a callback's): it names a
    value this run logs (``logged_metric_names``). ``default``: words that say the name
    is a default, not written at ``path``."""
    available = logged_metric_names(spec)
    if monitor in available:
        return []
    if monitor.startswith("val_") and not spec.data.split.has_validation:
        why = " There is no validation split (data.split.validation is 0)."
    else:
        why = did_you_mean(monitor, available)
    return [Issue("unknown-monitor", path, f"'{monitor}'{default} is not a metric this "
                  f"run logs.{why} It logs: {', '.join(available)}.", at_key=bool(default))]


def watched_metrics(spec: PipelineSpec) -> list[tuple[tuple, str]]:
    """``(key path, name)`` of every metric the file's training controls watch: early
    stopping's (the file's, each stage's) and each callback's ``monitor``."""
    from kerapipe.spec.stages import stage_early_stopping

    train = spec.train
    watched = []
    if train.early_stopping is not None:
        watched.append((("train", "early_stopping", "monitor"), train.early_stopping.monitor))
    for index, stage in enumerate(train.stages):
        early = stage_early_stopping(train, stage)
        if early is not None and isinstance(stage.early_stopping, dict):
            watched.append((("train", "stages", index, "early_stopping"), early.monitor))
    for index, callback in enumerate(train.callbacks):
        monitor = callback.argument("monitor")
        if isinstance(monitor, str):
            watched.append((("train", "callbacks", index, callback.name, "monitor"), monitor))
    return watched


def check_early_stopping(spec: PipelineSpec, issues: list[Issue]) -> None:
    early = spec.train.early_stopping
    if early is None:
        return
    issues += monitor_issues(spec, early.monitor, ("train", "early_stopping", "monitor"))
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
    nodes = model_nodes(spec)
    for node in nodes:
        layer = node.layer
        for arg in ("input_shape", "input_dim"):
            if arg in layer.kwargs and layer.name != "Embedding":  # Embedding.input_dim is vocab
                issues.append(Issue("input-shape-ignored", node.path + (layer.name, arg),
                                    f"kerapipe infers the model's input from the data; Keras "
                                    f"ignores `{arg}` here (with a warning). Remove it.",
                                    severity=WARNING))
    last = output_node(nodes)
    if last is not None and last.layer.name in ("Dropout", "GaussianDropout", "AlphaDropout"):
        issues.append(Issue("dropout-last", last.path + (last.layer.name,),
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


def refused_imports(result, allowed: bool) -> list[Issue]:
    """The one rule for code a pipeline imports: without the caller's leave
    (``--allow-imports``, ``allow_imports=True``), the located ``imports-not-allowed``
    issue of a validated ``result`` that imports any; else ``[]``. Checked before any of
    the code, or TensorFlow, is imported."""
    if result.spec is None or not result.spec.imports or allowed:
        return []
    return result.locate([imports_not_allowed(result.spec)])


CHECKS: list[Callable[[PipelineSpec, list[Issue]], None]] = [
    check_imports,
    check_graph,
    check_split,
    check_shapes,
    check_backbones,
    check_output_units,
    check_top_k,
    check_logits,
    check_loss_matches_labels,
    check_label_kind,
    check_metrics,
    check_early_stopping,
    check_suspicious_values,
]


def run_checks(spec: PipelineSpec) -> list[Issue]:
    """Every cross-key issue of a typed spec (errors and warnings)."""
    issues: list[Issue] = []
    for check in CHECKS:
        check(spec, issues)
    return issues


__all__ = ["run_checks", "logged_metric_names", "monitor_issues", "output_activation",
           "known_dataset", "trace_example_shape", "every_layer", "class_count", "did_you_mean"]
