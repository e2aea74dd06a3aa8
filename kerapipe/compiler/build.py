"""Build Keras objects from spec entries by calling their constructors.

``keras.layers.deserialize`` cannot resolve bare class names written in a file, and a
file must never name arbitrary importable objects, so each object is built from the
class that the Keras name catalogue (checked on the spec side) says exists, found by
name in the public ``keras.layers`` / ``keras.losses`` / ... namespaces only.

Every call into Keras with the file's arguments goes through ``keras_guard``: whatever
Keras raises becomes a spec issue at the key path of the entry (``SpecError``, exit 2,
located by the caller), so ``validate --deep``, ``plan`` and ``run`` report the same
refusal at the same line. Objects that fail only when first used (a schedule, an
optimizer, a metric) are exercised once on a dummy input by ``exercise_*``.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import random
import re
import weakref
from typing import Any, Iterator, Optional

from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
import keras
import numpy as np
import tensorflow as tf

from kerapipe.compiler.files import physical_memory
from kerapipe.compiler.layer_classes import construct_layer, restore_loaded_weights, shapes_only
from kerapipe.compiler.metrics import keras_metric
from kerapipe.compiler.precision import float32_scope, loss_scaled, policy_scope
from kerapipe.errors import KerapipeError, SpecError, TrainingError
from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.checks import labels_from_spec, output_activation
from kerapipe.spec.graph import MODEL_INPUT, ModelNode, model_nodes, output_node
from kerapipe.spec.issues import Issue, format_path
from kerapipe.spec.metrics import RunLabels, metric_class, metric_issues, output_heads
from kerapipe.spec.validate import inside_folder, is_file_argument
from kerapipe.spec.model import (NESTED_LAYER_ARGS, LayerSpec, LossSpec, MetricSpec,
                                 OptimizerSpec, PipelineSpec, ScheduleSpec, is_custom_name)

# Training holds about four copies of the weights (the weights, their gradients and
# Adam's two slots), so a model whose weights take more than this share of the
# machine's physical memory cannot train; it is refused before any weight is allocated.
MODEL_MEMORY_SHARE = 4


class _Refused(SpecError):
    """A Keras refusal at one key path (``SpecError`` with one unlocated issue)."""


@contextlib.contextmanager
def keras_guard(code: str, path: tuple, what: str) -> Iterator[None]:
    """Around one call into Keras with the file's arguments (a constructor, a symbolic
    call, a first use): anything Keras raises becomes ``SpecError`` with one issue
    ``code`` at ``path`` saying ``what: <Keras's message>``; the caller locates it.

    Out of memory (``MemoryError``, ``ResourceExhaustedError``) and kerapipe's own errors
    pass through: the first is no fault of the arguments' values but of their size.
    """
    try:
        yield
    except (KerapipeError, MemoryError, tf.errors.ResourceExhaustedError):
        raise
    except Exception as err:  # Keras raises ValueError, TypeError, tf errors, ...
        raise _Refused([Issue(code, tuple(path), f"{what}: {short_error(err)}",
                              at_key=True)]) from err


def build_layer(spec: LayerSpec, custom: Optional[dict[str, Any]] = None,
                path: tuple = (), base_dir: Optional[str] = None,
                input_shape: Optional[tuple] = None) -> keras.layers.Layer:
    """A new Keras layer from ``ClassName: {kwargs}``; nested layer arguments recurse.

    ``custom`` maps the pipeline's ``module.Name`` references to imported classes;
    ``path`` is the key path of ``spec`` in the file (for the issue when Keras refuses);
    ``base_dir`` is the pipeline's folder, where a file argument (``vocabulary``) is
    read from. Defaults to the current directory (a pipeline given as a dict or text).
    ``input_shape``: the shape of the tensor the layer will be called on, batch axis
    first, when known (``layer_classes.construct_layer`` uses it for backbones).
    """
    path = tuple(path) or (spec.name,)
    base_dir = base_dir or os.getcwd()
    kwargs = {key: build_layer(value, custom, path + (key, value.name), base_dir)
              if key in NESTED_LAYER_ARGS and isinstance(value, LayerSpec)
              else _resolve_file_arguments(spec.name, key, value, base_dir, path + (key,))
              for key, value in spec.kwargs.items()}
    with keras_guard("layer-arguments", path, f"Keras refused the arguments of {spec.name}"):
        return construct_layer(spec.name, kwargs, custom, input_shape)


def _resolve_file_arguments(owner: Any, key: Any, value: Any, base_dir: str,
                            path: tuple) -> Any:
    """``value`` with every file argument (``validate.is_file_argument``: a vocabulary, a
    backbone's weights file; at any depth of mappings and lists) replaced by its path
    inside ``base_dir``: Keras opens a relative path from the current directory, which is
    not the pipeline's folder, so the spec side's outside-path rule would not hold. A path
    that leaves the folder is refused here too (defence in depth). ``owner``: the layer
    name, or the key of the mapping holding ``value``."""
    if is_file_argument(owner, key, value):
        target = inside_folder(base_dir, value)
        if target is None:
            raise _Refused([Issue("outside-path", path, "a file a layer reads must be inside "
                                  "the pipeline's folder (next to the pipeline file or below "
                                  "it). Copy the file there.")])
        return target
    if isinstance(value, dict):
        return {k: _resolve_file_arguments(key, k, v, base_dir, path + (k,))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_file_arguments(owner, None, v, base_dir, path + (i,))
                for i, v in enumerate(value)]
    return value


def build_loss(spec: PipelineSpec, custom: Optional[dict[str, Any]] = None) -> Any:
    """The loss object; ``from_logits`` is inferred from the output activation unless set."""
    return build_output_loss(spec.loss, output_activation(spec), ("loss",), custom)


def build_output_loss(loss: LossSpec, activation: str, path: tuple = ("loss",),
                      custom: Optional[dict[str, Any]] = None) -> Any:
    """The loss object of one output (``path``: its key path): ``from_logits`` is
    inferred from the output's ``activation`` unless the loss sets it."""
    if is_custom_name(loss.name):
        from kerapipe.compiler.imports import custom_loss

        with keras_guard("keras-arguments", path, "the loss refused its arguments"):
            return custom_loss((custom or {})[loss.name], dict(loss.kwargs))
    entry = load_catalog().losses.get(loss.name)
    kwargs = dict(loss.kwargs)
    if "from_logits" in entry.params and "from_logits" not in kwargs:
        kwargs["from_logits"] = activation not in ("softmax", "sigmoid")
    with keras_guard("keras-arguments", path, f"Keras refused the {entry.name} loss"):
        return getattr(keras.losses, entry.name)(**kwargs)


def build_learning_rate(rate: Any, steps_per_epoch: int = 1) -> Any:
    """A number, or the schedule, evaluated once at step 0 (where some schedules fail);
    its counts written in epochs become steps (``steps_per_epoch``: the training split's
    batches; 1 where no data is read, as ``validate --deep`` checks)."""
    if not isinstance(rate, ScheduleSpec):
        return rate
    path = ("optimizer", "learning_rate", rate.name)
    with keras_guard("keras-arguments", path, f"Keras refused the {rate.name} schedule"):
        schedule = getattr(keras.optimizers.schedules, rate.name)(
            **rate.in_steps(steps_per_epoch))
    with keras_guard("keras-arguments", path, f"the {rate.name} schedule fails at step 0"):
        float(schedule(0))
    return schedule


def build_optimizer(spec: OptimizerSpec, steps_per_epoch: int = 1,
                    precision: str = "float32") -> keras.optimizers.Optimizer:
    """The optimizer; ``steps_per_epoch`` converts a schedule's counts in epochs.

    ``precision`` (``train.precision``): a ``mixed_float16`` model's optimizer comes
    wrapped in a ``LossScaleOptimizer``. Wrapped here, not by ``Model.compile``, so the
    compiled model's config (a checkpoint's ``last.keras``) holds the wrapper too and a
    resumed run gets its loss scale back."""
    entry = load_catalog().optimizers.get(spec.name)
    learning_rate = build_learning_rate(spec.learning_rate, steps_per_epoch)
    with keras_guard("keras-arguments", ("optimizer",), f"Keras refused the {entry.name} "
                     "optimizer"):
        optimizer = getattr(keras.optimizers, entry.name)(learning_rate=learning_rate,
                                                          **spec.kwargs)
    return loss_scaled(optimizer, precision)


def build_metric(spec: MetricSpec, path: tuple = ("metrics",),
                 labels: Optional[RunLabels] = None, output_units: Optional[int] = None) -> Any:
    """The Keras metric of a ``metrics:`` entry, given the run's labels and outputs in the
    form it expects (``kerapipe.compiler.metrics``); ``labels`` ``None``: the metric as
    Keras builds it (to check its arguments). ``output_units``: the model's output width."""
    with keras_guard("keras-arguments", path, f"Keras refused the {metric_class(spec)} metric"):
        return keras_metric(spec, labels, output_units)


def refuse_unmeasurable_metrics(spec: PipelineSpec, labels: RunLabels) -> None:
    """``SpecError`` (unlocated) at each metric that cannot measure ``labels``."""
    issues = metric_issues(spec, labels)
    if issues:
        raise SpecError(issues)


def short_error(err: BaseException) -> str:
    """One readable line from a Keras exception (they can be long and multi-line)."""
    text = getattr(err, "message", None) if isinstance(err, tf.errors.OpError) else None
    text = re.sub(r"\s+", " ", text or str(err) or type(err).__name__).strip()
    text = text.split(" Arguments received by ")[0]  # Keras appends a long call dump
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)  # TF's kernel prefix
    return (text[:400] + "...") if len(text) > 400 else text


