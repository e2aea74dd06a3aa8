"""Generate ``kerapipe/spec/keras_catalog.json`` from the installed Keras.

Why: the spec side of kerapipe validates layer names, layer keyword arguments,
losses, optimizers, metrics, activations and learning-rate schedules without
importing Keras or TensorFlow (slow, heavy, not always installed). So we ship
the names Keras accepts as plain JSON, built from the real classes here.

Regenerate after upgrading Keras:

    .venv/bin/python scripts/gen_keras_catalog.py          # rewrite the JSON
    .venv/bin/python scripts/gen_keras_catalog.py --check  # exit 1 if stale

``tests/test_catalog.py`` fails when the shipped file and the installed Keras
disagree.

How keyword arguments are found: ``inspect.signature(cls.__init__)``, and when
it takes ``**kwargs`` we follow them up the class chain, level by level, for as
long as each level really forwards ``**kwargs`` to its parent's ``__init__``
(read from the source). Arguments a class passes to its parent itself (Conv2D
passes ``rank``, GRU passes ``cell``) are not open to the caller. The chain of
a layer ends in ``keras.layers.Layer.__init__``, which also pops
``input_shape``/``input_dim`` out of its ``**kwargs``; those are added from its
source too.

Typed arguments and docs: each entry's ``args`` holds a JSON Schema fragment per
argument whose type Keras says (``catalog_arg_types.py``: signatures, defaults, the
docstrings' ``Args:`` texts and a small explicit table), with the shared types in
``arg_defs`` (``catalog_keras_values.py``: the names Keras's ``get`` functions accept); the build stops when a plain Keras default does not satisfy its
argument's type (a wrong parse). The docstring summaries go to
``kerapipe/spec/keras_docs.json`` (``catalog_docs.py``), which ``--check`` compares too.

Callbacks: the public ``keras.callbacks`` classes go to ``callbacks`` (their arguments
as layers' are found, and the defaults that are plain values), those a file cannot use
to ``refused_callbacks`` with the reason and the kerapipe key that does the job.

Backbones: each ``keras.applications`` model function is a layer named
``applications.<Function>`` (``"origin": "applications"``), taking the function's
parameters less ``input_tensor`` and ``input_shape`` (kerapipe gives the input). The
``applications`` section holds what ``validate`` checks without TensorFlow: the
smallest image side each accepts (read from the ``min_size`` Keras passes to
``obtain_input_shape``, or its own ``rows < N`` test), its module (whose
``preprocess_input`` the ``preprocess_input`` step copies), that module's preprocessing
mode (``caffe``, ``tf``, ``torch``, or ``none`` when the model includes its own), and
the defaults of ``weights`` and ``include_top``.

keras-hub layers (optional): the public ``keras_hub.layers`` classes go to
``hub_layers`` (``"origin": "keras_hub"``), those a file cannot use to
``refused_hub_layers`` with the reason, and a hub name that ``keras.layers`` also has
is left out (``hub_shadowed``): the file's name means Keras's layer. When keras-hub is
not installed, these sections (and the hub part of keras_docs.json) are taken from the
shipped files unchanged (so ``--check`` and tests/test_catalog.py compare the Keras part
only).
"""

from __future__ import annotations

import argparse
import ast
import collections
import importlib.util
import inspect
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

# The argument types and the docstrings are read by two modules next to this script
# (a script folder is no package: its folder goes on the path, as `python scripts/x.py`
# does itself).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import catalog_arg_types as arg_types  # noqa: E402
import catalog_docs as docstrings  # noqa: E402
import catalog_keras_values as keras_values  # noqa: E402

CATALOG_PATH = Path(__file__).resolve().parents[1] / "kerapipe" / "spec" / "keras_catalog.json"
DOCS_PATH = CATALOG_PATH.with_name("keras_docs.json")

