"""Assemble a validated pipeline's Keras objects: data -> preprocessing -> compiled model.

The compile side's entry point. ``assemble`` turns a ``ValidationResult`` into the parts
``kerapipe.pipeline.CompiledPipeline`` holds (loaded splits, preprocessing layers, the
compiled ``keras.Model``, imported objects), every Keras call guarded so that a refusal is
a ``SpecError`` at the key that caused it. It trains nothing and writes nothing; the loop
(fit, evaluate, predict, run) is the run side's.
"""

from __future__ import annotations

import dataclasses
import math
import random
import secrets
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
import keras
import tensorflow as tf

from kerapipe.compiler.build import (build_core_model, build_loss, build_metric,
                                     build_optimizer, build_output_loss, dummy_batch,
                                     exercise_loss_and_metrics, exercise_optimizer,
                                     keras_guard, refuse_unmeasurable_metrics)
from kerapipe.compiler.datasets import input_dtype, raw_features
from kerapipe.compiler.deep import label_shape, one_hot_conflict, output_mismatch
from kerapipe.compiler.distribute import Distribution, make_distribution
from kerapipe.compiler.faults import translate_faults
from kerapipe.compiler.imports import import_file_hashes, imported_objects
from kerapipe.compiler.metrics import loaded_run_labels
from kerapipe.compiler.preprocess import Preprocessing, build_preprocessing
from kerapipe.compiler.sources.loading import LoadedData, load_data
from kerapipe.errors import DataError, SpecError
from kerapipe.spec.checks import (class_count_issue, output_activation, output_layer,
                                  watched_metrics)
from kerapipe.spec.graph import model_nodes, output_node
from kerapipe.spec.metrics import metric_issues, output_heads
from kerapipe.spec.issues import Issue, format_path
from kerapipe.spec.model import PipelineSpec
from kerapipe.spec.typed import to_plain
from kerapipe.spec.data_paths import data_folder
from kerapipe.spec.validate import ValidationResult, pipeline_folder


@dataclass
class Assembly:
    """What compiling a pipeline made: everything but the tf.data pipelines and the loop.

    Args:
        spec: the validated spec, its seed drawn when the file set none.
        data: the loaded, checked, split examples.
        preprocessing: the preprocessing layers (adapted on the train split).
        model: the trainable model (input: preprocessed examples), compiled.
        source_file: the pipeline file, or ``None`` for text or a dict.
        base_dir: the folder relative paths in the file are relative to.
        overrides: the ``--set`` values the spec was validated with.
        custom_objects: ``module.Name`` -> the class or function ``imports:`` provided.
        import_hashes: ``imports:`` .py entry -> sha256 of its file (run.json).
        distribution: ``train.distribute``'s strategy and this worker's place.
    """

    spec: PipelineSpec
    data: LoadedData
    preprocessing: Preprocessing
    model: keras.Model
    source_file: Optional[str]
    base_dir: Path
    overrides: list[str]
    custom_objects: dict[str, Any]
    import_hashes: dict[str, str]
    distribution: Distribution


def seed_everything(seed: Optional[int], deterministic: bool = True) -> None:
    """Seed Python, NumPy, TensorFlow and Keras; deterministic TF ops if asked.

    TensorFlow's op determinism is process-wide and cannot be turned off again, so it is
    switched on only when a pipeline asks for it.
    """
    if seed is None:
        return
    keras.utils.set_random_seed(seed)
    random.seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def assemble(result: ValidationResult, allow_imports: bool = False,
             distribute: bool = True) -> Assembly:
    """Compile a validated pipeline (``result.spec`` must not be ``None``); with
    ``distribute=False`` as one process, whatever ``train.distribute`` says (``plan``).

    Raises:
        SpecError: it imports code that is not allowed, or Keras refuses a layer, a loss,
            a metric or the optimizer (located at its key in the file).
        DataError: the data is missing, unreadable or invalid.
    """
    spec, path = result.spec, result.path
    base_dir = Path(data_folder(path))  # where validate looks for the data, too
    custom = imported_objects(result, allow_imports, base_dir)  # refused unless allowed
    # Before any other TensorFlow work: a multi-worker strategy starts TF's collectives.
    distribution = make_distribution(spec.train.distribute) if distribute else Distribution()
    distribution.check_same("pipeline", to_plain(spec))  # the seed too: same splits
    if spec.seed is None:  # draw one and keep it in the spec: the run stays reproducible
        # (the chief's, on every worker: they shuffle and split alike)
        spec = dataclasses.replace(spec, seed=distribution.agree_on_int(
            secrets.randbelow(2**31)))
    seed_everything(spec.seed, spec.train.deterministic)
    data = load_data(spec, base_dir)
    distribution.check_same("data", data.fingerprint)
    _check_watched_metrics_are_logged(spec, data)
    try:  # Keras's refusals carry their key path; give them the file's line
        preprocessing, model = build_compiled_model(spec, data, custom,
                                                    pipeline_folder(path or "<text>"),
                                                    distribution)
    except SpecError as err:
        raise SpecError(result.locate(err.issues)) from err
    return Assembly(spec, data, preprocessing, model, path, base_dir, list(result.overrides),
                    custom, import_file_hashes(spec, base_dir), distribution)