# --- first use of what builds lazily ------------------------------------------------

@contextlib.contextmanager
def _untraced() -> Iterator[None]:
    """Work that must leave no trace on the run: Python's and NumPy's random state (Keras
    draws initializer seeds from Python's) and Keras's automatic name counters (a
    throwaway metric would otherwise push the real one's logged name to ``auc_1``)."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    uids = _name_uids()
    saved = dict(uids) if uids is not None else None
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        if uids is not None:
            uids.clear()
            uids.update(saved)


def _name_uids() -> Optional[dict]:
    try:  # private in Keras 3; without it only auto-generated names change
        from keras.src.backend.common import global_state

        return global_state.get_global_attribute("object_name_uids")
    except Exception:
        return None


def exercise_optimizer(spec: OptimizerSpec) -> None:
    """One step of a throwaway copy of the optimizer on a dummy variable: arguments that
    Keras checks only when it builds or applies (``epsilon: x``) fail here, not in fit.

    An optimizer of the catalogue given only a number as its learning rate (checked > 0 on
    the spec side) has nothing Keras could refuse then, and is not stepped: the step costs
    ~35 ms of a run's start-up (bench/run.py end_to_end)."""
    if not spec.kwargs and isinstance(spec.learning_rate, (int, float)):
        return
    with _untraced():
        optimizer = build_optimizer(spec)
        with keras_guard("keras-arguments", ("optimizer",), "the optimizer fails on its "
                         "first step"):
            variable = keras.Variable(np.zeros((2,), "float32"), name="kerapipe_probe")
            optimizer.apply([keras.ops.ones((2,))], [variable])


