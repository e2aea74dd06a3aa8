"""`kerapipe tune`: a hyperparameter search over a pipeline's ``tune.space`` with
keras-tuner's oracles, each trial a normal kerapipe run.

keras-tuner decides which values to try (``RandomSearchOracle``,
``BayesianOptimizationOracle``, ``HyperbandOracle``) and keeps the search's state;
kerapipe trains: ``PipelineTuner.run_trial`` turns a trial's values into ``--set``
overrides, validates the file with them (a trial is validated before it trains),
compiles and runs it with ``compile_pipeline`` / ``CompiledPipeline.run`` into a run
folder of its own, and scores it by the objective's best epoch in the run's history.

The tune folder, ``<output.dir>/<name>-tune-<timestamp>/``::

    tune.json       the file, its --set values, the tune section, each trial's run folders
    keras_tuner/    keras-tuner's project: oracle.json and trial_*/trial.json
    trials/<id>/    the run folder(s) of trial <id> (one per execution; a retried
                    trial's interrupted run stays beside its new one)
    best.yaml       the file with the best trial's values, `tune:` removed; its relative
                    paths lead from the tune folder to the files the search read
    best-files/     copies of those a pipeline's folder must hold (imports, vocabulary
                    and TFRecord files; a TFRecord file hard-linked where it can be)
    best/           a run of best.yaml, only when no trial ran exactly it (Hyperband's
                    shorter brackets)

A finished trial is never run again: Ctrl-C stops the trial in progress (its run folder
keeps its finished epochs) and ``--resume TUNE_DIR`` reloads the oracle
(``overwrite=False``), which retries the interrupted trial and goes on.
"""

from __future__ import annotations

import filecmp
import json
import os
import posixpath
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional, Sequence

from kerapipe.errors import (DataError, KerapipeError, OutputError, SpecError, TrainingError,
                             UsageError)
from kerapipe.safe_io import write_text_atomic
from kerapipe.spec.tune import SearchDimension, TuneSpec, override_text
from kerapipe.spec.validate import ValidationResult, read_pipeline_text, validate_file

TUNE_RECORD = "tune.json"
PROJECT = "keras_tuner"
INSTALL_HINT = 'pip install "kerapipe[tune]"'
_ENCODED = "json:"  # a choice keras-tuner cannot hold (a list, a mapping, null, mixed types)


def import_keras_tuner():
    """keras_tuner, or a ``UsageError`` (exit 2) that names the extra to install."""
    try:
        import keras_tuner
    except ImportError as err:
        raise UsageError("kerapipe tune needs keras-tuner, which is not installed: "
                         f"{INSTALL_HINT}") from err
    return keras_tuner


@dataclass
class TuneResult:
    """What ``tune_pipeline`` found.

    Args:
        tune_dir: the tune folder.
        trials: one row per trial, in the order they started: ``{"trial", "status",
            "values", "objective", "runs"}``.
        best: the best trial's row.
        best_file: best.yaml.
        best_run: the run folder of best.yaml's pipeline.
        direction: ``min`` or ``max``.
    """

    tune_dir: Path
    trials: list
    best: dict
    best_file: Path
    best_run: Path
    direction: str
    objective: str
    keys: list = field(default_factory=list)


def search_space(keras_tuner, tune: TuneSpec):
    """keras-tuner ``HyperParameters`` of the space, named by their key paths."""
    hp = keras_tuner.HyperParameters()
    for key, dim in tune.space.items():
        if dim.kind == "choices":
            hp.Choice(key, list(_choice_values(dim)))
        elif dim.kind == "int":
            hp.Int(key, int(dim.low), int(dim.high), step=dim.step)
        else:
            hp.Float(key, dim.low, dim.high,
                     sampling="log" if dim.kind == "log_uniform" else "linear")
    return hp


def _choice_values(dim: SearchDimension) -> tuple:
    """The choices as keras-tuner holds them: as they are when all are numbers, all
    strings or all booleans; otherwise each as its JSON text."""
    kinds = {type(v) for v in dim.choices}
    if kinds <= {int, float} and bool not in kinds or kinds in ({str}, {bool}):
        return dim.choices
    return tuple(_ENCODED + json.dumps(v, sort_keys=True) for v in dim.choices)


