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

The package: ``space`` is the search space and the objective's direction, ``trials`` the
oracle, the tuner and a trial's run, ``record`` the state written to tune.json (read back
by ``--resume``), ``best`` writes best.yaml and its copies, ``result`` is what is
reported; ``tune_pipeline`` here puts them in order and picks (or trains) best.yaml's run.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from kerapipe.errors import SpecError, TrainingError, UsageError
from kerapipe.spec.validate import validate_file
from kerapipe.tuning.best import BestPipeline, best_pipeline, write_best_pipeline
from kerapipe.tuning.record import PROJECT, TUNE_RECORD, Search, plain_tune, read_record
from kerapipe.tuning.result import TuneResult, format_trials
from kerapipe.tuning.space import (decode_value, objective_direction, search_space,
                                   trial_overrides, trial_values)
from kerapipe.tuning.trials import make_oracle, run_one_trial, tuner_class

INSTALL_HINT = 'pip install "kerapipe[tune]"'


def import_keras_tuner():
    """keras_tuner, or a ``UsageError`` (exit 2) that names the extra to install."""
    from kerapipe.compiler import backend  # noqa: F401  (TensorFlow's start-up log silenced)

    try:  # keras_tuner imports TensorFlow: after backend, or its C++ log reaches stderr
        import keras_tuner
    except ImportError as err:
        raise UsageError("kerapipe tune needs keras-tuner, which is not installed: "
                         f"{INSTALL_HINT}") from err
    return keras_tuner


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
        max_trials: the trial budget instead of ``tune.max_trials`` (a resume: instead of
            the search's own budget, recorded in tune.json).
        output_dir: the folder that receives the tune folder. Defaults to ``output.dir``.
        echo: where progress lines go.

    Raises:
        SpecError: the file is invalid or has no ``tune:`` section.
        UsageError: keras-tuner is missing, or ``resume_dir`` is no tune folder of this file.
        TrainingError: no trial finished.
    """
    record = read_record(Path(resume_dir)) if resume_dir else None
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
        if record.get("tune") != plain_tune(spec.tune):
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
    search = Search(file, overrides, allow_imports, tune_dir, spec, echo)
    search.direction = (spec.tune.direction if spec.tune.direction != "auto"
                        else objective_direction(spec, spec.tune.objective))
    if record is not None:
        search.runs = {str(k): list(v) for k, v in (record.get("runs") or {}).items()}
        search.reasons = dict(record.get("failed") or {})
    # the budget: --max-trials, else the one the search started with, else the file's
    # (a tune.json written before it recorded its budget)
    search.max_trials = (max_trials or (record or {}).get("max_trials")
                         or spec.tune.max_trials)
    search.record()
    oracle = make_oracle(keras_tuner, search, search.max_trials)
    try:  # a resume reloads keras-tuner's state (overwrite=False): it may be damaged
        with contextlib.redirect_stdout(io.StringIO()):  # its "Reloading Tuner from ..."
            tuner = tuner_class(keras_tuner)(search, oracle, directory=str(tune_dir),
                                              project_name=PROJECT, overwrite=False)
    except (ValueError, KeyError, TypeError, RuntimeError, OSError) as err:
        raise UsageError(f"cannot reload the search's state from {tune_dir / PROJECT}: "
                         f"{type(err).__name__}: {err}. It was changed or cut short (a "
                         "Ctrl-C while keras-tuner wrote it); start a new search.") from err
    try:  # stdout holds kerapipe's table only: whatever the search prints goes to stderr
        with contextlib.redirect_stdout(sys.stderr), without_retracing_warning():
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
    with without_retracing_warning():  # best.yaml's run in full: one model more
        return _finish(search, tuner.oracle, echo)


RETRACING = "triggered tf.function retracing"


class _NoRetracingWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return RETRACING not in record.getMessage()


@contextlib.contextmanager
def without_retracing_warning():
    """TensorFlow's "N out of the last N calls to ...make_predict_function... triggered
    tf.function retracing" warning dropped: it counts the tracings of one function's code
    in the whole process, and every trial is a new model whose functions are traced once
    (its advice, define the function outside the loop, does not apply)."""
    logger = logging.getLogger("tensorflow")
    quiet = _NoRetracingWarning()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def _finish(search: Search, oracle, echo) -> TuneResult:
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


def _best_run(search: Search, best: dict) -> Path:
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


__all__ = ["tune_pipeline", "TuneResult", "objective_direction", "format_trials",
           "best_pipeline", "write_best_pipeline", "import_keras_tuner"]

# The other public names of the single module this package was, still importable from here.
_MODULE_NAMES = (TUNE_RECORD, BestPipeline, decode_value, search_space, run_one_trial)