def dummy_batch(output_shape: tuple, label_shape: tuple, sparse_labels: bool
                ) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """``(labels, outputs)`` of two examples of the given per-example shapes (class 0,
    uniform probabilities), or ``None`` when a size is unknown."""
    if any(d is None for d in (*output_shape, *label_shape)):
        return None
    outputs = np.full((2, *output_shape), 1 / max(output_shape[-1] if output_shape else 1, 1),
                      "float32")
    labels = np.zeros((2, *label_shape), "int64" if sparse_labels else "float32")
    return labels, outputs


def exercise_loss_and_metrics(spec: PipelineSpec, loss: Any, batch: tuple,
                              labels: Optional[RunLabels] = None) -> None:
    """The loss and a throwaway copy of each metric on a dummy batch of the run's shapes:
    what Keras checks only on first update (``k: x``) fails here, not in fit.
    ``labels``: the run's labels (default: as far as the spec tells them)."""
    labels_batch, outputs = batch
    if loss is not None and not is_custom_name(spec.loss.name):
        with keras_guard("keras-arguments", ("loss",), f"the loss fails on labels of shape "
                         f"{labels_batch.shape} and outputs of shape {outputs.shape}"):
            loss(labels_batch, outputs)
    labels = labels if labels is not None else labels_from_spec(spec)
    units = outputs.shape[-1] if outputs.ndim > 1 else 1
    with _untraced():
        for index, metric_spec in enumerate(spec.metrics):
            path = ("metrics", index)
            metric = build_metric(metric_spec, path, labels, units)
            with keras_guard("keras-arguments", path, f"the {metric_spec.name} metric fails "
                             f"on labels of shape {labels_batch.shape} and outputs of shape "
                             f"{outputs.shape}"):
                metric.update_state(labels_batch, outputs)
                values = tuple(keras.ops.shape(metric.result()))
            if values:  # one per class or per threshold: History and metrics.json hold numbers
                raise _Refused([Issue("keras-arguments", path, f"the {metric_spec.name} metric "
                                      f"gives {math.prod(values)} values (shape {values}), one "
                                      "per class or per threshold, but kerapipe logs one "
                                      "number per metric. Give one threshold, or `average: "
                                      "macro` (micro, weighted) for a score per class.",
                                      at_key=True)])