def decode_value(value: Any) -> Any:
    """A trial's value as the file writes it (the inverse of ``_choice_values``)."""
    if isinstance(value, str) and value.startswith(_ENCODED):
        return json.loads(value[len(_ENCODED):])
    return value


def trial_values(trial, keys: Sequence[str]) -> dict:
    """The trial's value of each key path (keras-tuner's own ``tuner/...`` left out)."""
    values = trial.hyperparameters.values
    return {key: decode_value(values[key]) for key in keys if key in values}


def trial_overrides(values: dict) -> list[str]:
    return [override_text(key, value) for key, value in values.items()]


def objective_direction(spec, objective: str) -> str:
    """``min`` or ``max`` for ``objective`` with ``tune.direction: auto``: kerapipe's rule
    for early stopping's ``mode: auto`` (a loss goes down; a metric the way its Keras
    class says, ``_direction``)."""
    from kerapipe.pipeline import _early_stopping_mode
    from kerapipe.spec.metrics import logged_metric_name, metric_class

    mode = _early_stopping_mode(spec, objective, "auto")  # a model of several outputs
    if mode != "auto":
        return mode
    name = objective.removeprefix("val_")
    if name == "loss":
        return "min"
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import keras

    for metric in spec.metrics:
        if logged_metric_name(metric) == name:
            try:
                direction = getattr(getattr(keras.metrics, metric_class(metric))(**{
                    k: v for k, v in metric.kwargs.items() if k == "num_classes"}),
                    "_direction", None)
            except Exception:  # a metric that needs arguments
                direction = None
            if direction in ("up", "down"):
                return "max" if direction == "up" else "min"
    raise UsageError(f"cannot tell whether a lower or a higher {objective} is better. Set "
                     "tune.direction: min or max.")


class _Search:
    """The state one ``tune_pipeline`` call shares with its tuner."""

    def __init__(self, file: str, overrides: Sequence[str], allow_imports: bool,
                 tune_dir: Path, spec, echo: Callable[[str], None]) -> None:
        self.file, self.overrides, self.allow_imports = file, list(overrides), allow_imports
        self.tune_dir, self.spec, self.echo = tune_dir, spec, echo
        self.tune: TuneSpec = spec.tune
        self.keys = list(self.tune.space)
        self.runs: dict[str, list[str]] = {}
        self.reasons: dict[str, str] = {}

    def validated(self, sets: Sequence[str]) -> ValidationResult:
        return validate_file(self.file, [*self.overrides, *sets, "tune="])

    def record(self) -> None:
        write_text_atomic(self.tune_dir / TUNE_RECORD, json.dumps({
            "pipeline_file": os.path.abspath(self.file),  # --resume from any folder
            "overrides": self.overrides,
            "tune": _plain_tune(self.tune), "runs": self.runs, "failed": self.reasons},
            indent=1) + "\n")


def _plain_tune(tune: TuneSpec) -> dict:
    from kerapipe.spec.typed import to_plain

    plain = to_plain(tune)
    plain.pop("max_trials")  # a resume may raise the budget
    return plain


def _tuner_class(keras_tuner):
    class PipelineTuner(keras_tuner.Tuner):
        """A keras-tuner ``Tuner`` whose trial is a kerapipe run of the file with the
        trial's values as ``--set`` overrides."""

        def __init__(self, search: _Search, oracle, **kwargs) -> None:
            self.search_state = search
            super().__init__(oracle=oracle, **kwargs)

        def run_trial(self, trial, *args, **kwargs):
            return run_one_trial(self.search_state, trial, keras_tuner)

    return PipelineTuner