def _check_watched_metrics_are_logged(spec: PipelineSpec, data: LoadedData) -> None:
    """A ``val_`` metric watched (early stopping, a callback's ``monitor``) of a run that
    turns out to have no validation examples (a split column that names none): Keras
    would only warn, every epoch, and never stop nor lower the rate."""
    if data.validation is not None and len(data.validation):
        return
    for path, name in watched_metrics(spec):
        if name.startswith("val_"):
            raise DataError(f"{data.description}: {format_path(path)} watches '{name}', but "
                            "no example is in the validation split (data.split.column names "
                            f"none). Mark some rows `validation`, or watch '{name[4:]}'.")


def build_compiled_model(spec: PipelineSpec, data: LoadedData, custom: dict[str, Any],
                         folder: str, distribution: Optional[Distribution] = None,
                         ) -> tuple[Preprocessing, keras.Model]:
    """The preprocessing and the compiled model, every Keras call guarded (``SpecError``
    with unlocated issues), the model's output checked against the loaded labels.

    The preprocessing runs in tf.data, outside ``distribution``'s scope; the model's
    layers and optimizer are made inside it (``compiler.distribute``)."""
    distribution = distribution or Distribution()
    dtype = input_dtype(spec)
    data.source.learn(data.train)
    with translate_faults(spec, data, "adapting the preprocessing", imported=bool(custom)):
        preprocessing = build_preprocessing(spec, lambda: raw_features(data.train, data, spec),
                                            data.num_classes, data.example_shape, dtype)
    with distribution.scope():
        model = build_core_model(spec, preprocessing.model_input_shape,
                                 preprocessing.model_input_dtype, custom, base_dir=folder)
        if not output_heads(spec):
            model = with_target_scale(model, data)
    wrapped = distribution.wrap(model)  # outside the scope: see compiler.distribute
    if wrapped is not model:
        _CORE_MODELS[wrapped] = core_model(model)
        model = wrapped
    _DISTRIBUTIONS[model] = distribution
    with distribution.scope():  # metrics' variables too: synced across replicas
        if output_heads(spec):
            _compile_outputs(spec, data, model, custom)
            return preprocessing, model
        _check_labels_fit_model(spec, data, model)
        _check_one_hot(spec, data)
        labels = label_shape(spec, data.num_classes, tuple(data.train.y.shape[1:]))
        mismatch = output_mismatch(spec, tuple(model.output_shape[1:]), labels)
        if mismatch is not None:
            raise SpecError([mismatch])
        loss = build_loss(spec, custom)
        exercise_optimizer(spec.optimizer)
        measured, units = loaded_run_labels(spec, data.num_classes,
                                            tuple(model.output_shape[1:]))
        refuse_unmeasurable_metrics(spec, measured)
        metrics = [build_metric(m, ("metrics", i), measured, units)
                   for i, m in enumerate(spec.metrics)]
        batch = dummy_batch(tuple(model.output_shape[1:]), labels,
                            sparse_labels=preprocessing.one_hot_classes is None
                            and data.train.y.dtype.kind in "biu")
        if batch is not None:
            exercise_loss_and_metrics(spec, loss, batch, measured)
        _compile(model, spec, data, spec.optimizer, loss=loss, metrics=metrics)
        return preprocessing, model