# --- the model ------------------------------------------------------------------------

def model_memory_bound() -> int:
    """Bytes the model's weights may take: physical memory / ``MODEL_MEMORY_SHARE``."""
    return physical_memory() // MODEL_MEMORY_SHARE


@contextlib.contextmanager
def _deferred_weights() -> Iterator[list]:
    """Build layers without allocating their weights: Keras defers the initialisation of
    variables created in a ``StatelessScope``. Yields the list that receives those
    variables (for ``_allocate``); Keras's own list of them is left as it was."""
    from keras.src.backend.common import global_state

    key = "uninitialized_variables"
    before = list(global_state.get_global_attribute(key) or [])
    deferred: list = []
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield deferred
    finally:
        known = {id(variable) for variable in before}
        deferred.extend(variable for variable in global_state.get_global_attribute(key) or []
                        if id(variable) not in known)
        global_state.set_global_attribute(key, before)


def _allocate(deferred: list, built: list) -> None:
    """Give the variables ``_deferred_weights`` deferred their initial values, layer by
    layer (``built``: ``(node, layer, path, what)`` from ``_call_nodes``), an initializer's
    refusal located at its layer as a refused build is. The initializers' seeds were drawn
    when the layers were made, so the values are those an ordinary build gives."""
    pending = {id(variable) for variable in deferred}
    for _, layer, path, what in built:
        with keras_guard("shape-error", path, what):
            for variable in layer.weights:
                if id(variable) in pending:
                    variable._deferred_initialize()
                    pending.discard(id(variable))
    for variable in deferred:  # a variable no layer lists (none in Keras's own layers)
        if id(variable) in pending:
            variable._deferred_initialize()
    restore_loaded_weights(deferred)  # a backbone's ImageNet or file weights over them