def run_one_trial(search: _Search, trial, keras_tuner) -> dict:
    """Validate, compile and run the trial (``executions_per_trial`` runs); its objective
    is the mean over them of the objective's best epoch."""
    from kerapipe.errors import Interrupted
    from kerapipe.pipeline import compile_pipeline
    from kerapipe.spec.issues import render

    values = trial_values(trial, search.keys)
    sets = trial_overrides(values)
    hyper = trial.hyperparameters.values
    if "tuner/epochs" in hyper:  # a Hyperband bracket: fewer epochs, trained from scratch
        sets.append(f"train.epochs={int(hyper['tuner/epochs'])}")
    shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in values.items())
    search.echo(f"kerapipe tune: trial {trial.trial_id}: {shown}")
    scores = []
    seed = search.spec.seed
    runs = search.runs.setdefault(trial.trial_id, [])
    for execution in range(search.tune.executions_per_trial):
        extra = [f"seed={seed + execution}"] if execution and seed is not None else []
        result = search.validated(sets + extra)
        if result.spec is None:  # values that do not validate together: this trial fails
            reason = render(result.errors, "text", 1)
            search.reasons[trial.trial_id] = reason
            search.record()
            search.echo(f"kerapipe tune: trial {trial.trial_id} does not validate:\n{reason}")
            raise keras_tuner.errors.FailedTrialError(reason)
        try:
            compiled = compile_pipeline(result, allow_imports=search.allow_imports)
            command = ["kerapipe", "run", search.file,
                       *[a for s in search.overrides + sets + extra + ["tune="]
                         for a in ("--set", s)]]
            run = compiled.run(output_dir=str(search.tune_dir / "trials" / trial.trial_id),
                               command=command, verbose=0)
        except (TrainingError, SpecError) as err:  # NaN loss, Keras refusing the values
            search.reasons[trial.trial_id] = str(err)
            search.record()
            search.echo(f"kerapipe tune: trial {trial.trial_id} failed: {err}")
            raise keras_tuner.errors.FailedTrialError(str(err)) from err
        except (Interrupted, DataError, OutputError, UsageError) as err:  # stop the search
            raise keras_tuner.errors.FatalError(str(err)) from err
        runs.append(os.path.relpath(run.run_dir, search.tune_dir))
        search.record()
        history = run.history.get(search.tune.objective)
        if not history:
            error = TrainingError(f"the run {run.run_dir} logged no {search.tune.objective}.")
            raise keras_tuner.errors.FatalError(str(error)) from error
        scores.append(min(history) if search.direction == "min" else max(history))
    score = sum(scores) / len(scores)
    search.echo(f"kerapipe tune: trial {trial.trial_id}: {search.tune.objective}={score:.6g}")
    return {search.tune.objective: score}


def _oracle(keras_tuner, search: _Search, max_trials: int):
    tune, spec = search.tune, search.spec
    objective = keras_tuner.Objective(tune.objective, search.direction)
    hp = search_space(keras_tuner, tune)
    common = dict(objective=objective, hyperparameters=hp, seed=spec.seed,
                  tune_new_entries=False, allow_new_entries=False)
    if tune.tuner == "random":
        return keras_tuner.oracles.RandomSearchOracle(max_trials=max_trials, **common)
    if tune.tuner == "bayesian":
        return keras_tuner.oracles.BayesianOptimizationOracle(max_trials=max_trials, **common)
    if spec.train.stages:
        raise UsageError("tune.tuner: hyperband sets train.epochs per bracket, which a "
                         "pipeline with train.stages cannot take. Use random or bayesian.")
    oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=spec.train.epochs, factor=3,
                                                 **common)
    oracle.max_trials = max_trials  # the trial budget holds for Hyperband too
    return oracle