def _compile_outputs(spec: PipelineSpec, data: LoadedData, model: keras.Model,
                     custom: dict[str, Any]) -> None:
    """Compile a model of several outputs: a loss, metrics and a loss weight per output
    (``spec.metrics.output_heads``), by Keras's output names; each output's loss infers
    ``from_logits`` from its own activation, and its metrics measure its own labels."""
    nodes = model_nodes(spec)
    losses, metrics, weights = {}, {}, {}
    for head in output_heads(spec):
        facts = data.outputs[head.name]
        shape = tuple(model.output[head.name].shape[1:])
        _check_output_classes(data, head, facts, shape, nodes)
        activation = output_activation(nodes, head.node)
        losses[head.name] = build_output_loss(head.loss, activation, head.loss_path, custom)
        labels, units = loaded_run_labels(spec, facts.num_classes, shape,
                                          logits=activation not in ("softmax", "sigmoid"))
        refused = metric_issues(spec, labels, head)
        if refused:
            raise SpecError(refused)
        metrics[head.name] = [build_metric(m, head.metric_path(i), labels, units)
                              for i, m in enumerate(head.metrics)]
        weights[head.name] = head.weight
    exercise_optimizer(spec.optimizer)
    _compile(model, spec, data, spec.optimizer, loss=losses, metrics=metrics,
             loss_weights=weights)


# The strategy each model's variables live in (``_compile`` makes the optimizer's there).
_DISTRIBUTIONS: "weakref.WeakKeyDictionary[keras.Model, Distribution]" = \
    weakref.WeakKeyDictionary()

# What each model was compiled with, but its optimizer (a stage of train.stages compiles
# it again with the same loss and metrics and a new optimizer); gone with the model.
_COMPILED_WITH: "weakref.WeakKeyDictionary[keras.Model, dict]" = weakref.WeakKeyDictionary()


def _compile(model: keras.Model, spec: PipelineSpec, data: LoadedData, optimizer: Any,
             path: tuple = ("train",), what: str = "the model", **arguments: Any) -> None:
    """``model.compile`` with a new optimizer of ``optimizer`` (an ``OptimizerSpec``: its
    schedule's epochs in this run's steps, loss-scaled for ``train.precision``), the loss
    and metrics ``arguments``, and the file's ``train`` settings."""
    arguments.update(steps_per_execution=spec.train.steps_per_execution,
                     jit_compile=spec.train.jit_compile)
    distribution = _DISTRIBUTIONS.get(model, Distribution())
    with distribution.scope():  # a strategy's optimizer variables are made in its scope
        built = build_optimizer(optimizer, steps_per_epoch(spec, data), spec.train.precision)
        with keras_guard("keras-arguments", path, f"Keras refused to compile {what}"):
            model.compile(optimizer=built, **arguments)
        if distribution.strategy is not None:  # here, not in a replica's first step
            built.build(model.trainable_variables)
    _COMPILED_WITH[model] = arguments


def compile_again(model: keras.Model, spec: PipelineSpec, data: LoadedData, optimizer: Any,
                  path: tuple, what: str) -> None:
    """Compile ``model`` again, as ``assemble`` compiled it, with a new optimizer of
    ``optimizer`` (Keras gathers the trainable weights when it compiles: a stage of
    ``train.stages`` that changed them compiles again)."""
    _compile(model, spec, data, optimizer, path, what, **_COMPILED_WITH[model])


def steps_per_epoch(spec: PipelineSpec, data: LoadedData) -> int:
    """Optimizer steps in one epoch: the training split's batches (a schedule's counts
    written in epochs are converted with it)."""
    return max(1, math.ceil(len(data.train) / spec.data.batch_size))


def _check_output_classes(data: LoadedData, head: Any, facts: Any, shape: tuple,
                          nodes: Any) -> None:
    """One output's labels beyond its class range, and its units against its classes (as
    ``_check_labels_fit_model``: ``checks.class_count_issue``)."""
    classes = facts.num_classes
    units = shape[-1] if len(shape) == 1 else None
    if classes is None or units is None or (units == 1 and classes <= 2):
        return
    if classes > units:
        raise DataError(f"{data.description}: the labels of output '{head.name}' go up to "
                        f"{classes - 1} ({classes} classes), but it outputs {units} value(s) "
                        f"per example. Set its layer's units to {classes}.")
    node = next((n for n in nodes if n.name == head.node), None)
    path = node.path + (node.layer.name, "units") if node is not None else head.path
    issue = class_count_issue(units, classes, f"the labels of output '{head.name}' "
                              f"({_classes_shown(facts.class_names, classes)}) hold", path)
    if issue is not None:
        raise SpecError([issue])