def _call_nodes(nodes: tuple[ModelNode, ...], inputs: Any, custom: Optional[dict[str, Any]],
                sizes: Optional[list] = None, base_dir: Optional[str] = None,
                built: Optional[list] = None) -> Any:
    """Build each node's layer and call it on the outputs of the nodes it names (the
    model's input tensor is ``inputs``); the output node's tensor. ``sizes`` gets
    ``(path, parameters, bytes)`` of each layer, ``built`` its ``(node, layer, path,
    what a refusal says)``. Raises ``SpecError`` at the first layer Keras refuses.
    ``inputs``: the model's input tensor, or a dict of them by input name."""
    tensors = (dict(inputs) if isinstance(inputs, dict)
               else {getattr(nodes, "inputs", (MODEL_INPUT,))[0]: inputs})
    output_names = set(getattr(nodes, "outputs", ()) or (output_node(nodes).name,))
    for node in nodes:
        layer_spec = node.layer
        path = node.path + (layer_spec.name,)
        received = [tensors[name] for name in node.inputs]
        argument = received[0] if len(received) == 1 else received
        # An output layer of a mixed-precision model computes in float32 (train.precision).
        with float32_scope() if node.name in output_names else contextlib.nullcontext():
            layer = build_layer(layer_spec, custom, path, base_dir,
                                tuple(argument.shape) if len(received) == 1 else None)
        if node.trainable is not None:
            layer.trainable = node.trainable
        if len(received) > 1:
            what = (f"{layer_spec.name} got " + " and ".join(str(_shape_of(t)) for t in received)
                    + " (its arguments or those shapes)")
        else:
            what = (f"Keras could not build {layer_spec.name} on an input of shape "
                    f"{_shape_of(argument)} (its arguments or that shape)")
        with keras_guard("shape-error", path, what):
            tensor = _call(layer, received)
        if not hasattr(tensor, "shape"):  # a tuple, list or dict: `return_state: true`, ...
            count = len(tensor) if hasattr(tensor, "__len__") else "several"
            raise _Refused([Issue("shape-error", path, f"{layer_spec.name} returns {count} "
                                  "tensors (e.g. with `return_state: true`), but each layer "
                                  "of a pipeline gives one output that the layers below take. "
                                  "Remove the argument that makes it return several.",
                                  at_key=True)])
        out = tuple(tensor.shape[1:])
        if any(d is not None and d < 1 for d in out):
            raise _Refused([Issue("shape-error", path, f"{layer_spec.name} leaves no values: "
                                  f"it turns an input of shape {_shape_of(argument, 1)} into "
                                  f"{out}. Every size must be at least 1; use a smaller "
                                  "kernel, stride or crop.", at_key=True)])
        tensors[node.name] = tensor
        if built is not None:
            built.append((node, layer, path, what))
        if sizes is not None:
            weights = layer.weights
            count = sum(math.prod(int(d) for d in w.shape) for w in weights)
            size = sum(math.prod(int(d) for d in w.shape) * _itemsize(w.dtype) for w in weights)
            sizes.append((path, count, size))
    outputs = getattr(nodes, "outputs", ())
    if len(outputs) > 1:  # several outputs: each output node's tensor, by node name
        return {name: tensors[name] for name in outputs}
    return tensors[output_node(nodes).name]


# Which Keras layer each node became, by model (for `plan`'s graph table: the nodes of a
# block or an unnamed layer have no Keras name to find them by); gone with the model.
_NODE_LAYERS: "weakref.WeakKeyDictionary[keras.Model, list]" = weakref.WeakKeyDictionary()


def node_layers(model: keras.Model) -> list[tuple[ModelNode, Any]]:
    """``(node, layer)`` of each node of ``model`` (built by ``build_core_model``; ``[]``
    for another model): which Keras layer each entry of the file became."""
    return list(_NODE_LAYERS.get(model, ()))


def _call(layer: Any, received: list) -> Any:
    """``layer`` called on the tensors of its inputs: one tensor alone; several as Keras
    layers take them, a list when ``call``'s first argument is ``inputs`` (the merge
    layers, Attention) and one argument each otherwise (``MultiHeadAttention(query,
    value, key)``, keras-hub's ``TransformerDecoder(decoder_sequence, encoder_sequence)``)."""
    if len(received) == 1:
        return layer(received[0])
    try:
        first = next(iter(inspect.signature(layer.call).parameters))
    except (TypeError, ValueError, StopIteration):
        first = "inputs"
    return layer(received) if first == "inputs" else layer(*received)


def _shape_of(argument: Any, skip: int = 0) -> Any:
    """The shape of a layer's input for a message (a list of them for several inputs),
    without its first ``skip`` axes."""
    if isinstance(argument, list):
        return [_shape_of(item, skip) for item in argument]
    return tuple(argument.shape)[skip:]


def _itemsize(dtype: Any) -> int:
    try:
        return np.dtype(str(dtype)).itemsize
    except TypeError:
        return 4


def _refuse_too_large(sizes: list, bound: int) -> None:
    total = sum(size for _, _, size in sizes)
    if total <= bound:
        return
    path, count, size = max(sizes, key=lambda s: s[2])
    raise too_large(path, count, size, total, sum(c for _, c, _ in sizes), bound)


def too_large(path: tuple, count: int, size: int, total: int, total_count: int,
              bound: Optional[int]) -> TrainingError:
    """Out of memory building the model (``TrainingError``, exit 4) naming the layer."""
    where = format_path(path)
    limit = (f"kerapipe refuses a model whose weights exceed 1/{MODEL_MEMORY_SHARE} of this "
             f"machine's memory ({_bytes(bound)}) before allocating them, since training "
             f"holds about {MODEL_MEMORY_SHARE} copies of them" if bound else
             "allocating its weights failed")
    err = TrainingError(f"out of memory building the model: {where} has {_count(count)} "
                        f"parameters ({_bytes(size)}), the model {_count(total_count)} "
                        f"({_bytes(total)}); "
                        f"{limit}. Use fewer units, rows (input_dim) or filters in {where}.")
    err.path = path
    return err