def tune_pipeline(file: Optional[str] = None, overrides: Sequence[str] = (),
                  allow_imports: bool = False, resume_dir: Optional[str] = None,
                  max_trials: Optional[int] = None, output_dir: Optional[str] = None,
                  echo: Callable[[str], None] = print) -> TuneResult:
    """Search the pipeline's ``tune.space``; write best.yaml and a run of it.

    Args:
        file: the pipeline file (with ``resume_dir``: defaults to the search's own).
        overrides: ``--set`` values, applied to every trial (a resume reuses the search's).
        allow_imports: run the pipeline's ``imports:`` (as ``run --allow-imports``).
        resume_dir: a tune folder to continue: finished trials are kept, an interrupted
            one is run again.
        max_trials: the trial budget instead of ``tune.max_trials``.
        output_dir: the folder that receives the tune folder. Defaults to ``output.dir``.
        echo: where progress lines go.

    Raises:
        SpecError: the file is invalid or has no ``tune:`` section.
        UsageError: keras-tuner is missing, or ``resume_dir`` is no tune folder of this file.
        TrainingError: no trial finished.
    """
    record = _read_record(Path(resume_dir)) if resume_dir else None
    if record is not None:
        file = file or record["pipeline_file"]
        recorded = [str(o) for o in record.get("overrides") or []]
        if overrides and list(overrides) != recorded:
            raise UsageError(f"the search in {resume_dir} ran with --set "
                             f"{' --set '.join(recorded) or '(none)'}; a resume goes on with "
                             "the same values (leave --set out), or start a new search.")
        overrides = recorded
    if not file:
        raise UsageError("give a pipeline FILE (or --resume TUNE_DIR).")
    result = validate_file(file, overrides)
    if result.spec is None:
        raise SpecError(result.errors)
    if result.spec.tune is None:
        raise UsageError(f"{file} has no `tune:` section: add one that names the key paths "
                         "to search (README: Hyperparameter search).")
    spec = result.spec
    keras_tuner = import_keras_tuner()  # after the checks that need no TensorFlow
    if record is not None:
        tune_dir = Path(resume_dir)
        if record.get("tune") != _plain_tune(spec.tune):
            raise UsageError(f"{file}'s tune section is not the one the search in "
                             f"{tune_dir} ran; resume with the same section (only "
                             "max_trials may change), or start a new search.")
    else:
        from kerapipe.run_location import make_new_folder

        base = output_dir or spec.output.dir
        from kerapipe.run_location import check_run_name, refuse_inside_a_run
        check_run_name(f"{spec.name}-tune", base)
        refuse_inside_a_run(base)
        tune_dir = make_new_folder(base, f"{spec.name}-tune")
    search = _Search(file, overrides, allow_imports, tune_dir, spec, echo)
    search.direction = (spec.tune.direction if spec.tune.direction != "auto"
                        else objective_direction(spec, spec.tune.objective))
    if record is not None:
        search.runs = {str(k): list(v) for k, v in (record.get("runs") or {}).items()}
        search.reasons = dict(record.get("failed") or {})
    search.record()
    oracle = _oracle(keras_tuner, search, max_trials or spec.tune.max_trials)
    try:  # a resume reloads keras-tuner's state (overwrite=False): it may be damaged
        tuner = _tuner_class(keras_tuner)(search, oracle, directory=str(tune_dir),
                                          project_name=PROJECT, overwrite=False)
    except (ValueError, KeyError, TypeError, RuntimeError, OSError) as err:
        raise UsageError(f"cannot reload the search's state from {tune_dir / PROJECT}: "
                         f"{type(err).__name__}: {err}. It was changed or cut short (a "
                         "Ctrl-C while keras-tuner wrote it); start a new search.") from err
    try:
        tuner.search(verbose=0)
    except keras_tuner.errors.FatalError as stop:  # an error that ends the search: ours
        if isinstance(stop.__cause__, Exception):  # (keras-tuner marks any other invalid)
            raise stop.__cause__ from None
        raise
    except RuntimeError as err:
        if "consecutive failures" not in str(err):
            raise
        raise TrainingError(f"the search stopped: {oracle.max_consecutive_failed_trials} "
                            f"trials in a row failed. The last: {search.reasons.get(max(search.reasons, default=''), '')}"
                            ) from None
    return _finish(search, tuner.oracle, echo)


def _read_record(tune_dir: Path) -> dict:
    path = tune_dir / TUNE_RECORD
    if not (tune_dir / PROJECT / "oracle.json").is_file() or not path.is_file():
        raise UsageError(f"{tune_dir} is not a tune folder (it has no {TUNE_RECORD} and "
                         f"{PROJECT}/oracle.json): give the folder `kerapipe tune` made.")
    try:
        record = json.loads(read_pipeline_text(str(path)))
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read {path}: {err}") from err
    if not isinstance(record, dict) or not isinstance(record.get("pipeline_file"), str):
        raise UsageError(f"{path} is not a record kerapipe tune wrote.")
    runs = record.get("runs")
    root = os.path.realpath(tune_dir / "trials")
    if not isinstance(runs, dict) or not all(
            isinstance(folders, list) and all(
                isinstance(f, str) and os.path.commonpath(
                    [root, os.path.realpath(tune_dir / f)]) == root for f in folders)
            for folders in runs.values()):
        raise UsageError(f"{path} names run folders outside {tune_dir}/trials: it is not "
                         "the record kerapipe tune wrote. Start a new search.")
    return record