# Public layers a pipeline file may not use (only those present in keras.layers are written).
REFUSED_LAYERS = {
    "Lambda": "runs arbitrary Python code",
    "TFSMLayer": "loads an external SavedModel",
    "TorchModuleWrapper": "wraps foreign (PyTorch) code",
    "JaxLayer": "wraps foreign (JAX) code",
    "FlaxLayer": "wraps foreign (Flax) code",
    "Layer": "abstract base class",
    "Wrapper": "abstract base class",
    "RNN": "needs a cell object that a file cannot express; use LSTM, GRU or SimpleRNN",
    "InputLayer": "kerapipe infers the input",
}
# Parameters of keras.applications functions that kerapipe gives itself (from the data).
APPLICATION_SUPPLIED = ("input_tensor", "input_shape")
# The public keras_hub.layers classes a pipeline file may not use, and why.
REFUSED_HUB_LAYERS = {
    "AnchorGenerator": "returns a dict of anchor boxes per level (object detection), "
                       "which no layer can take as its input",
    "BoxMatcher": "returns a tuple of box matches (object detection), which no layer can "
                  "take as its input",
    "NonMaxSuppression": "returns a dict of detected boxes (object detection), which no "
                         "layer can take as its input",
    "MaskedLMMaskGenerator": "returns a dict of masked tokens, positions and weights "
                             "(language-model pretraining data), which no layer can take "
                             "as its input",
    "RandomDeletion": "edits token lists (ragged or string tensors), not the padded integer "
                      "sequences kerapipe feeds a model (and kerapipe reads a Random* "
                      "step as image augmentation)",
    "RandomSwap": "edits token lists (ragged or string tensors), not the padded integer "
                  "sequences kerapipe feeds a model (and kerapipe reads a Random* step as "
                  "image augmentation)",
    "AudioConverter": "abstract base class of keras-hub's audio preprocessing",
}
# Families of hub classes refused by the start or the end of their name.
HUB_REFUSED_PREFIXES = {
    "SAM": "a component of keras-hub's SAM model: it takes dicts of prompts and "
           "embeddings, which a layer's inputs cannot wire",
}
HUB_REFUSED_SUFFIXES = {
    "ImageConverter": "the preprocessing of one keras-hub preset model (loaded with the "
                      "preset); use ImageConverter, or kerapipe's resize and rescale steps",
    "AudioConverter": "the preprocessing of one keras-hub preset model (loaded with the "
                      "preset)",
    "VideoConverter": "the preprocessing of one keras-hub preset model (loaded with the "
                      "preset); use VideoConverter",
}
HUB_GENERIC_CONVERTERS = ("ImageConverter", "VideoConverter")  # plain arguments: offered
# Parameters of offered hub layers that take a Python object a file cannot write.
HUB_OBJECT_PARAMS = {
    "MaskedLMHead": ("token_embedding",),  # a ReversibleEmbedding layer object
}
# Public classes left out of the other families, and why.
SKIPPED_LOSSES = {"Loss", "LossFunctionWrapper"}  # base classes
SKIPPED_OPTIMIZERS = {
    "Optimizer",  # base class
    "LossScaleOptimizer",  # wraps another optimizer object
    "MultiOptimizer",  # needs a map of optimizer objects
}
SKIPPED_METRICS = {
    "Metric",  # base class
    "MeanMetricWrapper",  # needs a Python function
    "Mean",  # reduces one tensor: in compile() it would average y_true weighted by y_pred
    "Sum",  # same as Mean
}
SKIPPED_SCHEDULES = {"LearningRateSchedule"}  # base class
# Public keras.callbacks classes a pipeline file may not use, and why (with the kerapipe
# key that does the job); only those present in keras.callbacks are written.
REFUSED_CALLBACKS = {
    "LearningRateScheduler": "it needs a Python function; use a learning-rate schedule in "
                             "`optimizer.learning_rate` (e.g. `{ExponentialDecay: {...}}`) "
                             "or `train.stages`",
    "LambdaCallback": "it runs Python functions; use a learning-rate schedule in "
                      "`optimizer.learning_rate` or `train.stages`, or the Python API's "
                      "`fit(callbacks=...)`",
    "RemoteMonitor": "it sends the logs over the network; every epoch's values are in the "
                     "run folder's history.csv",
    "EarlyStopping": "kerapipe owns early stopping; use `train.early_stopping`",
    "ModelCheckpoint": "every epoch is checkpointed in the run folder (checkpoints/) and "
                       "model.keras is the result; use `train.early_stopping` with "
                       "`restore_best_weights` to keep the best epoch",
    "OrbaxCheckpoint": "every epoch is checkpointed in the run folder (checkpoints/) and "
                       "model.keras is the result",
    "BackupAndRestore": "resume is built in: `kerapipe run --resume RUN` continues from the "
                        "last finished epoch",
    "Callback": "abstract base class",
    "CallbackList": "kerapipe's own plumbing (Keras runs the callbacks through it)",
    "History": "kerapipe's own plumbing: every run records its history (history.csv)",
    "ProgbarLogger": "kerapipe's own plumbing: `kerapipe run` shows progress",
}
# Placeholder values for required metric arguments, only to read the default `.name`.
METRIC_SAMPLE_ARGS = {
    "num_classes": 2,
    "target_class_ids": [0],
    "recall": 0.5,
    "precision": 0.5,
    "sensitivity": 0.5,
    "specificity": 0.5,
}

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class Describer:
    """Gives each catalogue entry its typed ``args`` (``catalog_arg_types``) and collects
    its docs for keras_docs.json (``catalog_docs``) and the plain defaults a fragment
    refuses (the self-check)."""

    def __init__(self, keras: Any, activations: list[str]) -> None:
        self.defs = keras_values.build_arg_defs(keras, activations)
        self.from_keras = keras_values.read_from_keras(keras)
        self.docs: dict[str, dict[str, Any]] = {}
        self.problems: list[str] = []

    def describe(self, family: str, name: str, entry: dict[str, Any], owner: Any,
                 rank: int | None = None, typed: bool = True) -> dict[str, Any]:
        """``entry`` with its ``args`` (when any is typed); ``owner`` is the class or,
        for a backbone, the function."""
        if inspect.isclass(owner):
            defaults, texts = arg_types.class_defaults(owner), docstrings.class_args(owner)
        else:
            defaults, texts = arg_types.signature_defaults(owner), docstrings.function_args(owner)
        args = arg_types.typed_args(family, name, entry["params"], defaults, texts,
                                    rank, self.from_keras) if typed else {}
        if args:
            entry["args"] = args
        self.problems += arg_types.check_defaults(family, name, args, defaults, self.defs)
        self.docs.setdefault(family, {})[name] = docstrings.entry_docs(
            owner.__doc__, texts, entry["params"])
        return entry