def _count(count: int) -> str:
    """A parameter count for a message: digits grouped, or its order of magnitude when a
    file's huge ``units`` make it hundreds of digits long."""
    return f"{count:,}" if count < 10**15 else f"about 10^{len(str(count)) - 1}"


def _bytes(count: int) -> str:
    """Bytes in binary units; integer arithmetic, since a file's ``units`` may make the
    count too large for a float."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            if count >= size << 40:
                return f"about 10^{len(str(count // size)) - 1} {unit}"
            return f"{count * 10 // size / 10:.1f} {unit}"
    return f"{count} B"


def build_core_model(spec: PipelineSpec, input_shape: tuple, input_dtype: str = "float32",
                     custom: Optional[dict[str, Any]] = None, allocate: bool = True,
                     base_dir: Optional[str] = None, allocate_up_to: int = 0) -> keras.Model:
    """The trainable model: ``keras.Input(input_shape)``, then the layer of each of the
    spec's nodes (``graph.model_nodes``) called on the outputs of the nodes it names.
    ``input_shape`` maps each input's name to its shape for a model of several inputs
    (``model.inputs``): one ``keras.Input`` each, by that name.

    The layers are built without weights, to count the parameters: a model whose
    weights exceed ``model_memory_bound()`` is refused before anything is allocated;
    otherwise its weights are then allocated (one build, not two).
    The layers take ``train.precision``'s dtype policy (``compiler.precision``), the
    output layers excepted, which compute in float32; the policy is process-wide and
    restored when the build ends.
    With ``allocate=False`` the weightless model is returned (for ``validate --deep``:
    its shapes are right, its weights do not exist), unless its weights take at most
    ``allocate_up_to`` bytes: then they are allocated anyway, so that ``--deep`` also runs
    the layers' initializers, which refuse bad values only when called. ``base_dir``: the
    pipeline's folder (see ``build_layer``).

    Raises:
        SpecError: Keras refuses a layer's arguments or input shape, or two layers have
            one name (one unlocated issue at the layer's key path; the caller locates it).
        TrainingError: the weights do not fit in memory (``.path``: the largest layer).
    """
    nodes = model_nodes(spec)
    sizes: list = []
    built: list = []
    # A check of shapes (`allocate=False`: validate --deep) never downloads weights.
    weights = contextlib.nullcontext() if allocate else shapes_only()
    with policy_scope(spec.train.precision), weights, _deferred_weights() as deferred:
        inputs = model_inputs(nodes, input_shape, input_dtype)
        tensor = _call_nodes(nodes, inputs, custom, sizes, base_dir, built)
        heads = output_heads(spec)
        if heads:  # Keras's output names are the outputs' names as written
            tensor = {head.name: tensor[head.node] for head in heads}
        model = _functional_model(spec, inputs, tensor)
    _NODE_LAYERS[model] = [(node, layer) for node, layer, _, _ in built]
    _refuse_too_large(sizes, model_memory_bound())
    if not allocate and sum(size for _, _, size in sizes) > allocate_up_to:
        return model
    try:  # the model is built once: its weights now get their values
        _allocate(deferred, built)
    except (MemoryError, tf.errors.ResourceExhaustedError) as err:
        path, count, size = max(sizes, key=lambda s: s[2])
        raise too_large(path, count, size, sum(s for _, _, s in sizes),
                        sum(c for _, c, _ in sizes), None) from err
    return model


def model_inputs(nodes: Any, input_shape: Any, dtype: str) -> Any:
    """The ``keras.Input`` of the model's one input (named as ``nodes.inputs`` says), or
    for several inputs (``input_shape`` a dict) a dict of them by name."""
    if isinstance(input_shape, dict):  # ``dtype`` too may be a dict by input name
        return {name: keras.Input(shape=tuple(input_shape[name]), name=name,
                                  dtype=dtype[name] if isinstance(dtype, dict) else dtype)
                for name in nodes.inputs}
    return keras.Input(shape=tuple(input_shape), dtype=dtype, name=nodes.inputs[0])


def _functional_model(spec: PipelineSpec, inputs: Any, outputs: Any) -> keras.Model:
    """``keras.Model(inputs, outputs)``; Keras refuses one whose layers share a name (a
    given ``name:`` equal to the name Keras gives another layer, such as ``dense``)."""
    with keras_guard("layer-arguments", ("model", "layers"), "Keras refused the model"):
        return keras.Model(inputs, outputs, name=_model_name(spec.name))


def build_inference_model(spec: PipelineSpec, model: keras.Model, preprocessing: list,
                          raw_shape: tuple, raw_dtype: str, classes: bool,
                          encoding: Any = None) -> keras.Model:
    """Raw input -> the preprocessing layers -> the trained ``model`` -> probabilities.

    Shares its layers with ``model`` (it always has the current weights). ``classes``:
    the labels are classes, so an output node without softmax or sigmoid (one that
    outputs logits) gets one: sigmoid for one unit, softmax for more. ``raw_shape`` maps
    each input's name to its shape for a model of several inputs: the inference model
    then takes a dict of raw arrays by the same names (no layer step applies to them).
    Typed features (``encoding``, a ``features.FeatureEncoding``): it takes the raw
    columns, a dict by column name, through the features' encoder.
    """
    if encoding is not None:
        raw = encoding.raw_inputs()
        tensor = encoding.encoder(raw)
    elif isinstance(raw_shape, dict):
        raw: Any = {name: keras.Input(shape=tuple(raw_shape[name]), dtype=raw_dtype, name=name)
                    for name in model_nodes(spec).inputs}
        tensor = raw
    else:
        raw = keras.Input(shape=tuple(raw_shape), dtype=raw_dtype, name="raw_features")
        tensor = raw
        for layer in preprocessing:
            tensor = layer(tensor)
    # The trained model's layers, in a model of their own that is not compiled: a compiled
    # one would save its metrics (kerapipe's MetricInputsAdapter) into model.keras, which
    # plain keras.saving.load_model could then not load without kerapipe imported.
    core = keras.Model(model.input, model.output, name=model.name)
    tensor = core(tensor)
    heads = output_heads(spec)
    if heads:  # ``classes``: whether each output's labels are classes, by output name
        outputs = {}
        for head in heads:
            out = tensor[head.name]
            if classes.get(head.name) and output_activation(
                    model_nodes(spec), head.node) not in ("softmax", "sigmoid"):
                out = keras.layers.Activation("sigmoid" if out.shape[-1] == 1 else "softmax",
                                              name=f"{head.name}_probabilities")(out)
            outputs[head.name] = out
        return keras.Model(raw, outputs, name=f"{model.name}_inference")
    from kerapipe.compiler.labels import raw_probabilities

    if raw_probabilities(spec):  # raw labels whose Keras loss took logits
        tensor = keras.layers.Activation(raw_probabilities(spec), name="probabilities")(tensor)
    elif classes and output_activation(model_nodes(spec)) not in ("softmax", "sigmoid"):
        # multi-hot labels: one independent probability per label, never a softmax
        multi_label = spec.data.labels is not None and spec.data.labels.kind == "multi_label"
        final = "sigmoid" if tensor.shape[-1] == 1 or multi_label else "softmax"
        tensor = keras.layers.Activation(final, name="probabilities")(tensor)
    return keras.Model(raw, tensor, name=f"{model.name}_inference")


def _model_name(name: Optional[str]) -> str:
    """The Keras model's name for a run name: TensorFlow takes ASCII letters, digits and
    `_`, and a first character other than `_` (a run name may start with `é`)."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", name or "model")
    return safe if re.match(r"[A-Za-z0-9]", safe) else "run" + safe


def build_loss_on_probabilities(spec: PipelineSpec, loss: Optional[LossSpec] = None
                                ) -> keras.losses.Loss:
    """The run's loss (or one output's ``loss``) for a model that outputs probabilities
    (the inference model)."""
    loss = loss or spec.loss
    entry = load_catalog().losses.get(loss.name)
    kwargs = dict(loss.kwargs)
    if "from_logits" in entry.params:
        kwargs["from_logits"] = False
    return getattr(keras.losses, entry.name)(**kwargs)
