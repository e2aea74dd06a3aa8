"""`compile_pipeline` and `CompiledPipeline`: a pipeline file -> the real Keras objects and
the loop over them (fit, evaluate, predict, run).

Nothing is hidden: ``CompiledPipeline`` holds plain ``keras.Model`` and
``tf.data.Dataset`` objects that a user may fit, inspect or replace. Nothing is trained
or written until a method (``fit``, ``evaluate``, ``predict``, ``run``) asks for it.
This module is the API's run side: the compile side (``kerapipe.compiler.assemble``)
makes the parts, ``kerapipe.runner`` writes the run folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
import keras
import numpy as np
import tensorflow as tf

from kerapipe.compiler.assemble import assemble
from kerapipe.compiler.build import build_inference_model
from kerapipe.compiler.datasets import (array_features, input_dtype, make_dataset,
                                        optional_dataset, split_features)
from kerapipe.compiler.distribute import Distribution, peer_faults
from kerapipe.compiler.predictions import (predicted_outputs, predicted_values,
                                           probabilities_to_classes)
from kerapipe.compiler.preprocess import Preprocessing
from kerapipe.compiler.sources.loading import LoadedData
from kerapipe.errors import SpecError, UsageError
from kerapipe.spec.model import PipelineSpec
from kerapipe.spec.validate import ValidationResult, validate_source


class Datasets:
    """The batched tf.data pipelines of the three splits (``None`` when a split is empty).

    ``validation`` and ``test`` are built when first read (each costs a trace of the
    preprocessing, ~70 ms): ``fit`` reads ``validation``, the test split waits until it is
    evaluated, so a run's first training step does not wait for it. Each may be replaced
    by assignment, as ``train`` may.
    """

    def __init__(self, train: tf.data.Dataset,
                 build: Callable[[str], Optional[tf.data.Dataset]]) -> None:
        self.train = train
        self._build = build  # "validation" / "test" -> that split's dataset

    @cached_property
    def validation(self) -> Optional[tf.data.Dataset]:
        return self._build("validation")

    @cached_property
    def test(self) -> Optional[tf.data.Dataset]:
        return self._build("test")


@dataclass(frozen=True)
class StageProgress:
    """Where the stage loop starts: stage ``index`` (0-based), begun at epoch ``start``;
    ``continuing``: it is already applied and partly trained (a resumed run)."""

    index: int = 0
    start: int = 0
    continuing: bool = False


class CompiledPipeline:
    """A validated pipeline compiled into Keras objects.

    Attributes:
        spec: the typed, fully resolved ``PipelineSpec``.
        source_file: the pipeline file, or ``None`` for a string or dict.
        data: the loaded raw splits (``LoadedData``).
        preprocessing: the preprocessing layers (shared with the inference model).
        model: the trainable ``keras.Model`` (input: preprocessed examples), compiled.
        datasets: ``Datasets`` (train, validation, test) as ``tf.data.Dataset``.
        callbacks: the Keras callbacks ``fit`` uses (early stopping, ...).
        distribution: ``train.distribute``'s strategy and this worker's place
            (``kerapipe.compiler.distribute``); ``fit`` and ``evaluate`` run in its scope.
    """

    def __init__(self, spec: PipelineSpec, data: LoadedData, preprocessing: Preprocessing,
                 model: keras.Model, source_file: Optional[str] = None,
                 base_dir: Optional[Path] = None,
                 distribution: Optional[Distribution] = None) -> None:
        self.spec = spec
        self.source_file = source_file
        self.base_dir = base_dir or Path.cwd()
        self.data = data
        self.preprocessing = preprocessing
        self.model = model
        self.distribution = distribution = distribution or Distribution()

        def evaluation(split: str) -> Optional[tf.data.Dataset]:
            dataset = optional_dataset(spec, getattr(data, split), data, preprocessing)
            return None if dataset is None else distribution.shard(dataset)

        self.datasets = Datasets(distribution.shard(
            make_dataset(spec, data.train, data, preprocessing, training=True)), evaluation)
        self.callbacks: list[keras.callbacks.Callback] = _callbacks(spec, self.datasets)
        self.history: Optional[keras.callbacks.History] = None
        self.overrides: list[str] = []  # the `--set` values it was compiled with
        self.bases: list[str] = []  # the files `extends:` brought in, nearest first
        self.custom_objects: dict[str, Any] = {}  # `module.Name` -> imported class/function
        self.import_hashes: dict[str, str] = {}  # `imports:` .py entry -> sha256 (run.json)
        self.stage_progress = StageProgress()  # where `fit` starts train.stages

    def reshuffle(self, epochs_done: int) -> None:
        """Rebuild the training dataset so its shuffling continues after ``epochs_done``.

        tf.data reshuffles per iteration from the seed, so a new process would replay
        the first epoch's order; a resumed run offsets the seed by the epochs done.
        (Resumed epochs see other orders than an uninterrupted run would: close, not
        bit-identical.)
        """
        self.datasets.train = self.distribution.shard(make_dataset(
            self.spec, self.data.train, self.data, self.preprocessing, training=True,
            seed_offset=epochs_done))

    # --- the loop -------------------------------------------------------------------

    def fit(self, verbose: Union[int, str] = "auto",
            callbacks: Optional[Sequence[keras.callbacks.Callback]] = None,
            **kwargs: Any) -> keras.callbacks.History:
        """Train with ``model.fit`` on the train split for ``train.epochs`` epochs; with
        ``train.stages``, one ``model.fit`` per stage (``_fit_stages``).

        ``callbacks`` are added after the pipeline's own (``self.callbacks``: the file's
        early stopping), never instead of them. Other keyword arguments go on to
        ``model.fit``. The train split is repeated and ``fit``
        is told how many batches an epoch has, so Keras keeps one iterator for the whole
        run instead of building two per epoch; tf.data restarts the pipeline inside the
        repeat at each pass on its own threads, without waiting for Python, so an epoch's
        first step no longer waits for the shuffle buffer (bench/scale.py, streamed CSV at
        20,000 rows: 120-200 ms -> 40-60 ms, 37 -> 30 us a sample). Every epoch is still
        one whole pass, reshuffled.
        """
        if self.spec.train.stages:
            self.history = self._fit_stages(verbose, list(callbacks or ()), kwargs)
        else:
            self.history = self._fit_once(self.spec.train.epochs, verbose,
                                          [*self.callbacks, *(callbacks or ())], kwargs)
        return self.history

    def _fit_once(self, epochs: int, verbose: Union[int, str], callbacks: list,
                  kwargs: dict) -> keras.callbacks.History:
        # shuffle=False: the training dataset shuffles itself (seeded, every epoch).
        options: dict[str, Any] = dict(
            epochs=epochs, validation_data=self.datasets.validation,
            callbacks=callbacks, verbose=verbose, shuffle=False)
        train = self.datasets.train
        batches = int(train.cardinality())  # make_dataset asserts it; a replaced one may not
        # Over a repeated dataset every call into the train function takes
        # steps_per_execution batches whatever the epoch, so an epoch of 10 batches at 3
        # steps a call would take 12: such a split keeps Keras's new iterator per epoch,
        # whose end cuts the epoch's last call short. So does one whose length is unknown
        # (a replaced dataset) or a fit given its own steps_per_epoch.
        if (batches > 0 and batches % self.model.steps_per_execution == 0
                and "steps_per_epoch" not in kwargs):
            train = train.repeat()
            options["steps_per_epoch"] = batches
        options.update(kwargs)
        with self.distribution.scope(), peer_faults(self.distribution):
            return self.model.fit(train, **options)

    # --- fine-tuning stages -----------------------------------------------------------

    def _fit_stages(self, verbose: Union[int, str], callbacks: list,
                    kwargs: dict) -> keras.callbacks.History:
        """Each stage from ``stage_progress`` on: its trainable flags and a new compile
        (``compiler.stages.apply_stage``), its early stopping, one ``model.fit`` from
        the epochs done before it for its own epochs; early stopping ends a stage and the
        next one starts. One ``History`` of every epoch, with a ``stage`` column."""
        from kerapipe.compiler.stages import StageColumn

        stages = self.spec.train.stages
        progress, self.stage_progress = self.stage_progress, StageProgress()
        done = int(kwargs.pop("initial_epoch", progress.start))
        early = self._stage_early_stopping()
        merged = keras.callbacks.History()
        merged.set_model(self.model)
        merged.epoch = []
        for index in range(progress.index, len(stages)):
            continuing = progress.continuing and index == progress.index
            if not continuing:
                self.apply_stage(index)
            start = progress.start if continuing else done
            if early is not None:
                self.configure_stage_early_stopping(index, start)
            own = [c for c in self.callbacks if c is not early or early.active]
            # Keras's progress bar, given first, prints each epoch's logs before the
            # stage column joins them: the stage number is no metric ("stage: 2.0000").
            bar = [keras.callbacks.ProgbarLogger()] if verbose != 0 else []
            history = self._fit_once(start + stages[index].epochs, verbose,
                                     [*bar, StageColumn(index + 1), *own, *callbacks],
                                     {**kwargs, "initial_epoch": done})
            for key, values in history.history.items():
                merged.history.setdefault(key, []).extend(values)
            merged.epoch += history.epoch
            merged.params = history.params
            done += len(history.epoch)
        return merged

    def apply_stage(self, index: int) -> None:
        """Stage ``index`` (0-based) on ``model``: its layers trainable or frozen, the
        model compiled again with its optimizer (``kerapipe.compiler.stages``)."""
        from kerapipe.compiler.stages import apply_stage

        apply_stage(self.model, self.spec, self.data, index)

    def _stage_early_stopping(self):
        from kerapipe.compiler.stages import StageEarlyStopping

        return next((c for c in self.callbacks if isinstance(c, StageEarlyStopping)), None)

    def configure_stage_early_stopping(self, index: int, start: int) -> None:
        """The run's early stopping set up for stage ``index``, which starts at epoch
        ``start`` (inactive in a stage without)."""
        from kerapipe.spec.stages import stage_early_stopping

        early = self._stage_early_stopping()
        if early is not None:
            settings = stage_early_stopping(self.spec.train, self.spec.train.stages[index])
            early.configure(None if settings is None else _early_stopping_arguments(
                self.spec, settings), start)

    def resume_stages(self, state: dict) -> None:
        """Before a resumed run restores its checkpoint: the checkpoint's stage applied
        (its flags and optimizer, so that the optimizer state fits), and
        ``stage_progress`` set to continue it, or to start the next one when it had run
        its epochs or early stopping had ended it."""
        from kerapipe.callbacks import stopped_early

        column = list((state.get("history") or {}).get("stage") or [])
        done = int(state.get("epochs_done", 0))
        if not column or len(column) != done:
            self.stage_progress = StageProgress(0, done, False)
            return
        index = int(column[-1]) - 1
        start = column.index(column[-1])
        self.apply_stage(index)
        self.configure_stage_early_stopping(index, start)
        if (stopped_early(state, self._stage_early_stopping())
                or done - start >= self.spec.train.stages[index].epochs):
            self.stage_progress = StageProgress(index + 1, done, False)
        else:
            self.stage_progress = StageProgress(index, start, True)

    def stage_trainable_counts(self) -> list[int]:
        """The parameters each stage trains (``plan``)."""
        from kerapipe.compiler.stages import trainable_count

        return [trainable_count(self.model, self.spec, stage)
                for stage in self.spec.train.stages]

    def evaluate(self, verbose: Union[int, str] = 0) -> dict[str, float]:
        """Loss and metrics on the test split (``{"loss": ..., "accuracy": ...}``)."""
        if self.datasets.test is None:
            return {}
        with self.distribution.scope(), peer_faults(self.distribution):
            logs = self.model.evaluate(self.datasets.test, verbose=verbose, return_dict=True)
        return {k: float(np.reshape(v, -1)[0]) for k, v in logs.items()}

    def predict_proba(self, x: Optional[np.ndarray] = None) -> np.ndarray:
        """Class probabilities for raw inputs ``x`` (default: the test split's inputs);
        for a regression pipeline, the predicted values (shape ``(n, units)``); for a
        model of several outputs, a dict of each output's, by name.

        ``x`` is an array of raw examples as the data holds them (uint8 images, CSV
        feature rows, padded token ids); for image folders, decoded images; for a model
        of several inputs, a dict of one array per input, by name.
        """
        batch = max(self.spec.data.batch_size, 256)
        if x is not None:
            features = array_features(x, self.spec, batch)
        elif self.data.test is not None:
            features = split_features(self.data.test, self.data, self.spec, batch)
        else:
            raise UsageError("this pipeline has no test split (data.split.test is 0); "
                             "pass the inputs to predict.")
        return self.inference_model.predict(features, verbose=0)

    def predict(self, x: Optional[np.ndarray] = None) -> np.ndarray:
        """Predictions for raw inputs ``x`` (default: the test split's inputs): the class
        index of each example (``kerapipe.compiler.predictions``' rule: the most probable
        class; one sigmoid unit predicts 1 when its probability is above 0.5), or for a
        regression pipeline the predicted values (shape ``(n,)`` for one output unit,
        else ``(n, units)``); for several outputs, a dict of each one's, by name."""
        outputs = self.predict_proba(x)
        if self.data.outputs is not None:  # several outputs: each one's, by name
            return {name: predicted_values(outputs[name]) if facts.num_classes is None
                    else probabilities_to_classes(outputs[name])
                    for name, facts in self.data.outputs.items()}
        labels = self.data.labels
        if labels is not None and not labels.inferred:  # multi-hot sets, raw arrays, ...
            return predicted_outputs(outputs, labels.kind, labels.threshold or 0.5)
        if self.data.num_classes is None:
            return predicted_values(outputs)
        return probabilities_to_classes(outputs)

    def run(self, output_dir: Optional[str] = None, command: Optional[Sequence[str]] = None,
            verbose: Union[int, str] = "auto", resume_dir: Optional[str] = None,
            callbacks: Optional[Sequence[keras.callbacks.Callback]] = None):
        """Fit, evaluate, predict and write a new run folder (or continue ``resume_dir``).

        ``callbacks`` are added to the pipeline's own (early stopping) and to the run's
        (checkpoints, signals, the non-finite loss guard), never instead of them.

        Returns a ``RunResult``.
        """
        from kerapipe.runner import run_pipeline

        return run_pipeline(self, output_dir=output_dir, command=command, verbose=verbose,
                            resume_dir=resume_dir, callbacks=list(callbacks or ()))

    # --- the exported model -----------------------------------------------------------

    @cached_property
    def inference_model(self) -> keras.Model:
        """Raw input -> preprocessing layers -> trained model -> class probabilities.

        Shares its layers with ``model``, so it always reflects the current weights; it is
        what ``model.keras`` in a run folder holds.
        """
        classes: Any = self.data.num_classes is not None
        if self.data.outputs is not None:  # several outputs: whether each predicts classes
            classes = {name: facts.num_classes is not None
                       for name, facts in self.data.outputs.items()}
        return build_inference_model(self.spec, self.model, self.preprocessing.layers,
                                     self.data.example_shape, input_dtype(self.spec),
                                     classes=classes, encoding=self.preprocessing.encoding)


def _callbacks(spec: PipelineSpec, datasets: Datasets) -> list:
    """The pipeline's callbacks: the learning-rate logger first (it logs the rate an epoch
    trained with, before ReduceLROnPlateau lowers it), early stopping, then the file's
    ``train.callbacks`` that write no files (a run adds the others inside its folder:
    ``keras_callbacks.file_callbacks``)."""
    from kerapipe.compiler.keras_callbacks import LearningRateLogger, pipeline_callbacks

    callbacks: list = [LearningRateLogger(), *_early_stopping_callbacks(spec, datasets)]
    for callback in pipeline_callbacks(spec):
        if getattr(callback, "monitor", None) is not None:  # ReduceLROnPlateau: as early's
            callback.mode = _early_stopping_mode(spec, callback.monitor, callback.mode)
        callbacks.append(callback)
    return callbacks


def _early_stopping_callbacks(spec: PipelineSpec, datasets: Datasets) -> list:
    if spec.train.stages:  # one EarlyStopping, set up for each stage by the stage loop
        from kerapipe.compiler.stages import StageEarlyStopping
        from kerapipe.spec.stages import stage_early_stopping

        settings = [stage_early_stopping(spec.train, s) for s in spec.train.stages]
        if all(each is None for each in settings):
            return []
        return [StageEarlyStopping(None if settings[0] is None else
                                   _early_stopping_arguments(spec, settings[0]))]
    early = spec.train.early_stopping
    if early is None:
        return []
    return [keras.callbacks.EarlyStopping(**_early_stopping_arguments(spec, early))]


def _early_stopping_arguments(spec: PipelineSpec, early: Any) -> dict:
    """Keras's EarlyStopping arguments of an ``EarlyStoppingSpec``."""
    return dict(monitor=early.monitor, patience=early.patience, min_delta=early.min_delta,
                mode=_early_stopping_mode(spec, early.monitor, early.mode),
                restore_best_weights=early.restore_best_weights,
                start_from_epoch=early.start_from_epoch)


def _early_stopping_mode(spec: PipelineSpec, monitor: str, mode: str) -> str:
    """``mode: auto`` for a model of several outputs, resolved here: Keras's own guess
    looks the name up unprefixed, so it knows neither ``digit_loss`` nor ``size_mae``.
    An output's loss is minimised; a metric goes the way its Keras class says."""
    from kerapipe.spec.metrics import logged_metric_name, metric_class, output_heads

    heads = output_heads(spec)
    if mode != "auto" or not heads:
        return mode
    name = monitor.removeprefix("val_")
    if name == "loss" or any(name == f"{head.name}_loss" for head in heads):
        return "min"
    for head in heads:
        for metric in head.metrics:
            if name == f"{head.name}_{logged_metric_name(metric)}":
                try:
                    direction = getattr(getattr(keras.metrics, metric_class(metric))(),
                                        "_direction", None)
                except Exception:  # a metric that needs arguments: Keras's guess decides
                    direction = None
                if direction in ("up", "down"):
                    return "max" if direction == "up" else "min"
    return mode


def compile_pipeline(source: Union[str, os.PathLike, dict, ValidationResult],
                     overrides: Optional[Sequence[str]] = None,
                     allow_imports: bool = False, distribute: bool = True) -> CompiledPipeline:
    """Compile a pipeline into Keras objects without training or writing anything.

    Args:
        source: a pipeline file path, YAML text, or a dict of the same structure; or the
            ``ValidationResult`` of one (``validate_file``), which is compiled as it is,
            not validated again (a command validates once).
        overrides: ``KEY.PATH=VALUE`` strings, as ``--set`` on the command line.
            Defaults to none (with a ``ValidationResult``: the ones it was validated with;
            giving others is a ``UsageError``).
        allow_imports: run the Python files and modules of the pipeline's ``imports:``
            (custom layers and losses). Off by default: a pipeline that imports code is
            refused (``SpecError``, code ``imports-not-allowed``) unless the caller allows it.
        distribute: train under ``train.distribute`` (for ``multi_worker``: join the
            cluster ``TF_CONFIG`` lists, before any other TensorFlow work in the process).
            ``False`` compiles it as one process, to inspect it (``kerapipe plan`` does).

    Returns:
        A ``CompiledPipeline`` with ``.spec``, ``.model``, ``.datasets``, ``.callbacks``.

    Raises:
        SpecError: the pipeline is invalid (every issue is listed), or Keras refuses a
            layer (reported at that layer's line).
        DataError: the data is missing, unreadable or invalid.
    """
    if isinstance(source, ValidationResult):
        if overrides and tuple(overrides) != source.overrides:
            raise UsageError("compile_pipeline: a ValidationResult is compiled with the "
                             "overrides it was validated with; validate again with the new ones.")
        result = source
    else:
        result, _ = validate_source(source, overrides or ())
    if result.spec is None:
        raise SpecError(result.errors)
    parts = assemble(result, allow_imports, distribute)
    compiled = CompiledPipeline(parts.spec, parts.data, parts.preprocessing, parts.model,
                                source_file=parts.source_file, base_dir=parts.base_dir,
                                distribution=parts.distribution)
    compiled.overrides = parts.overrides
    compiled.bases = [os.path.abspath(base) for base in result.bases]
    compiled.custom_objects = parts.custom_objects
    compiled.import_hashes = parts.import_hashes
    return compiled