def _finish(search: _Search, oracle, echo) -> TuneResult:
    rows = []
    for trial_id in oracle.start_order:
        trial = oracle.trials[trial_id]
        score = float(trial.score) if trial.status == "COMPLETED" else None
        rows.append({"trial": trial_id, "status": trial.status.lower(),
                     "values": trial_values(trial, search.keys), "objective": score,
                     "runs": search.runs.get(trial_id, [])})
    done = [row for row in rows if row["objective"] is not None]
    if not done:
        raise TrainingError(f"no trial of the search in {search.tune_dir} finished; see the "
                            "reasons above.")
    pick = min if search.direction == "min" else max
    best = pick(done, key=lambda row: row["objective"])
    best_file = write_best_pipeline(search.file, search.overrides, best["values"],
                                    search.tune_dir, best["runs"][:1])
    best_run = _best_run(search, best)
    result = TuneResult(search.tune_dir, rows, best, best_file, best_run, search.direction,
                        search.tune.objective, search.keys)
    echo(format_trials(result))
    return result


class BestPipeline(NamedTuple):
    """best.yaml's text and the files it names in its own folder: ``{path under the tune
    folder: (the pipeline's file, whether a hard link may stand for a copy)}``."""

    text: str
    copies: dict
    placed: dict  # key path -> the path best.yaml names there


def write_best_pipeline(file: str, overrides: Sequence[str], values: dict,
                        tune_dir: Path, ran_in: Sequence[str] = ()) -> Path:
    """Write best.yaml (``best_pipeline``) and the copies it names, in best-files/. When a
    resumed search found another best, or the pipeline's files changed since, best-2.yaml
    and best-2-files/, ...: an earlier one is never overwritten, nor the same written twice.
    ``ran_in``: the best trial's run folder (under ``tune_dir``), whose copy of each
    imported file is the code the trial ran.

    Raises:
        DataError: a file best.yaml needs a copy of is no longer there.
        OutputError: the copies or best.yaml cannot be written.
    """
    for index in range(1, 1000):
        stem = "best" if index == 1 else f"best-{index}"
        path, files_dir = tune_dir / f"{stem}.yaml", tune_dir / f"{stem}-files"
        best = best_pipeline(file, overrides, values, tune_dir, files_dir.name,
                             [tune_dir / run for run in ran_in])
        if path.exists():
            if _same_text(path, best.text) and all(
                    _same_file(source, tune_dir / copy)
                    for copy, (source, _) in best.copies.items()):
                return path
            continue
        _place_copies(tune_dir, files_dir, best.copies)
        _check_placed(best, path)
        write_text_atomic(path, best.text)
        return path
    raise UsageError(f"{tune_dir} holds 999 best-*.yaml files; start a new search.")


def best_pipeline(file: str, overrides: Sequence[str], values: dict,
                  written_in: Optional[Path] = None, files_folder: str = "best-files",
                  ran_in: Sequence[Path] = ()) -> BestPipeline:
    """best.yaml: the pipeline as it validates with its ``--set`` values and the best
    ``values`` (``extends:`` merged in, ``${env:...}`` read), ``tune:`` removed, as YAML.

    With ``written_in`` (best.yaml's folder), every path the file names relative to its
    folder (``data_paths.pipeline_paths``) names the same file from there: a data path is
    rebased onto it; a path that must stay inside the pipeline's folder (``imports``,
    ``vocabulary``, TFRecord globs) names a copy in ``files_folder`` (inside
    ``written_in``) at the same relative path, as no path can lead from best.yaml's folder
    to the pipeline's. An imported file is copied from the trial's run folder
    (``ran_in``, which keeps the code it ran) when it is there; a TFRecord file may be a
    hard link (data can be large).
    """
    import yaml

    from kerapipe.spec.data_paths import data_folder, pipeline_paths

    result = validate_file(file, [*overrides, *trial_overrides(values), "tune="])
    if result.spec is None or result.document is None:  # the best trial validated: a bug
        raise SpecError(result.errors)
    data = {k: v for k, v in result.document.data.items() if k != "tune"}
    folder = data_folder(file)
    copies: dict[str, tuple[str, bool]] = {}
    placed = {}
    if written_in is not None:
        here = data_folder(str(Path(written_in) / "best.yaml"))  # links resolved, as a run's
        for key_path, value, what, inside in pipeline_paths(result.spec):
            if inside:
                new = _copied_path(folder, value, what, files_folder, copies, ran_in)
            elif os.path.isabs(os.path.expanduser(value)):
                continue
            else:
                new = os.path.relpath(os.path.join(folder, os.path.expanduser(value)), here)
            if not _set_in(data, key_path, value, new):
                raise _unplaced([key_path])
            placed[key_path] = new
    header = (f"# kerapipe tune: {os.path.basename(file)} with the best trial's values "
              f"({', '.join(f'{k}={json.dumps(v)}' for k, v in values.items())}).\n"
              + ("# Its relative paths lead from this folder to the files the search read"
                 + (f"; {files_folder}/ holds copies of those a pipeline's folder must hold "
                    "(imports, vocabulary and TFRecord files).\n" if copies else ".\n")
                 if placed else ""))
    text = header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None,
                                   allow_unicode=True)
    return BestPipeline(text, copies, placed)


