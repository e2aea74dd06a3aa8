"""The search loop's keras-tuner side: the oracle of ``tune.tuner``, the ``Tuner`` whose
trial is a kerapipe run, and that run (validated, compiled, trained, scored)."""

from __future__ import annotations

import json
import os
import signal

from kerapipe.errors import DataError, OutputError, SpecError, TrainingError, UsageError
from kerapipe.tuning.record import Search
from kerapipe.tuning.space import search_space, trial_overrides, trial_values


def tuner_class(keras_tuner):
    """The ``Tuner`` class of ``keras_tuner`` whose trial is ``run_one_trial`` (keras-tuner
    is imported only when a search runs, so the class is made then)."""
    class PipelineTuner(keras_tuner.Tuner):
        """A keras-tuner ``Tuner`` whose trial is a kerapipe run of the file with the
        trial's values as ``--set`` overrides."""

        def __init__(self, search: Search, oracle, **kwargs) -> None:
            self.search_state = search
            super().__init__(oracle=oracle, **kwargs)

        def run_trial(self, trial, *args, **kwargs):
            return run_one_trial(self.search_state, trial, keras_tuner)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            # the trial's models are done with: free them and Keras's global state (a
            # long search otherwise keeps every trial's graphs and layer names)
            from kerapipe.compiler import backend  # noqa: F401
            import keras

            keras.backend.clear_session()

    return PipelineTuner


def run_one_trial(search: Search, trial, keras_tuner) -> dict:
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
        except Interrupted as err:  # the search's own message: the run's names the run
            stop = search_interrupted(search, trial.trial_id, err)
            raise keras_tuner.errors.FatalError(str(stop)) from stop
        except (DataError, OutputError, UsageError) as err:  # stop the search
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


def search_interrupted(search: Search, trial_id: str, err):
    """The ``Interrupted`` (same exit code) that a Ctrl-C or SIGTERM during a trial ends
    the search with: it names the search's ``--resume``, not the trial run's."""
    from kerapipe.errors import EXIT_SIGTERM, Interrupted

    signum = signal.SIGTERM if err.exit_code == EXIT_SIGTERM else signal.SIGINT
    finished = sum(1 for tid, runs in search.runs.items() if runs and tid != trial_id)
    stop = Interrupted(
        f"interrupted by {signal.Signals(signum).name} during trial {trial_id}; the "
        f"search's {finished} finished trial(s) are kept in {search.tune_dir}. Continue "
        f"the search with: kerapipe tune --resume {search.tune_dir}"
        f"{' --allow-imports' if search.spec.imports else ''}", signum)
    stop.recorded = getattr(err, "recorded", False)
    return stop


def make_oracle(keras_tuner, search: Search, max_trials: int):
    """The keras-tuner oracle of ``tune.tuner`` over the space, with the trial budget."""
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