def _classes_shown(names: Optional[list], classes: int) -> str:
    """The classes as a message shows them: ``0..K-1`` for indices, else the first names."""
    names = list(names or [])
    if names == [str(i) for i in range(classes)] or not names:
        return f"0..{classes - 1}"
    return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")


def _check_one_hot(spec: PipelineSpec, data: LoadedData) -> None:
    conflict = one_hot_conflict(spec, data.num_classes)
    if conflict is not None:
        raise DataError(f"{data.description}: {conflict.key_path}: {conflict.message}")


# The model a target scale was added to, by the model with it (``plan``'s graph table
# reads the nodes of the model ``build_core_model`` made); gone with the model.
_CORE_MODELS: "weakref.WeakKeyDictionary[keras.Model, keras.Model]" = weakref.WeakKeyDictionary()


def with_target_scale(model: keras.Model, data: LoadedData) -> keras.Model:
    """``model``, followed by ``Rescaling(std, mean)`` when the regression target is
    standardized (``labels: {kind: regression, scale: standardize}``): its last layer
    learns the standardized target, and the model (so ``model.keras`` too) outputs the
    original units. A plain Keras layer: the saved model loads in safe mode."""
    facts = data.labels
    if facts is None or facts.scale is None:
        return model
    mean, std = facts.scale
    tensor = keras.layers.Rescaling(scale=std, offset=mean, name="target_unscale")(model.output)
    scaled = keras.Model(model.input, tensor, name=model.name)
    _CORE_MODELS[scaled] = model
    return scaled


def core_model(model: keras.Model) -> keras.Model:
    """The model ``build_core_model`` made (``model`` itself, unless a target scale was
    added after it)."""
    return _CORE_MODELS.get(model, model)


def _check_labels_fit_model(spec: PipelineSpec, data: LoadedData, model: keras.Model) -> None:
    """Labels beyond the output's class range give NaN on GPU and a buried error on CPU:
    refuse them before training. Multi-hot labels need one unit per label, binary ones
    one unit, classes one unit each (``checks.class_count_issue``, the rule validate
    applies to named data sets): a SpecError at the output layer's ``units``."""
    classes = data.num_classes
    units = model.output_shape[-1] if len(model.output_shape) == 2 else None
    kind = data.labels.kind if data.labels is not None else None
    if kind in ("multi_label", "binary") and not data.labels.inferred and units is not None:
        want = classes if kind == "multi_label" else 1
        if units != want:
            found = output_layer(spec)
            path = found.path + (found.layer.name, "units") if found else ("model",)
            names = ", ".join((data.class_names or [])[:4])
            more = ", ..." if len(data.class_names or []) > 4 else ""
            what = (f"the labels hold {classes} different labels ({names}{more})"
                    if kind == "multi_label" else "binary labels are one 0/1 value per example")
            fix = (f"Set units: {classes}." if kind == "multi_label" else
                   "Set units: 1 (with activation: sigmoid), or use `labels: classes`.")
            joined = next((name for name in data.class_names or [] if any(
                mark in name for mark in ",;/+")), None) if kind == "multi_label" else None
            if joined is not None:  # the cells' separator is not data.labels.separator
                fix += (f" Or, if '{joined}' holds several labels, set data.labels.separator "
                        "to the text between them.")
            raise SpecError([Issue("class-count-mismatch", path, f"{what}, but the output "
                                   f"layer has {units} units. {fix}")])
        return
    if classes is None or units is None:
        return
    if units == 1 and classes <= 2:
        return  # one sigmoid unit for two classes
    if classes > units:
        where = format_path(output_node(model_nodes(spec)).path)
        raise DataError(f"{data.description}: labels go up to {classes - 1} ({classes} "
                        f"classes), but the model outputs {units} value(s) per example "
                        f"({where}). Set the output layer's units to {classes}.")
    found = output_layer(spec)
    path = found.path + (found.layer.name, "units") if found else ("model",)
    # the spec side's rule, for the classes of every source (checks.class_count_issue)
    issue = class_count_issue(units, classes,
                              f"the labels ({_classes_shown(data.class_names, classes)}) hold",
                              path)
    if issue is not None:
        raise SpecError([issue])