def _copied_path(folder: str, value: str, what: str, files_folder: str,
                 copies: dict, ran_in: Sequence[Path] = ()) -> str:
    """The path under best.yaml's folder of the copy of ``value`` (a file, or the files a
    glob matches in ``folder``), recorded in ``copies``."""
    from kerapipe.spec.data_paths import data_glob
    from kerapipe.spec.validate import inside_folder

    relative = _inside_path(folder, value)
    if what == "glob":
        for match in sorted(data_glob(folder, value)):
            if os.path.isfile(match):  # `data/**` also matches folders: the run skips them
                copies[posixpath.join(files_folder, _inside_path(folder, match))] = (
                    os.path.realpath(match), True)
    else:
        kept = [run / os.path.normpath(value) for run in ran_in if what == "import"]
        source = (str(kept[0]) if kept and kept[0].is_file()  # RunFolder.copy_imports
                  else inside_folder(folder, value))
        if source is None or not os.path.isfile(source):
            raise DataError(f"{value}: no such file (looked for "
                            f"{os.path.join(folder, value)}). The search read it; best.yaml "
                            "needs a copy of it. Put it back and resume the search "
                            "(kerapipe tune --resume TUNE_DIR).")
        copies[posixpath.join(files_folder, relative)] = (source, False)
    return posixpath.join(files_folder, relative)


def _inside_path(folder: str, value: str) -> str:
    """``value`` (inside ``folder``: the spec checked it) as a ``/`` path from ``folder``,
    as written where it can be (a linked file keeps its name: an import's module name)."""
    path = os.path.relpath(os.path.join(folder, os.path.expanduser(value)), folder)
    if path.startswith(os.pardir) or os.path.isabs(path):  # `link/..`: only the real one
        path = os.path.relpath(os.path.realpath(os.path.join(folder, value)),
                               os.path.realpath(folder))
    return path.replace(os.sep, "/")


def _set_in(data: Any, key_path: tuple, old: str, new: str) -> bool:
    """Replace ``old`` at ``key_path`` of the loaded file, or where a shorthand on the way
    holds it (``npz: data.npz`` for ``data.source.npz.path``); whether it was there."""
    node = data
    for depth, part in enumerate(key_path):
        if isinstance(node, dict) and part in node or (
                isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)):
            if depth == len(key_path) - 1 or isinstance(node[part], str):
                if node[part] != old:
                    return False
                node[part] = new
                return True
            node = node[part]
        else:
            return False
    return False


def _check_placed(best: BestPipeline, path: Path) -> None:
    """best.yaml, validated where it goes (its copies in place), names each path where it
    was placed: a typed key that the file writes elsewhere would be left as it was."""
    from kerapipe.spec.data_paths import pipeline_paths
    from kerapipe.spec.validate import validate_text

    if not best.placed:
        return
    result = validate_text(best.text, str(path))
    if result.spec is None:
        raise SpecError(result.errors)
    found = {key_path: value for key_path, value, _, _ in pipeline_paths(result.spec)}
    wrong = [key_path for key_path, new in best.placed.items() if found.get(key_path) != new]
    if wrong:
        raise _unplaced(wrong)


