"""The pipeline file format, version 1, declared once as typed dataclasses.

Everything about a key lives here: its type, default, bounds and one-line doc. The
validator, ``kerapipe schema`` and the README's key reference are all derived from
these classes (see ``spec/typed.py``). YAML keys equal the Keras argument they feed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal, Optional, Union

from kerapipe.spec.argument_values import argument_issues
from kerapipe.spec.callbacks import MAX_CALLBACKS, CallbackSpec
from kerapipe.spec.catalog import Family, load_catalog
# Re-exported: the rest of kerapipe names the format's objects from this module.
from kerapipe.spec.keras_objects import (NESTED_LAYER_ARGS, LayerSpec, ScheduleSpec,  # noqa: F401
                                         is_custom_name, suggest_or_list)
from kerapipe.spec.features import CrossSpec, FeatureSet, feature_issues
from kerapipe.spec.known_datasets import strings_without_data
from kerapipe.spec.label_kinds import LabelsSpec
from kerapipe.spec.model_section import ModelSpec
from kerapipe.spec.issues import Issue, Path, did_you_mean, safe_repr
# Re-exported: the data sources are declared in spec/sources.py.
from kerapipe.spec.sources import (MAX_WORDS, CsvSource, ImagesSource, KerasSource,  # noqa: F401
                                   NpzSource, SourceSpec, check_path_text)
# Re-exported: data.split is declared in spec/splits.py.
from kerapipe.spec.splits import SplitFile, SplitSpec  # noqa: F401
from kerapipe.spec.stages import MAX_STAGES, StageSpec, resolve_stage_epochs
from kerapipe.spec.steps import (ADAPTABLE_LAYERS, STEPS, STRINGS_NEED_A_STEP,
                                 adaptable_layer, is_augmentation_layer, step_kind, takes_strings,
                                 unknown_step, vocabulary_issues)
from kerapipe.spec.tune import TuneSpec
from kerapipe.spec.typed import parse, parse_spec, spec_field, to_plain
from kerapipe.spec.weights import ClassWeightSpec

FORMAT_VERSION = 1


# Upper bounds of the integer keys: far above any real use, low enough that no value can
# overflow what it feeds (NumPy seeds are 32-bit, tf.data and Keras take int64) or cost
# more than a machine has. Each bound is in the doc of its key (README, JSON Schema).
MAX_SEED = 2**32 - 1            # numpy.random.seed accepts 0 .. 2**32 - 1
MAX_BATCH_SIZE = 2**20          # 1,048,576 examples a step
MAX_SHUFFLE = 1_000_000_000     # examples in the shuffle buffer
MAX_EPOCHS = 1_000_000          # epochs, patience, start_from_epoch, steps_per_execution
MAX_TOP_K = 1_000               # predictions.csv columns grow 3 per rank
# The preprocessing steps' bounds (MAX_SEQUENCE, MAX_CLASSES, MAX_IMAGE_SIDE, MAX_RANK,
# MAX_DIM) are declared with the steps, in spec/steps.py.

# A run name becomes one folder name (`<name>-<timestamp>`) directly inside the output
# folder, and (with characters other than ASCII letters and digits as `_`) the Keras
# model's name. So no separator can appear in it, nor anything a file system refuses, and
# it starts with a letter or digit (of any script): `_x`, `-x` or `.x` would start the
# Keras name with `_`, which TensorFlow refuses, and a leading `.` hides the folder.
MAX_RUN_NAME_BYTES = 200  # a folder name holds 255 bytes; the timestamp takes 20 more
_RUN_NAME = re.compile(r"[^\W_][^/\\]*\Z")
RUN_NAME_PATTERN = r"^[^\s\x00-\x1f\x7f./\\_-][^/\\\x00-\x1f\x7f]*$"  # JSON Schema (ASCII \w)
RUN_NAME_RULE = ("printable characters other than '/' and '\\', at most "
                 f"{MAX_RUN_NAME_BYTES} bytes in UTF-8, starting with a letter or digit "
                 "(of any script)")


def is_run_name(name: Any) -> bool:
    """Whether ``name`` is a valid run name (``RUN_NAME_RULE``)."""
    return (isinstance(name, str) and bool(_RUN_NAME.match(name)) and name.isprintable()
            and len(name.encode("utf-8", "surrogatepass")) <= MAX_RUN_NAME_BYTES)


def default_run_name(file: str) -> str:
    """The run name of a file without ``name:``: its stem, made a valid run name.

    Characters the rule refuses (separators, control characters) become ``_``, leading
    ones that cannot start a name are dropped, and the result is cut to
    ``MAX_RUN_NAME_BYTES`` (``_x.yaml`` -> ``x``; ``my pipeline.yaml`` and
    ``résumé (1).yaml`` keep their stems); ``pipeline`` for text, a dict, or a stem with
    nothing left.
    """
    stem = PurePath(file).stem if not file.startswith("<") else ""
    safe = "".join(c if c.isprintable() and c not in "/\\" else "_" for c in stem)
    safe = re.sub(r"^[\W_]+", "", safe)
    safe = safe.encode("utf-8", "surrogatepass")[:MAX_RUN_NAME_BYTES].decode("utf-8", "ignore")
    return safe if is_run_name(safe) else "pipeline"


# --- data --------------------------------------------------------------------------

@dataclass(frozen=True)
class PreprocessStep:
    """One preprocessing step: a kerapipe step (`rescale: 1/255`) or a Keras `Random*` layer."""

    kind: str
    options: Any  # a *Step dataclass, or a LayerSpec for augmentation layers

    @classmethod
    def from_yaml(cls, value: Any, path: Path, issues: list[Issue]) -> "PreprocessStep | None":
        if not isinstance(value, dict) or len(value) != 1:
            issues.append(Issue("wrong-type", path, "a preprocessing step is one key, e.g. "
                                f"`- rescale: 1/255` or `- RandomFlip: {{mode: horizontal}}`. "
                                f"Received: {safe_repr(value)}"))
            return None
        (kind, options), = value.items()
        if kind in STEPS:
            parsed = parse_spec(STEPS[kind].options, options, path + (kind,), issues)
            return cls(kind, parsed) if parsed is not None else None
        if is_augmentation_layer(kind) or adaptable_layer(kind):
            layer = LayerSpec.from_yaml(value, path, issues)
            if layer is not None:
                issues.extend(vocabulary_issues(layer, path + (kind,)))
            return cls(kind, layer) if layer is not None else None
        issues.append(unknown_step(kind, path))
        return None

    @staticmethod
    def json_schema() -> dict:
        from kerapipe.spec.object_schemas import class_schemas, names_pattern, unknown_name_message
        from kerapipe.spec.typed import json_schema_for
        defs: dict = {}
        steps = {}
        for key, kind in STEPS.items():  # inline the step definitions: this schema is a leaf
            ref = json_schema_for(kind.options, defs)["$ref"]
            steps[key] = dict(defs[ref.rsplit("/", 1)[1]], description=kind.doc)
        layers = load_catalog().layers
        randoms = [n for n in layers.entries if n.startswith("Random") or n in ADAPTABLE_LAYERS]
        steps.update(class_schemas(layers, randoms))
        return {"type": "object", "properties": steps, "minProperties": 1, "maxProperties": 1,
                "propertyNames": {"pattern": names_pattern(steps), "patternErrorMessage":
                                  unknown_name_message("preprocessing step", "kerapipe step "
                                                       "or Keras Random*/adaptable layer")}}

    def to_yaml(self) -> Any:
        if isinstance(self.options, LayerSpec):
            return self.options.to_yaml()
        return {self.kind: to_plain(self.options)}


@dataclass(frozen=True)
class DataSpec:
    """The data: source, split, preprocessing and batching (a tf.data pipeline)."""

    source: SourceSpec = spec_field(doc="Exactly one of: sample, keras, npz, csv, images.")
    split: SplitSpec = spec_field(SplitSpec(), "Validation and test examples: fractions "
                                 "(shuffled or in order), a column, or files.")
    preprocess: list[PreprocessStep] = spec_field([], "Steps in order; they run in tf.data "
                                                  "and are saved in the inference model.")
    batch_size: int = spec_field(32, "Examples per training step.", ge=1, le=MAX_BATCH_SIZE)
    shuffle: int = spec_field(10000, "Shuffle buffer size in examples (0 turns shuffling "
                              "off).", ge=0, le=MAX_SHUFFLE)
    cache: Union[bool, Literal["auto"]] = spec_field(
        "auto", "Cache the preprocessed examples in memory after the first epoch; `auto` "
        "caches when they fit the memory budget (a quarter of RAM, at most 2 GiB).")
    features: Optional[FeatureSet] = spec_field(
        None, "The columns of a CSV table and their types, by column name: a "
        "keras.utils.FeatureSpace type (`float`, `float_normalized`, `float_rescaled`, "
        "`float_discretized`, `integer_categorical`, `string_categorical`, "
        "`integer_hashed`, `string_hashed`) or `text` (TextVectorization), with its Keras "
        "arguments and a `missing:` policy (`refuse`, `drop`, `mean`, `mode`, `{fill: "
        "VALUE}`). Adapted on the training split and saved in the model, which then takes "
        "the raw columns. Without it every column but the label is a number.")
    crosses: list[CrossSpec] = spec_field([], "Feature crosses of typed features "
                                          "(keras.utils.FeatureSpace.cross).", max_items=100)
    labels: Optional[LabelsSpec] = spec_field(None, "What the labels are: `classes`, "
                                              "`binary`, `multi_label`, `regression` or "
                                              "`raw`; inferred from the loss and the data "
                                              "when absent.")

    def options_of(self, kind: str) -> list[Any]:
        """The options of every ``kind`` step in ``preprocess``, in order (``pad_sequences``
        steps run at load time; ``one_hot`` on the labels): the one place that looks a
        step up by its name."""
        return [step.options for step in self.preprocess if step.kind == kind]

    def first_options(self, kind: str) -> Any:
        """The options of the first ``kind`` step, or ``None`` when there is none."""
        found = self.options_of(kind)
        return found[0] if found else None


# --- loss, optimizer, metrics ------------------------------------------------------

def _check_kwargs_in(family: Family, kind: str, name: str, kwargs: dict, path: Path,
                     issues: list[Issue], typed: tuple[str, ...] = ()) -> None:
    if not isinstance(name, str):
        return  # a wrong type is already reported
    if kind == "loss" and is_custom_name(name):
        return  # an imported loss: checked against `imports:` (checks.check_imports)
    entry = family.get(name)
    if entry is None:
        issues.append(Issue(f"unknown-{kind}", path + ("name",) if kwargs or typed else path,
                            f"unknown {kind} '{name}'.{did_you_mean(name, family.names())}"))
        return
    for arg in kwargs:
        if arg not in entry.params:
            issues.append(Issue("unknown-argument", path + (arg,), f"unknown argument '{arg}' of "
                                f"{entry.name}.{suggest_or_list(arg, entry.params)}",
                                at_key=True))
    issues += argument_issues(entry.name, kwargs, entry.args, load_catalog().arg_defs, path)


class _NameAndArguments:
    """A Keras class named by `name`, its keyword arguments written beside it (`extra`:
    gathered into `kwargs`); a bare string is the name (`shorthand`)."""

    shorthand = "name"
    extra = "kwargs"


@dataclass(frozen=True)
class LossSpec(_NameAndArguments):
    """The loss: a keras.losses name, with its keyword arguments beside `name`."""

    name: str = spec_field(doc="Keras loss name, e.g. `sparse_categorical_crossentropy`.")
    kwargs: dict = spec_field({}, "Keyword arguments of the Keras loss class (e.g. "
                              "`from_logits`, `label_smoothing`).")

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        _check_kwargs_in(load_catalog().losses, "loss", values.get("name"), values["kwargs"],
                         path, issues)


@dataclass(frozen=True)
class OptimizerSpec(_NameAndArguments):
    """The optimizer: a keras.optimizers name, learning rate, and its keyword arguments."""

    name: str = spec_field("adam", "Keras optimizer name, e.g. `adam`, `sgd`, `adamw`.")
    learning_rate: Union[float, ScheduleSpec] = spec_field(
        0.001, "A number, or a schedule such as `{ExponentialDecay: {...}}`; a schedule's "
        "step counts may be written in epochs, `decay_steps: {epochs: 10}`.", gt=0)
    kwargs: dict = spec_field({}, "Other keyword arguments of the Keras optimizer class "
                              "(e.g. `momentum`, `weight_decay`).")

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        _check_kwargs_in(load_catalog().optimizers, "optimizer", values.get("name", "adam"),
                         values["kwargs"], path, issues, typed=("learning_rate",))


@dataclass(frozen=True)
class MetricSpec(_NameAndArguments):
    """A metric: a keras.metrics name (or `accuracy`), with its keyword arguments."""

    name: str = spec_field(doc="Keras metric name, e.g. `accuracy`.")
    kwargs: dict = spec_field({}, "Keyword arguments of the Keras metric class.")

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        if values.get("name") in ("accuracy", "acc") and not values["kwargs"]:
            return  # Keras picks the accuracy that matches the loss
        _check_kwargs_in(load_catalog().metrics, "metric", values.get("name"), values["kwargs"],
                         path, issues)


# --- training and output ----------------------------------------------------------

@dataclass(frozen=True)
class EarlyStoppingSpec:
    """Stop when a metric stops improving (keras.callbacks.EarlyStopping)."""

    monitor: str = spec_field("val_loss", "Metric to watch, e.g. `val_loss`, `val_accuracy`.")
    patience: int = spec_field(3, "Epochs without improvement before stopping.", ge=0,
                               le=MAX_EPOCHS)
    min_delta: float = spec_field(0.0, "Smallest change that counts as an improvement.", ge=0)
    mode: Literal["auto", "min", "max"] = spec_field("auto", "Whether lower or higher is "
                                                     "better; `auto` infers it from the name.")
    restore_best_weights: bool = spec_field(True, "Keep the weights of the best epoch.")
    start_from_epoch: int = spec_field(0, "Epochs to wait before watching.", ge=0,
                                       le=MAX_EPOCHS)


MAX_STARTUP_TIMEOUT = 86_400    # seconds a worker waits for its peers: a day at most


@dataclass(frozen=True)
class DistributeSpec:
    """Train on several devices or workers with an engine that exists already
    (tf.distribute); launchers (Ray Train, Kubeflow, SLURM, `kerapipe run --workers N`)
    only set the environment."""

    strategy: Literal["none", "mirrored", "multi_worker"] = spec_field(
        "none", "`none`: one device, as Keras picks it; `mirrored`: every local GPU "
        "(tf.distribute.MirroredStrategy); `multi_worker`: the workers that `TF_CONFIG` "
        "lists (tf.distribute.MultiWorkerMirroredStrategy), each started with the same "
        "file. `data.batch_size` is the global batch, split across the replicas.")
    startup_timeout: int = spec_field(
        300, "Seconds a `multi_worker` worker waits for every peer to start before it "
        "stops, naming the missing ones (exit 6).", ge=1, le=MAX_STARTUP_TIMEOUT)


@dataclass(frozen=True)
class TrainSpec:
    """How long to train and when to stop."""

    epochs: int = spec_field(10, "Passes over the training split.", ge=1, le=MAX_EPOCHS)
    early_stopping: Optional[EarlyStoppingSpec] = spec_field(None, "Stop early when `monitor` "
                                                             "stops improving (off when absent).")
    callbacks: list[CallbackSpec] = spec_field(
        [], "keras.callbacks classes by their Keras name, e.g. `- ReduceLROnPlateau: "
        "{monitor: val_loss, factor: 0.5}`; their files (TensorBoard's `log_dir`, "
        "CSVLogger's `filename`) go inside the run folder.", max_items=MAX_CALLBACKS)
    steps_per_execution: int = spec_field(1, "Training steps per call into the compiled "
                                          "graph (keras Model.compile).", ge=1,
                                          le=MAX_EPOCHS)
    jit_compile: Union[bool, Literal["auto"]] = spec_field(
        "auto", "XLA compilation (keras Model.compile); `auto` lets Keras decide: off on "
        "machines without a GPU/TPU and while deterministic ops are on.")
    deterministic: bool = spec_field(True, "With a seed, also make TensorFlow's ops "
                                     "deterministic (bit-for-bit repeatable runs).")
    class_weight: Optional[ClassWeightSpec] = spec_field(
        None, "Weigh each training example's loss by its class: `balanced` (n_samples / "
        "(n_classes * count of the class) over the training split, as scikit-learn's "
        "compute_class_weight) or `{class: weight}` by class name or index (a class not "
        "listed weighs 1). Validation and test metrics stay unweighted.")
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = spec_field(
        "float32", "Keras's dtype policy of the model: `mixed_float16` or `mixed_bfloat16` "
        "compute in 16 bits and keep the weights, the output layer and the loss in float32 "
        "(faster on GPUs with tensor cores and TPUs; slower without one).")
    stages: list[StageSpec] = spec_field(
        [], "Fine-tuning stages that continue the same model and data, each `{epochs, "
        "trainable, optimizer, early_stopping}` (one `model.fit` each, the model compiled "
        "again); `train.epochs` is then their sum.", max_items=MAX_STAGES)
    distribute: DistributeSpec = spec_field(
        DistributeSpec(), "Several devices or workers: `{strategy: none | mirrored | "
        "multi_worker, startup_timeout}` (README: Several devices and workers).")

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        resolve_stage_epochs(values, path, issues)


@dataclass(frozen=True)
class MlflowSpec:
    """MLflow tracking of a run (optional extra: pip install "kerapipe[mlflow]")."""

    tracking_uri: Optional[str] = spec_field(
        None, "Where MLflow records runs (`http://host:5000`, `file:/path/mlruns`, ...). "
        "Defaults to the MLFLOW_TRACKING_URI environment variable, else an `mlruns` folder "
        "inside output.dir.")
    experiment: Optional[str] = spec_field(
        None, "MLflow experiment name. Defaults to the MLFLOW_EXPERIMENT_NAME environment "
        "variable, else the pipeline's name.")


@dataclass(frozen=True)
class OutputSpec:
    """Where results go: every run gets its own new folder."""

    dir: str = spec_field("runs", "Folder that receives one new run folder per run, "
                          "relative to the current directory.")
    predictions: Literal["argmax", "none"] = spec_field("argmax", "Write predictions.csv with "
                                                        "the argmax class of each test example.")
    top_k: int = spec_field(1, "Also list the k most probable classes per example (at most "
                            "the number of classes).", ge=1, le=MAX_TOP_K)
    tensorboard: bool = spec_field(False, "Write TensorBoard logs into the run folder's "
                                   "`tensorboard/` (`tensorboard --logdir RUN_DIR`).")
    mlflow: Optional[MlflowSpec] = spec_field(
        None, "Track the run in MLflow: params from the resolved spec, per-epoch metrics, "
        "the model and the report as artifacts (`{}` for the defaults; also on when "
        "MLFLOW_TRACKING_URI is set).")

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        check_path_text(values, "dir", path, issues)


@dataclass(frozen=True, kw_only=True)
class PipelineSpec:
    """A kerapipe pipeline file: data -> model -> loss -> optimizer, for some epochs."""

    kerapipe: Literal[1] = spec_field(doc="Format version of the file; always 1.")
    name: Optional[str] = spec_field(
        None, "Name of the run (its folder and the Keras model): printable characters "
        f"other than `/` and `\\`, at most {MAX_RUN_NAME_BYTES} bytes in UTF-8, starting with a "
        "letter or digit. Defaults to the file name without `.yaml`, made such a name.",
        json_schema={"anyOf": [{"type": "string", "pattern": RUN_NAME_PATTERN},
                               {"type": "null"}]})
    seed: Optional[int] = spec_field(42, "Seed of Python, NumPy, TensorFlow and Keras (and "
                                     "TensorFlow's deterministic ops); null draws a new one "
                                     "per run, recorded in the run's spec.yaml.", ge=0,
                                     le=MAX_SEED)
    imports: list[str] = spec_field(
        [], "Python code the pipeline needs for custom layers and losses, named "
        "`module.Name` in the file: `.py` files inside the pipeline's folder (module name: "
        "the file name) or installed module names. It runs only when the command line "
        "passes `--allow-imports` (Python: `allow_imports=True`); `validate` never runs it.")
    data: DataSpec = spec_field(doc="The data and its tf.data pipeline.")
    model: ModelSpec = spec_field(doc="The layers of the model.")
    loss: LossSpec = spec_field(LossSpec("sparse_categorical_crossentropy", {}),
                                "A keras.losses name, or `{name: ..., <kwargs>}`.")
    optimizer: OptimizerSpec = spec_field(OptimizerSpec("adam", 0.001, {}),
                                          "A keras.optimizers name, or `{name: ..., "
                                          "learning_rate: ..., <kwargs>}`.")
    metrics: list[MetricSpec] = spec_field([MetricSpec("accuracy", {})], "keras.metrics names "
                                           "(or `{name: ..., <kwargs>}`), logged every epoch.")
    train: TrainSpec = spec_field(TrainSpec(), "Epochs and early stopping.")
    output: OutputSpec = spec_field(OutputSpec(), "The run folder and predictions.")
    tune: Optional[TuneSpec] = spec_field(
        None, "A hyperparameter search for `kerapipe tune`: key paths (as `--set` writes "
        "them) with choices or ranges, an objective, a tuner and a trial budget (README: "
        "Hyperparameter search). `kerapipe run` ignores it.")

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        name = values.get("name")
        if isinstance(name, str) and not is_run_name(name):
            issues.append(Issue("bad-name", ("name",), f"a run name is one folder name inside the "
                                f"output folder: {RUN_NAME_RULE}. Rename the run, e.g. "
                                f"`mnist-cnn`. Received: name={safe_repr(name)}"))
        data, model = values.get("data"), values.get("model")
        if data is not None:
            issues.extend(feature_issues(data.features, data.crosses, data.source,
                                         getattr(model, "inputs", None), data.preprocess))
            _check_text_steps(data, issues)
            _check_label_columns(data, issues)
        _check_model_inputs(data, model, issues)
        _check_model_outputs(values.get("data"), values.get("model"), issues)


def _check_model_outputs(data: Optional[DataSpec], model: Optional[ModelSpec],
                         issues: list[Issue]) -> None:
    """A model of several outputs reads each output's labels from an npz array; the
    one_hot step (on the one label array) does not apply to it."""
    heads = getattr(model, "heads", ()) or ()
    if data is None or len(heads) < 2:
        return
    if data.source.npz is None:
        issues.append(Issue("not-applicable", ("model", "outputs"), f"a model of {len(heads)} "
                            "outputs reads each output's labels from an npz array (data.source."
                            f"npz), but data.source.{data.source.kind} gives one label. Use an "
                            "npz source, or one output.", at_key=True))
    for index, step in enumerate(data.preprocess):
        if step.kind == "one_hot":
            issues.append(Issue("not-applicable", ("data", "preprocess", index, step.kind),
                                "one_hot works on the one label array of a model of one "
                                f"output; this model has {len(heads)}. Use "
                                "sparse_categorical_crossentropy on class indices instead.",
                                at_key=True))


def _check_label_columns(data: DataSpec, issues: list[Issue]) -> None:
    """Several CSV label columns are one multi-label set: ``data.labels`` says so (the
    kind is never inferred from the data)."""
    csv = data.source.csv if data.source is not None else None
    if csv is None or not isinstance(csv.label, list):
        return
    kind = data.labels.kind if data.labels is not None else None
    if kind != "multi_label":
        issues.append(Issue("not-applicable", ("data", "source", "csv", "label"), "several "
                            "label columns (0/1, one per label) are a multi-label set: add "
                            "`labels: multi_label` to data"
                            + (f", not `{kind}`" if kind else "") + "; for one class per "
                            "example, name one label column.", at_key=True))


def _check_text_steps(data: DataSpec, issues: list[Issue]) -> None:
    """A source of strings (a text folder, a TFRecord string feature) needs a first layer
    step that takes strings (``TextVectorization``, ``StringLookup``); the compile side
    checks the same of npz arrays once read (``preprocess.check_raw_dtype``)."""
    if data.source is None or not data.source.kind or data.features is not None:
        return
    if strings_without_data(data.source) and not takes_strings(
            [step for step in data.preprocess if step is not None]):
        issues.append(Issue("not-applicable", ("data", "source", data.source.kind),
                            STRINGS_NEED_A_STEP, at_key=True))


def _check_model_inputs(data: Optional[DataSpec], model: Optional[ModelSpec],
                        issues: list[Issue]) -> None:
    """What ``model.inputs`` asks of the data: the npz source names its arrays by them
    (never also by ``x``); several inputs come from an npz file's arrays, and the
    preprocessing steps that work on a model's one input (layers, ``pad_sequences``) do
    not apply to them (label steps do)."""
    inputs = getattr(model, "inputs", None) or []
    if data is None or data.source is None or not inputs:
        return  # None: refused already
    npz = data.source.npz
    if npz is not None and npz.x is not None:
        issues.append(Issue("not-applicable", ("data", "source", "npz", "x"), "model.inputs "
                            "names the arrays that feed the model, so `x` (the one feature "
                            f"array) does not apply. Remove `x`, or name the array in "
                            f"model.inputs. Received: x={safe_repr(npz.x)}", at_key=True))
    if len(inputs) < 2:
        return
    if npz is None and data.features is None:
        issues.append(Issue("not-applicable", ("model", "inputs"), f"a model of {len(inputs)} "
                            "inputs reads one array per input from an npz file (data.source."
                            f"npz), or takes typed features (data.features), but "
                            f"data.source.{data.source.kind} gives one feature array. "
                            "Use an npz source, typed features, or one input.", at_key=True))
    if data.features is not None:
        return  # the steps are checked against the typed features (features.feature_issues)
    for index, step in enumerate(data.preprocess):
        kind = step_kind(step.kind)
        if kind is not None and kind.stage in ("layer", "load"):
            issues.append(Issue("not-applicable", ("data", "preprocess", index, step.kind),
                                f"the {step.kind} step works on a model's one input, but this "
                                f"model has {len(inputs)} ({', '.join(inputs)}); with several, "
                                "only label steps (one_hot) apply. Put the layer in "
                                "model.layers after the input it is for (e.g. `- Rescaling: "
                                f"{{scale: 0.00392}}` with `inputs: {inputs[0]}`), or "
                                "preprocess the arrays before saving them.", at_key=True))


def parse_pipeline(data: Any, issues: list[Issue]) -> PipelineSpec | None:
    """Typed ``PipelineSpec`` from loaded YAML data; problems go to ``issues``."""
    if not isinstance(data, dict):
        issues.append(Issue("wrong-type", (), "a pipeline file is a mapping that starts with "
                            f"`kerapipe: 1`. Received: {type(data).__name__}"))
        return None
    return parse(PipelineSpec, data, (), issues)