def _forwarding_call(owner: type, varkw: str) -> tuple[type, list[ast.expr], set[str]] | None:
    """Where ``owner.__init__`` forwards its ``**varkw``: the parent class, and the
    positional arguments and keyword names it passes there itself. None if it does not."""
    init = owner.__dict__["__init__"]
    mro = owner.__mro__
    for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(init)))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "__init__"):
            continue
        if not any(kw.arg is None and getattr(kw.value, "id", None) == varkw
                   for kw in node.keywords):
            continue
        target, args = node.func.value, node.args
        if isinstance(target, ast.Call) and getattr(target.func, "id", None) == "super":
            start = mro.index(owner) + 1  # super(): the next class in the MRO
        elif isinstance(target, ast.Name) and init.__globals__.get(target.id) in mro:
            start = mro.index(init.__globals__[target.id])  # Base.__init__(self, ...)
            args = args[1:]  # drop `self`
        else:
            continue
        parent = next(k for k in mro[start:] if "__init__" in k.__dict__)
        return parent, args, {kw.arg for kw in node.keywords if kw.arg}
    return None


def _popped_kwargs(init: Any, varkw: str) -> set[str]:
    """Names read with ``varkw.pop("name", ...)`` in a function's source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr == "pop" and getattr(node.func.value, "id", None) == varkw
        and node.args and isinstance(node.args[0], ast.Constant)
    }


def init_params(cls: type, layer_base: type | None = None) -> dict[str, list[str]]:
    """Accepted and required keyword arguments of ``cls(...)``.

    ``layer_base`` is ``keras.layers.Layer``: when the chain reaches it, the names its
    ``__init__`` pops from ``**kwargs`` (``input_shape``, ``input_dim``) are accepted too.
    """
    accepted: dict[str, bool] = {}  # name -> required
    consumed: set[str] = set()  # passed to a parent by a subclass, so not open to the caller
    owner = next(k for k in cls.__mro__ if "__init__" in k.__dict__)
    while True:
        init = owner.__dict__["__init__"]
        parameters = list(inspect.signature(init).parameters.values())[1:]  # drop self
        named = [p for p in parameters if p.kind in _NAMED]
        for p in named:
            if p.name not in consumed:
                accepted.setdefault(p.name, p.default is inspect.Parameter.empty)
        varkw = next((p.name for p in parameters if p.kind is p.VAR_KEYWORD), None)
        if varkw is None:
            break
        if owner is layer_base:
            for name in _popped_kwargs(init, varkw):
                accepted.setdefault(name, False)
        found = _forwarding_call(owner, varkw)
        if found is None:
            break
        parent, args, keywords = found
        parent_params = list(inspect.signature(parent.__dict__["__init__"]).parameters)[1:]
        n_positional = sum(not isinstance(arg, ast.Starred) for arg in args)
        consumed |= keywords | set(parent_params[:n_positional])
        owner = parent
    return {
        "params": sorted(accepted),
        "required": sorted(name for name, required in accepted.items() if required),
    }


def public_classes(module: Any, base: type) -> dict[str, type]:
    """Public names in ``module`` bound to subclasses of ``base`` (aliases included)."""
    return {
        name: obj for name in dir(module)
        if not name.startswith("_")
        and inspect.isclass(obj := getattr(module, name)) and issubclass(obj, base)
    }


def string_aliases(cls: type, candidates: Any, get: Any, instance: Any) -> list[str]:
    """Lowercase identifiers that ``get`` resolves to ``cls`` (a class or its function)."""
    aliases = []
    for key in candidates:
        if not isinstance(key, str) or key != key.lower() or key == cls.__name__:
            continue
        try:
            obj = get(key)
        except Exception:  # e.g. the class needs arguments: the alias does not work
            continue
        fn = getattr(instance, "fn", None)  # losses: LossFunctionWrapper keeps its function
        if type(obj) is cls or (fn is not None and obj is fn):
            aliases.append(key)
    return sorted(aliases)


def fresh_name_instance(cls: type, **kwargs: Any) -> Any:
    """``cls(**kwargs)`` built as if first of its name in the process.

    Keras appends ``_1``, ``_2``... to auto-generated names (``precision_1``) from a
    process-wide counter; a fresh counter makes ``.name`` the default logged name.
    """
    from keras.src.backend.common import global_state

    saved = global_state.get_global_attribute("object_name_uids")
    global_state.set_global_attribute("object_name_uids", collections.defaultdict(int))
    try:
        return cls(**kwargs)
    finally:
        global_state.set_global_attribute("object_name_uids", saved)


def _calls(fn: Any) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(fn))))
            if isinstance(node, ast.Call)]


def _called_functions(fn: Any) -> list[Any]:
    """The Keras application functions ``fn`` calls by name (``ResNet(...)``,
    ``resnet.ResNet(...)``): where a model function hands its work on."""
    found = []
    for call in _calls(fn):
        func, target = call.func, None
        if isinstance(func, ast.Name):
            target = fn.__globals__.get(func.id)
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            target = getattr(fn.__globals__.get(func.value.id), func.attr, None)
        if (inspect.isfunction(target) and target is not fn
                and target.__module__.startswith("keras.src.applications.")):
            found.append(target)
    return found


def min_image_side(fn: Any, depth: int = 0) -> int | None:
    """The smallest image side Keras accepts for the model function ``fn``: the
    ``min_size`` it passes to ``obtain_input_shape``, or the ``N`` of its own ``rows < N``
    test (MobileNetV3), in ``fn`` or in the function it hands its work on to."""
    for call in _calls(fn):
        name = getattr(call.func, "attr", getattr(call.func, "id", None))
        if name == "obtain_input_shape":
            for kw in call.keywords:
                if kw.arg == "min_size" and isinstance(kw.value, ast.Constant):
                    return int(kw.value.value)
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Compare) and isinstance(node.left, ast.Name)
                and node.left.id in ("rows", "cols") and isinstance(node.ops[0], ast.Lt)
                and isinstance(node.comparators[0], ast.Constant)):
            return int(node.comparators[0].value)
    if depth < 3:
        for target in _called_functions(fn):
            side = min_image_side(target, depth + 1)
            if side is not None:
                return side
    return None


def preprocess_mode(module: Any, imagenet_utils: Any) -> str:
    """How ``module.preprocess_input`` prepares pixels: the ``mode`` it passes to
    ``imagenet_utils.preprocess_input`` (Keras's default there is ``caffe``), or
    ``none`` when it returns its input (the model includes its preprocessing)."""
    default = inspect.signature(imagenet_utils.preprocess_input).parameters["mode"]
    for call in _calls(module.preprocess_input):
        if getattr(call.func, "attr", None) == "preprocess_input":
            for kw in call.keywords:
                if kw.arg == "mode" and isinstance(kw.value, ast.Constant):
                    return str(kw.value.value)
            return str(default.default)
    return "none"


def build_applications(keras: Any, describer: Describer
                       ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The backbone layers (``applications.<Function>``) and their facts."""
    layers: dict[str, Any] = {}
    facts: dict[str, Any] = {}
    for name in dir(keras.applications):
        fn = getattr(keras.applications, name)
        if name.startswith("_") or not inspect.isfunction(fn) or not name[0].isupper():
            continue
        parameters = {p.name: p for p in inspect.signature(fn).parameters.values()
                      if p.kind in _NAMED and p.name not in APPLICATION_SUPPLIED}
        layers[f"applications.{name}"] = describer.describe("layers", f"applications.{name}", {
            "origin": "applications",
            "params": sorted(parameters),
            "required": sorted(p for p, info in parameters.items()
                               if info.default is inspect.Parameter.empty),
        }, fn)
        module_name = fn.__module__.rsplit(".", 1)[1]
        module = sys.modules[fn.__module__]  # the source (the public module re-exports it)
        side = min_image_side(fn)
        if side is None:
            raise SystemExit(f"cannot read the smallest input of keras.applications.{name}: "
                             "teach min_image_side where this Keras keeps it")
        facts[name] = {
            "module": module_name,
            "min_size": side,
            "preprocess": preprocess_mode(module, keras.applications.imagenet_utils),
            "defaults": {p: parameters[p].default for p in ("weights", "include_top")},
        }
    return layers, facts


def build_callbacks(keras: Any, describer: Describer) -> tuple[dict[str, Any], dict[str, str]]:
    """The keras.callbacks classes a file may use (arguments, required ones, and the
    defaults that are plain values: ``monitor``, a path) and the refused ones with why."""
    classes = public_classes(keras.callbacks, keras.callbacks.Callback)
    offered: dict[str, Any] = {}
    for name, cls in classes.items():
        if name in REFUSED_CALLBACKS:
            continue
        entry = init_params(cls)
        signature = inspect.signature(cls.__init__).parameters
        entry["defaults"] = {
            p: signature[p].default for p in entry["params"]
            if p in signature and signature[p].default is not inspect.Parameter.empty
            and isinstance(signature[p].default, (str, int, float, bool, type(None)))}
        offered[name] = describer.describe("callbacks", name, entry, cls)
    refused = {name: why for name, why in REFUSED_CALLBACKS.items() if name in classes}
    return offered, refused


def hub_refusal(name: str) -> str | None:
    """Why a public keras_hub.layers class is not offered, or None."""
    if name in REFUSED_HUB_LAYERS:
        return REFUSED_HUB_LAYERS[name]
    if name in HUB_GENERIC_CONVERTERS:
        return None
    for prefix, why in HUB_REFUSED_PREFIXES.items():
        if name.startswith(prefix):
            return why
    for suffix, why in HUB_REFUSED_SUFFIXES.items():
        if name.endswith(suffix):
            return why
    return None


def build_hub(keras: Any, keras_layer_names: set[str],
              describer: Describer | None = None) -> dict[str, Any] | None:
    """The keras-hub sections, or None when keras-hub is not installed.

    ``describer``: types the hub layers' arguments and collects their docs (None: a
    describer of its own, whose docs are dropped)."""
    if describer is None:
        describer = Describer(keras, activation_names(keras))
    try:
        import keras_hub
    except ImportError:
        return None
    hub_layers, refused, shadowed = {}, {}, []
    for name, cls in public_classes(keras_hub.layers, keras.layers.Layer).items():
        if name in keras_layer_names:
            shadowed.append(name)
            continue
        why = hub_refusal(name)
        if why is not None:
            refused[name] = why
            continue
        entry = init_params(cls, keras.layers.Layer)
        objects = HUB_OBJECT_PARAMS.get(name, ())
        entry["params"] = [p for p in entry["params"] if p not in objects]
        entry["required"] = [p for p in entry["required"] if p not in objects]
        hub_layers[name] = describer.describe("hub_layers", name, {"origin": "keras_hub", **entry},
                                              cls)
    return {
        "keras_hub_version": keras_hub.__version__,
        "hub_layers": hub_layers,
        "refused_hub_layers": refused,
        "hub_shadowed": sorted(shadowed),
    }


HUB_SECTIONS = ("keras_hub_version", "hub_layers", "refused_hub_layers", "hub_shadowed")


def hub_sections(keras: Any, keras_layer_names: set[str],
                 shipped: dict[str, Any] | None = None,
                 describer: Describer | None = None) -> dict[str, Any]:
    """The keras-hub sections: built from the installed keras-hub, or, when it is not
    installed, those of ``shipped`` (``None``: the shipped file) unchanged."""
    hub = build_hub(keras, keras_layer_names, describer)
    if hub is not None:
        return hub
    if shipped is None:
        shipped = json.loads(CATALOG_PATH.read_text("utf-8")) if CATALOG_PATH.exists() else {}
    return {key: shipped[key] for key in HUB_SECTIONS if key in shipped}


def activation_names(keras: Any) -> list[str]:
    """The activations a file may name (those that need no argument but ``x``)."""
    activations = []
    for name in dir(keras.activations):
        if name.startswith("_") or name in ("get", "serialize", "deserialize"):
            continue
        fn = keras.activations.get(name)
        extra = list(inspect.signature(fn).parameters.values())[1:]
        if all(p.default is not p.empty for p in extra):  # `threshold` needs more than x
            activations.append(name)
    return sorted(activations)


def build_catalog(shipped: dict[str, Any] | None = None,
                  docs: dict[str, Any] | None = None,
                  shipped_docs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the catalogue from the installed Keras (deterministic).

    ``shipped``: the current catalogue, whose keras-hub sections are kept when
    keras-hub is not installed (``None``: read the shipped file). ``docs``: a dict
    filled with the content of keras_docs.json (whose keras-hub part comes from
    ``shipped_docs`` then; ``None``: the shipped docs file). Exits when a typed
    argument's default does not satisfy its type (a wrong parse)."""
    import keras
    from keras.src.losses import ALL_OBJECTS_DICT as LOSS_NAMES
    from keras.src.metrics import ALL_OBJECTS_DICT as METRIC_NAMES
    from keras.src.optimizers import ALL_OBJECTS_DICT as OPTIMIZER_NAMES

    activations = activation_names(keras)
    describer = Describer(keras, activations)
    layer_classes = public_classes(keras.layers, keras.layers.Layer)
    layers = {name: describer.describe("layers", name, init_params(cls, keras.layers.Layer),
                                       cls, arg_types.layer_rank(name))
              for name, cls in layer_classes.items() if name not in REFUSED_LAYERS}
    refused = {name: why for name, why in REFUSED_LAYERS.items() if name in layer_classes}

    losses = {}
    for name, cls in public_classes(keras.losses, keras.losses.Loss).items():
        if name not in SKIPPED_LOSSES:
            entry = init_params(cls)
            entry["aliases"] = string_aliases(cls, LOSS_NAMES, keras.losses.get, cls())
            losses[name] = describer.describe("losses", name, entry, cls)

    metrics = {}
    for name, cls in public_classes(keras.metrics, keras.metrics.Metric).items():
        if name not in SKIPPED_METRICS:
            entry = init_params(cls)
            sample = {arg: METRIC_SAMPLE_ARGS[arg] for arg in entry["required"]}
            instance = fresh_name_instance(cls, **sample)
            entry["aliases"] = string_aliases(cls, METRIC_NAMES, keras.metrics.get, instance)
            entry["logged_name"] = instance.name
            metrics[name] = describer.describe("metrics", name, entry, cls)

    optimizers = {}
    for name, cls in public_classes(keras.optimizers, keras.optimizers.Optimizer).items():
        if name not in SKIPPED_OPTIMIZERS:
            entry = init_params(cls)
            entry["aliases"] = string_aliases(cls, OPTIMIZER_NAMES, keras.optimizers.get, None)
            optimizers[name] = describer.describe("optimizers", name, entry, cls)

    schedule_base = keras.optimizers.schedules.LearningRateSchedule
    schedules = {name: describer.describe("schedules", name, init_params(cls), cls)
                 for name, cls in public_classes(keras.optimizers.schedules, schedule_base).items()
                 if name not in SKIPPED_SCHEDULES}

    callbacks, refused_callbacks = build_callbacks(keras, describer)
    backbones, applications = build_applications(keras, describer)
    hub = hub_sections(keras, set(layers) | set(refused), shipped, describer)
    layers.update(backbones)
    if describer.problems:
        raise SystemExit("typed arguments whose Keras default their type refuses (a wrong "
                         "parse: fix catalog_arg_types.py):\n  " + "\n  ".join(describer.problems))

    if docs is not None:
        describer.docs["hub_layers"] = hub_docs(describer.docs, shipped_docs)
        docs.update(describer.docs)
        docs["arg_defs"] = dict(keras_values.ARG_DEF_DOCS)
        docs["activations"] = {name: docstrings.summary(keras.activations.get(name).__doc__)
                               for name in activations}

    return {
        **hub,
        "keras_version": keras.__version__,
        "applications": applications,
        "arg_defs": describer.defs,
        "layers": layers,
        "refused_layers": refused,
        "activations": activations,
        "losses": losses,
        "metrics": metrics,
        "optimizers": optimizers,
        "schedules": schedules,
        "callbacks": callbacks,
        "refused_callbacks": refused_callbacks,
    }


def hub_docs(built: dict[str, Any], shipped_docs: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    """The hub part of keras_docs.json: as built from the installed keras-hub, or, when it
    is not installed (nothing built), that of ``shipped_docs`` (``None``: the shipped file)."""
    if "hub_layers" in built:
        return built["hub_layers"]
    if shipped_docs is None:
        shipped_docs = read_json(DOCS_PATH)
    return shipped_docs.get("hub_layers", {})


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text("utf-8")) if path.exists() else {}


def render(catalog: dict[str, Any]) -> str:
    """The file's text: one line per entry of each section (a diff names the entries that
    changed), no spaces inside an entry (``validate`` parses the file each run: indenting
    every key made it parse in 2.6 ms instead of 1.5)."""
    def compact(value: Any) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    sections = []
    for key, value in sorted(catalog.items()):
        if isinstance(value, dict) and value:
            entries = ",\n".join(f"  {compact(name)}: {compact(entry)}"
                                  for name, entry in sorted(value.items()))
            sections.append(f" {compact(key)}: {{\n{entries}\n }}")
        else:
            sections.append(f" {compact(key)}: {compact(value)}")
    return "{\n" + ",\n".join(sections) + "\n}\n"


def diff_summary(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """One line per top-level section (and entry) that differs."""
    lines = []
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section), new.get(section)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if key not in a:
                    lines.append(f"{section}: + {key}")
                elif key not in b:
                    lines.append(f"{section}: - {key}")
                elif a[key] != b[key]:
                    lines.append(f"{section}: ~ {key}")
        else:
            lines.append(f"{section}: {a!r} -> {b!r}"[:200])
    return lines


def typed_counts(catalog: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Per family: how many arguments are typed, of how many."""
    counts = {}
    for family in ("layers", "hub_layers", "losses", "metrics", "optimizers", "schedules",
                   "callbacks"):
        entries = catalog.get(family, {}).values()
        counts[family] = (sum(len(e.get("args", {})) for e in entries),
                          sum(len(e["params"]) for e in entries))
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare the shipped files with a fresh build; exit 1 if they differ")
    args = parser.parse_args(argv)
    docs: dict[str, Any] = {}
    catalog = build_catalog(docs=docs)
    if importlib.util.find_spec("keras_hub") is None:
        print("keras-hub is not installed: its part of the catalogue is kept as shipped")
    for family, (typed, total) in typed_counts(catalog).items():
        print(f"{family}: {typed} of {total} arguments typed")
    files = ((CATALOG_PATH, catalog), (DOCS_PATH, docs))
    if args.check:
        stale = 0
        for path, built in files:
            text = path.read_text("utf-8") if path.exists() else "{}"
            if text == render(built):
                print(f"{path} is up to date")
                continue
            stale += 1
            lines = diff_summary(json.loads(text), built)
            print(f"{path} is stale; regenerate with scripts/gen_keras_catalog.py")
            for line in lines[:50]:
                print("  " + line)
            if len(lines) > 50:
                print(f"  ... and {len(lines) - 50} more")
        return 1 if stale else 0
    for path, built in files:
        path.write_text(render(built), encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