def _unplaced(key_paths: list) -> KerapipeError:
    """A path best.yaml could not rebase (a kerapipe bug: the exit code is internal)."""
    where = ", ".join("".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
                      .lstrip(".") for path in key_paths)
    return KerapipeError(f"kerapipe tune cannot write best.yaml: the path at {where} would "
                         "not lead to the file the search read. Please report this; the "
                         "trials' run folders and tune.json are complete.")


def _place_copies(tune_dir: Path, files_dir: Path, copies: dict) -> None:
    """Write the copies into ``files_dir`` at once: into a new folder, then renamed (a
    folder left by a write cut short, before its best.yaml, is replaced)."""
    if not copies:
        return
    partial = tune_dir / f".{files_dir.name}.partial"
    try:
        for stale in (partial, files_dir):
            if stale.is_dir():
                shutil.rmtree(stale)
        for copy, (source, may_link) in copies.items():
            target = partial / (tune_dir / copy).relative_to(files_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            if may_link:
                try:
                    os.link(source, target)
                    continue
                except OSError:  # another file system, or links not allowed: a copy
                    pass
            shutil.copyfile(source, target)
        os.replace(partial, files_dir)
    except OSError as err:
        raise OutputError(f"cannot write the copies best.yaml names into {files_dir}: "
                          f"{err}") from err


def _same_text(path: Path, text: str) -> bool:
    try:
        return path.read_text("utf-8") == text
    except (OSError, ValueError):
        return False


def _same_file(source: str, copy: Path) -> bool:
    try:
        return copy.is_file() and (os.path.samefile(source, copy)
                                   or filecmp.cmp(source, copy, shallow=False))
    except OSError:
        return False


def _best_run(search: _Search, best: dict) -> Path:
    """The best trial's (first) run when it ran best.yaml's pipeline exactly, else a new
    run of it in ``best/``."""
    sets = trial_overrides(best["values"])
    runs = best["runs"]
    epochs_differ = search.tune.tuner == "hyperband" and runs and _run_epochs(
        search.tune_dir / runs[0]) != search.spec.train.epochs
    if runs and not epochs_differ:
        return search.tune_dir / runs[0]
    best_dir = search.tune_dir / "best"
    result = search.validated(sets)
    for record in sorted(best_dir.glob("*/run.json")) if best_dir.is_dir() else []:
        try:  # a finished run of this pipeline from an earlier end of the search
            ran = json.loads(record.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if (isinstance(ran, dict) and ran.get("status") == "finished"
                and ran.get("overrides") == list(result.overrides)):
            return record.parent
    from kerapipe.pipeline import compile_pipeline

    compiled = compile_pipeline(result, allow_imports=search.allow_imports)
    search.echo("kerapipe tune: training best.yaml's pipeline in full")
    return Path(compiled.run(output_dir=str(best_dir), verbose=0).run_dir)


def _run_epochs(run_dir: Path) -> Optional[int]:
    import yaml

    try:
        spec = yaml.safe_load((run_dir / "spec.yaml").read_text("utf-8"))
        return int(spec["train"]["epochs"])
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return None


def format_trials(result: TuneResult) -> str:
    """The table of trials (values, objective), the best marked, then where best.yaml
    and its run are."""
    headers = ["trial", "status", *result.keys, result.objective]
    lines = [headers]
    for row in result.trials:
        lines.append([row["trial"] + (" *" if row is result.best else ""), row["status"],
                      *(_short(row["values"].get(k)) for k in result.keys),
                      "" if row["objective"] is None else f"{row['objective']:.6g}"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    table = "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
                      for line in lines)
    best = result.best
    return (f"{table}\n\nbest: trial {best['trial']}, {result.objective}="
            f"{best['objective']:.6g} ({result.direction}imum)\n"
            f"  values: {', '.join(f'{k}={json.dumps(v)}' for k, v in best['values'].items())}\n"
            f"  pipeline: {result.best_file}\n  run: {result.best_run}")


def _short(value: Any) -> str:
    if value is None:
        return ""
    text = f"{value:.4g}" if isinstance(value, float) else json.dumps(value)
    return text if len(text) <= 30 else text[:27] + "..."


__all__ = ["tune_pipeline", "TuneResult", "objective_direction", "format_trials",
           "best_pipeline", "write_best_pipeline", "import_keras_tuner"]
