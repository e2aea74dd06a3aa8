"""`kerapipe run` left alone: real child processes, real signals, real kills.

Every scenario drives ``python -m kerapipe run ...`` as child processes (output in
files) on a tiny pipeline: the bundled MNIST sample (4000 train / 500 validation / 500
test), Flatten + Dense(10), ``batch_size: 200`` (20 steps per epoch), ``seed: 7``.

Each child pays a TensorFlow import (about 8 CPU-seconds), so the scenarios the selected
tests need are all started at once when the module starts (each in a thread that runs
its processes in order, snapshotting the run folder where a later step changes it); the
tests then wait for their scenario and check what it left. Commands that are refused
before any training (resuming a finished run or a changed pipeline, bad data) run
in-process through ``kerapipe.cli.main`` instead, with the same exit-code mapping.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # child processes and real signals

STEPS_PER_EPOCH = 4000 // 200
EPOCHS = 25
REFERENCE_EPOCHS = 6  # > the epochs a run finishes before its SIGINT lands

PIPELINE = textwrap.dedent("""\
    kerapipe: 1
    name: rel
    seed: 7
    data:
      source: {sample: mnist}
      preprocess: [rescale: 1/255]
      batch_size: 200
    model:
      layers: [Flatten, {Dense: {units: 10}}]
    train:
      epochs: 3
    output:
      dir: out
    """)

# Early stopping that triggers after about a dozen epochs. `shuffle: 0` keeps the batch
# order independent of how many epochs a process has run, so a resumed run can be
# compared value for value with an uninterrupted one (the shuffled case is the xfail
# test below).
ES_EPOCHS = 40
EARLY_STOPPING_PIPELINE = PIPELINE.replace(
    "  batch_size: 200\n", "  batch_size: 200\n  shuffle: 0\n").replace(
    "train:\n  epochs: 3\n",
    "optimizer: {name: adam, learning_rate: 0.01}\n"
    f"train:\n  epochs: {ES_EPOCHS}\n  early_stopping: {{monitor: val_loss, patience: 2}}\n")

# Trains normally for two epochs (lr 0.01, then 1e18: huge but finite), then the
# staircase schedule jumps to 1e38 in epoch 3 and the loss overflows within two batches.
NAN_PIPELINE = PIPELINE.replace(
    "train:\n",
    "optimizer:\n  name: sgd\n  learning_rate:\n    ExponentialDecay: {initial_learning_rate: "
    "0.01, decay_steps: 20, decay_rate: 1.0e+20, staircase: true}\ntrain:\n").replace(
    "epochs: 3", "epochs: 10")


# --- child processes and scenarios ------------------------------------------------------

_CHILDREN: list["Child"] = []
_CLOSING = threading.Event()


class Child:
    """One ``python -m kerapipe run ARGS...`` child process; stdout/stderr go to files."""

    def __init__(self, cwd: Path, *args: str, tag: str) -> None:
        if _CLOSING.is_set():
            raise RuntimeError("the module is tearing down")
        self.cwd = Path(cwd)
        self.args = args
        self._out = self.cwd / f"{tag}.stdout"
        self._err = self.cwd / f"{tag}.stderr"
        env = {k: v for k, v in os.environ.items() if k != "KERAPIPE_DEBUG"}
        with open(self._out, "wb") as out, open(self._err, "wb") as err:
            self.popen = subprocess.Popen([sys.executable, "-m", "kerapipe", "run", *args],
                                          cwd=self.cwd, stdout=out, stderr=err, env=env)
        _CHILDREN.append(self)

    @property
    def returncode(self) -> Optional[int]:
        return self.popen.returncode

    @property
    def stdout(self) -> str:
        return self._out.read_text("utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self._err.read_text("utf-8", errors="replace")

    def wait(self, timeout: float = 300) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            pytest.fail(f"`kerapipe run {' '.join(self.args)}` ran past {timeout} s.\n"
                        f"stderr:\n{self.stderr[-3000:]}")

    def describe(self) -> str:
        return (f"`kerapipe run {' '.join(self.args)}` exited {self.popen.returncode}\n"
                f"stdout:\n{self.stdout[-2000:]}\nstderr:\n{self.stderr[-4000:]}")


def kerapipe_run(cwd: Path, *args: str, tag: str) -> Child:
    child = Child(cwd, *args, tag=tag)
    child.wait()
    return child


class Scenario:
    """``body(self)`` running in a thread from creation on; ``result()`` waits for it.

    ``body`` may publish an intermediate result in ``shared`` and set ``ready`` for
    another scenario that needs it before this one ends.
    """

    def __init__(self, body: Callable[["Scenario"], Any]) -> None:
        self.shared: dict = {}
        self.ready = threading.Event()
        self._value: Any = None
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, args=(body,), daemon=True)
        self._thread.start()

    def _run(self, body: Callable[["Scenario"], Any]) -> None:
        try:
            self._value = body(self)
        except BaseException as err:  # noqa: BLE001 - re-raised in the test by result()
            self._error = err

    def result(self, timeout: float = 600) -> Any:
        self._thread.join(timeout)
        if self._thread.is_alive():
            pytest.fail(f"scenario still running after {timeout} s")
        if self._error is not None:
            raise self._error
        return self._value


SCENARIOS = ("sigint_scenario", "sigkill_scenario", "sigterm_scenario", "changed_scenario",
             "nan_scenario")


@pytest.fixture(scope="module", autouse=True)
def _start_needed_scenarios_at_once(request):
    """Start every scenario a selected test of this module uses, then clean up."""
    wanted = {name for item in request.session.items if item.module is request.module
              for name in item.fixturenames}
    for name in SCENARIOS:
        if name in wanted:
            request.getfixturevalue(name)
    yield
    _CLOSING.set()
    for child in _CHILDREN:
        if child.popen.poll() is None:
            child.popen.kill()
            child.popen.wait()


# --- helpers ----------------------------------------------------------------------------

def write_pipeline(folder: Path, text: str, name: str = "pipe.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def wait_for_first_checkpoint(child: Child, output_dir: Path, timeout: float = 300) -> Path:
    """The single run folder under ``output_dir``, once ``checkpoints/LATEST`` exists.

    A hang detector, not a speed test: on 2 loaded cores (the suite's other workers, each
    importing TensorFlow) the child took over 120 s to reach its first checkpoint."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [p for p in output_dir.glob("*") if p.is_dir()] if output_dir.is_dir() else []
        assert len(runs) <= 1, f"more than one run folder: {runs}"
        if runs and (runs[0] / "checkpoints" / "LATEST").exists():
            return runs[0]
        if child.popen.poll() is not None:
            pytest.fail(f"the run ended before its first checkpoint.\n{child.describe()}")
        time.sleep(0.02)
    pytest.fail(f"no checkpoints/LATEST under {output_dir} after {timeout} s.\n"
                f"stderr:\n{child.stderr[-3000:]}")


def snapshot(run_dir: Path, where: Path) -> Path:
    """A copy of a run folder as it is now (a later step of the scenario changes it)."""
    copy = where / run_dir.name
    shutil.copytree(run_dir, copy)
    return copy


def read_history(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def epoch_column(run_dir: Path) -> list[int]:
    return [int(row["epoch"]) for row in read_history(run_dir)]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text("utf-8"))


def latest_folder(run_dir: Path) -> Path:
    from kerapipe.run_folder import RunFolder

    folder = RunFolder(run_dir).latest_checkpoint()
    assert folder is not None, f"no complete checkpoint in {run_dir}"
    return folder


def load_keras(path: Path):
    from kerapipe.compiler import backend  # noqa: F401 - imports TensorFlow without its start-up log
    import keras

    # a checkpoint's last.keras is compiled with kerapipe's metric adapter: its class is
    # registered when this module is imported (by whatever test ran before, unless this
    # one runs alone or first in its pytest-xdist worker)
    import kerapipe.compiler.metrics  # noqa: F401

    return keras.saving.load_model(path, safe_mode=True)


def all_finite(model) -> bool:
    return all(np.isfinite(w).all() for w in model.get_weights())


def optimizer_steps(run_dir: Path) -> int:
    """Optimizer steps recorded in the newest checkpoint (``optimizer.iterations``)."""
    return int(load_keras(latest_folder(run_dir) / "last.keras").optimizer.iterations)


def assert_clean_exit(child: Child, code: int) -> None:
    assert child.returncode == code, child.describe()
    assert "Traceback" not in child.stderr, child.describe()


def folder_bytes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*")
            if p.is_file()}


def assert_interrupted_run_keeps_finished_epochs(run_dir: Path, signame: str,
                                                 planned: int) -> int:
    """The guarantees of a run stopped by a signal; returns the epochs it finished."""
    state = read_json(latest_folder(run_dir) / "state.json")
    done = state["epochs_done"]
    assert 1 <= done < planned, state
    assert epoch_column(run_dir) == list(range(1, done + 1))
    assert state["history"]["loss"] == [float(r["loss"]) for r in read_history(run_dir)]
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["stopped"].startswith(f"interrupted by {signame}"), metrics
    assert metrics["epochs_run"] == done and metrics["epochs_planned"] == planned, metrics
    assert read_json(run_dir / "run.json")["status"] == "interrupted"
    assert optimizer_steps(run_dir) == done * STEPS_PER_EPOCH  # no partial epoch trained
    return done


# --- SIGINT, then --resume --------------------------------------------------------------

@pytest.fixture(scope="module")
def sigint_scenario(tmp_path_factory) -> Scenario:
    """A 25-epoch run stopped by SIGINT after its first checkpoint, then resumed.

    Alongside, the same run uninterrupted for its first REFERENCE_EPOCHS epochs
    (``reference``): the batches of those epochs do not depend on the planned count.
    """
    base = tmp_path_factory.mktemp("sigint")
    write_pipeline(base, PIPELINE)
    epochs = f"train.epochs={EPOCHS}"

    def body(scenario: Scenario) -> dict:
        try:
            first = Child(base, "pipe.yaml", "--set", epochs, tag="first")
            reference = Child(base, "pipe.yaml", "--set", f"train.epochs={REFERENCE_EPOCHS}",
                              "--output", "reference", tag="reference")
            run_dir = wait_for_first_checkpoint(first, base / "out")
            first.popen.send_signal(signal.SIGINT)
            first.wait(120)
            out = {"base": base, "first": first, "run_dir": run_dir, "reference": reference,
                   "at_interrupt": snapshot(run_dir, base / "at-interrupt")}
            scenario.shared.update(out)
        finally:
            scenario.ready.set()  # the changed-pipeline scenario waits for the snapshot
        if first.returncode == 130:
            out["resume"] = kerapipe_run(base, "--resume", str(run_dir), tag="resume")
        reference.wait()
        return out

    return Scenario(body)


def test_sigint_stops_at_a_step_boundary_and_keeps_only_finished_epochs(sigint_scenario):
    run = sigint_scenario.result()
    assert_clean_exit(run["first"], 130)
    assert "interrupted by SIGINT" in run["first"].stderr
    hint = f"kerapipe run --resume {run['run_dir'].relative_to(run['base'])}"
    assert hint in run["first"].stderr
    assert_interrupted_run_keeps_finished_epochs(run["at_interrupt"], "SIGINT", EPOCHS)


def test_resume_after_sigint_finishes_the_planned_epochs_training_every_batch_once(
        sigint_scenario):
    run = sigint_scenario.result()
    assert "resume" in run, run["first"].describe()
    assert_clean_exit(run["resume"], 0)
    run_dir = run["run_dir"]
    assert epoch_column(run_dir) == list(range(1, EPOCHS + 1))  # no epoch twice or missing
    assert read_json(run_dir / "run.json")["status"] == "finished"
    metrics = read_json(run_dir / "metrics.json")
    assert "stopped" not in metrics and metrics["epochs_run"] == EPOCHS
    # Every batch of every epoch trained exactly once across the two processes.
    assert optimizer_steps(run_dir) == EPOCHS * STEPS_PER_EPOCH
    assert all_finite(load_keras(run_dir / "model.keras"))


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "LIMITATION (README, Reliability): tf.data reshuffles per iteration from the seed and "
    "a new process cannot continue that sequence; a resumed run reseeds with seed + epochs "
    "done, so its later epochs see other orders than the uninterrupted run: close results, "
    "not bit-identical (with shuffle: 0 they are identical, see "
    "test_early_stopping_state_survives_a_resume)."))
def test_a_resumed_run_reproduces_the_uninterrupted_run_with_shuffling(sigint_scenario):
    run = sigint_scenario.result()
    # Preconditions fail the test for real (pytest.fail), not as the expected failure.
    for child in (run.get("resume"), run["reference"]):
        if child is None or child.returncode != 0:
            pytest.fail(f"a run of this scenario failed: {(child or run['first']).describe()}")
    done = len(read_history(run["at_interrupt"]))
    (reference_dir,) = (run["base"] / "reference").iterdir()
    reference = read_history(reference_dir)
    resumed = read_history(run["run_dir"])[:REFERENCE_EPOCHS]
    if done >= REFERENCE_EPOCHS or resumed[:done] != reference[:done]:
        pytest.fail(f"the first {done} epochs differ, or are not fewer than "
                    f"{REFERENCE_EPOCHS}: no deterministic reference to compare with")
    assert resumed == reference  # differs from epoch done + 1 on


def test_resuming_a_finished_run_is_refused_with_exit_2(sigint_scenario, call_main):
    run = sigint_scenario.result()
    assert "resume" in run, run["first"].describe()
    assert_clean_exit(run["resume"], 0)
    run_dir = run["run_dir"]
    before = folder_bytes(run_dir)
    code, _, err = call_main("run", "--resume", run_dir)
    assert code == 2, err
    assert "finished already; there is nothing to resume" in err
    assert folder_bytes(run_dir) == before


# --- SIGTERM and early stopping ---------------------------------------------------------

@pytest.fixture(scope="module")
def sigterm_scenario(tmp_path_factory) -> Scenario:
    """An early-stopping run stopped by SIGTERM, then resumed; the same run uninterrupted
    (``reference``) alongside."""
    base = tmp_path_factory.mktemp("sigterm")
    write_pipeline(base, EARLY_STOPPING_PIPELINE)

    def body(scenario: Scenario) -> dict:
        first = Child(base, "pipe.yaml", tag="first")
        reference = Child(base, "pipe.yaml", "--output", "reference", tag="reference")
        run_dir = wait_for_first_checkpoint(first, base / "out")
        first.popen.send_signal(signal.SIGTERM)
        first.wait(120)
        out = {"base": base, "first": first, "run_dir": run_dir, "reference": reference,
               "at_interrupt": snapshot(run_dir, base / "at-interrupt")}
        if first.returncode == 143:
            out["resume"] = kerapipe_run(base, "--resume", str(run_dir), tag="resume")
        reference.wait()
        return out

    return Scenario(body)


def test_sigterm_exits_143_keeping_finished_epochs_and_early_stopping_state(
        sigterm_scenario):
    run = sigterm_scenario.result()
    assert_clean_exit(run["first"], 143)
    assert "interrupted by SIGTERM" in run["first"].stderr
    assert "kerapipe run --resume" in run["first"].stderr
    run_dir = run["at_interrupt"]
    done = assert_interrupted_run_keeps_finished_epochs(run_dir, "SIGTERM", ES_EPOCHS)
    # The early-stopping counters agree with the history they were computed from.
    state = read_json(latest_folder(run_dir) / "state.json")
    val_loss = [float(row["val_loss"]) for row in read_history(run_dir)]
    best = int(np.argmin(val_loss))
    assert state["early_stopping"] == {"wait": done - 1 - best, "best_epoch": best,
                                       "best": val_loss[best]}
    assert (latest_folder(run_dir) / "best.weights.h5").exists()


def test_early_stopping_state_survives_a_resume(sigterm_scenario):
    """Resumed after SIGTERM, the run stops where (and as) the uninterrupted run stops."""
    run = sigterm_scenario.result()
    assert "resume" in run, run["first"].describe()
    assert_clean_exit(run["resume"], 0)
    assert_clean_exit(run["reference"], 0)
    (reference_dir,) = (run["base"] / "reference").iterdir()
    expected = read_history(reference_dir)
    assert len(expected) < ES_EPOCHS, "the reference run did not stop early"
    run_dir = run["run_dir"]
    assert read_history(run_dir) == expected  # same epochs, same values, same stop
    assert read_json(latest_folder(run_dir) / "state.json") == \
        read_json(latest_folder(reference_dir) / "state.json")
    # restore_best_weights: the final model is the best epoch's, as without the interruption.
    assert read_json(run_dir / "metrics.json")["test"] == \
        read_json(reference_dir / "metrics.json")["test"]


# --- resuming with a changed pipeline ---------------------------------------------------

CHANGED_LEARNING_RATE = 1e-4  # the file's default (adam) is 1e-3
CHANGED_PIPELINE = PIPELINE.replace("batch_size: 200", "batch_size: 400").replace(
    "train:\n", f"optimizer: {{name: adam, learning_rate: {CHANGED_LEARNING_RATE}}}\ntrain:\n")


@pytest.fixture(scope="module")
def changed_scenario(tmp_path_factory, sigint_scenario) -> Scenario:
    """A copy of the SIGINT-interrupted run, resumed --force with batch_size 400 and
    learning_rate 1e-4 instead of 200 and 1e-3."""
    base = tmp_path_factory.mktemp("changed")
    write_pipeline(base, CHANGED_PIPELINE, "changed.yaml")

    def body(scenario: Scenario) -> dict:
        sigint_scenario.ready.wait(600)
        if "at_interrupt" not in sigint_scenario.shared:
            pytest.fail("the SIGINT scenario has no interrupted run (see its own tests)")
        run_dir = snapshot(sigint_scenario.shared["at_interrupt"], base)
        done = read_json(latest_folder(run_dir) / "state.json")["epochs_done"]
        forced = kerapipe_run(base, "changed.yaml", "--resume", run_dir.name, "--force",
                              tag="forced")
        return {"run_dir": run_dir, "done": done, "forced": forced}

    return Scenario(body)


def test_resume_with_a_changed_pipeline_is_refused_with_a_diff(sigint_scenario, call_main,
                                                               tmp_path):
    sigint_scenario.ready.wait(600)
    assert "at_interrupt" in sigint_scenario.shared, "no interrupted run (see the SIGINT tests)"
    run_dir = snapshot(sigint_scenario.shared["at_interrupt"], tmp_path)
    changed = write_pipeline(tmp_path, CHANGED_PIPELINE, "changed.yaml")
    before = folder_bytes(run_dir)
    code, _, err = call_main("run", changed, "--resume", run_dir)
    assert code == 2, err
    assert "the pipeline changed since this run started" in err
    assert re.search(r"^-\s+batch_size: 200$", err, re.M), err
    assert re.search(r"^\+\s+batch_size: 400$", err, re.M), err
    assert re.search(r"^\+.*learning_rate: 0.0001", err, re.M), err
    assert "--force" in err
    assert folder_bytes(run_dir) == before  # refused: nothing written


def test_resume_with_a_changed_pipeline_and_force_continues_with_the_new_one(
        changed_scenario):
    run = changed_scenario.result()
    run_dir = run["run_dir"]
    assert_clean_exit(run["forced"], 0)
    assert read_json(run_dir / "run.json")["status"] == "finished"
    assert "batch_size: 400" in (run_dir / "spec.yaml").read_text()
    assert epoch_column(run_dir) == list(range(1, EPOCHS + 1))  # the --set it had is kept
    # The first `done` epochs at 20 steps each, the rest at the new file's 10.
    done = run["done"]
    assert optimizer_steps(run_dir) == done * 20 + (EPOCHS - done) * 10


def test_resume_with_force_trains_with_the_new_learning_rate(changed_scenario):
    """The checkpoint's optimizer state (moments, step count) is kept, but not its
    learning rate: the changed file's 1e-4 wins over the run's 1e-3."""
    run = changed_scenario.result()
    assert_clean_exit(run["forced"], 0)
    optimizer = load_keras(latest_folder(run["run_dir"]) / "last.keras").optimizer
    assert float(np.asarray(optimizer.learning_rate)) == pytest.approx(CHANGED_LEARNING_RATE)


@pytest.mark.parametrize("old, new", [
    ("[Flatten, {Dense: {units: 10}}]", "[Flatten, {Dense: {units: 16}}, {Dense: {units: 10}}]"),
    ("train:\n", "optimizer: {name: sgd, learning_rate: 0.1, momentum: 0.9}\ntrain:\n"),
], ids=["another-model", "another-optimizer"])
def test_resume_with_force_and_a_checkpoint_that_cannot_fit_is_refused_with_exit_2(
        sigint_scenario, call_main, tmp_path, old, new):
    """Not an internal error, and the run folder (its spec.yaml included) stays as it was,
    so the run can still be resumed with its own pipeline."""
    sigint_scenario.ready.wait(600)
    assert "at_interrupt" in sigint_scenario.shared, "no interrupted run (see the SIGINT tests)"
    run_dir = snapshot(sigint_scenario.shared["at_interrupt"], tmp_path)
    assert old in PIPELINE
    changed = write_pipeline(tmp_path, PIPELINE.replace(old, new), "changed.yaml")
    before = folder_bytes(run_dir)
    code, _, err = call_main("run", changed, "--resume", run_dir, "--force")
    assert code == 2, err
    assert "internal error" not in err and "does not fit this pipeline" in err, err
    assert folder_bytes(run_dir) == before


# --- kill -9 at random moments ----------------------------------------------------------

def assert_no_partial_file_at_a_final_name(run_dir: Path) -> None:
    """Every file outside ``.tmp-*`` names is whole: .keras loads, .json parses, ..."""
    for path in sorted(run_dir.rglob("*")):
        if path.is_dir() or any(part.startswith(".tmp-")
                                for part in path.relative_to(run_dir).parts):
            continue  # leftovers of a kill are allowed under temporary names only
        if path.suffix == ".keras":
            load_keras(path)
        elif path.suffix == ".json":
            read_json(path)
        elif path.suffix == ".h5":
            import h5py

            with h5py.File(path, "r"):
                pass
        elif path.name == "LATEST":
            assert (path.parent / path.read_text().strip() / "state.json").exists(), path
        elif path.suffix in (".csv", ".yaml", ".txt"):
            assert path.read_text().endswith("\n"), path
        elif path.suffix == ".html":
            assert path.read_text().endswith("</html>\n"), path
        elif path.suffix == ".png":  # a whole PNG ends with its IEND chunk
            data = path.read_bytes()
            assert data.startswith(b"\x89PNG") and data.endswith(b"IEND\xaeB`\x82"), path
        else:
            pytest.fail(f"unexpected file at a final name: {path}")


@pytest.fixture(scope="module")
def sigkill_scenario(tmp_path_factory) -> Scenario:
    """Three runs at once, each killed with SIGKILL a random 0-1.5 s after its first
    checkpoint; one of them (at random) is then resumed."""
    base = tmp_path_factory.mktemp("sigkill")
    write_pipeline(base, PIPELINE)
    rng = random.Random()
    delays = [round(rng.uniform(0, 1.5), 3) for _ in range(3)]
    chosen = rng.randrange(3)

    def body(scenario: Scenario) -> dict:
        children = [Child(base, "pipe.yaml", "--set", f"train.epochs={EPOCHS}", "--output",
                          f"out{i}", tag=f"kill{i}") for i in range(3)]
        run_dirs: list[Optional[Path]] = [None] * 3
        kill_at: list[Optional[float]] = [None] * 3
        deadline = time.monotonic() + 180
        while any(child.popen.poll() is None for child in children):
            assert time.monotonic() < deadline, "no first checkpoint within 180 s"
            for i, child in enumerate(children):
                if child.returncode is not None:
                    continue
                if run_dirs[i] is None:
                    found = list((base / f"out{i}").glob("*/checkpoints/LATEST"))
                    if found:
                        run_dirs[i] = found[0].parent.parent
                        kill_at[i] = time.monotonic() + delays[i]
                if kill_at[i] is not None and time.monotonic() >= kill_at[i]:
                    child.popen.kill()
                    child.popen.wait()
            time.sleep(0.01)
        out = {"children": children, "run_dirs": run_dirs, "delays": delays,
               "chosen": chosen,
               "at_kill": snapshot(run_dirs[chosen], base / "at-kill") if run_dirs[chosen]
               else None}
        if children[chosen].returncode == -signal.SIGKILL:
            out["resume"] = kerapipe_run(base, "--resume", str(run_dirs[chosen]),
                                         tag="resume")
        return out

    return Scenario(body)


def test_sigkill_at_random_moments_never_leaves_a_broken_checkpoint(sigkill_scenario):
    run = sigkill_scenario.result()
    chosen = run["chosen"]
    killed = [run["at_kill"] if i == chosen else run_dir
              for i, run_dir in enumerate(run["run_dirs"])]
    for i, (child, run_dir) in enumerate(zip(run["children"], killed)):
        note = f"run {i}, to be killed {run['delays'][i]} s after its first checkpoint"
        assert child.returncode == -signal.SIGKILL, f"{note}: {child.describe()}"
        checkpoint = latest_folder(run_dir)
        assert all_finite(load_keras(checkpoint / "last.keras")), note
        state = read_json(checkpoint / "state.json")
        assert state["epochs_done"] == int(checkpoint.name.split("-")[1]), note
        assert_no_partial_file_at_a_final_name(run_dir)
        leftovers = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob(".tmp-*"))
        print(f"{note}: {checkpoint.name} complete; leftovers: {leftovers or 'none'}")

    assert_clean_exit(run["resume"], 0)
    run_dir = run["run_dirs"][chosen]
    assert epoch_column(run_dir) == list(range(1, EPOCHS + 1))
    assert optimizer_steps(run_dir) == EPOCHS * STEPS_PER_EPOCH
    assert_no_partial_file_at_a_final_name(run_dir)


# --- non-finite loss and bad data -------------------------------------------------------

@pytest.fixture(scope="module")
def nan_scenario(tmp_path_factory) -> Scenario:
    base = tmp_path_factory.mktemp("nan")
    write_pipeline(base, NAN_PIPELINE)
    return Scenario(lambda _: {"base": base, "child": kerapipe_run(base, "pipe.yaml",
                                                                   tag="nan")})


def test_a_nan_loss_stops_with_exit_4_and_keeps_the_finished_epochs(nan_scenario):
    run = nan_scenario.result()
    child = run["child"]
    assert_clean_exit(child, 4)
    found = re.search(r"loss became (nan|inf|-inf) at epoch (\d+), batch (\d+)", child.stderr)
    assert found, child.stderr
    epoch, batch = int(found.group(2)), int(found.group(3))
    assert epoch >= 2 and 1 <= batch <= STEPS_PER_EPOCH, child.stderr
    assert "Lower optimizer.learning_rate" in child.stderr
    (run_dir,) = (run["base"] / "out").iterdir()
    assert epoch_column(run_dir) == list(range(1, epoch))  # the finished epochs only
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["stopped"] == found.group(0), metrics
    assert metrics["epochs_run"] == epoch - 1
    assert read_json(run_dir / "run.json")["status"] == "failed"
    assert latest_folder(run_dir).name == f"epoch-{epoch - 1:04d}"
    assert f"keeps the last good checkpoint (epoch-{epoch - 1:04d})" in child.stderr
    assert all_finite(load_keras(run_dir / "model.keras"))


def _npz_pipeline(folder: Path, x: np.ndarray, y: np.ndarray, units: int) -> Path:
    folder.mkdir(parents=True)
    np.savez(folder / "data.npz", x=x, y=y)
    write_pipeline(folder, textwrap.dedent(f"""\
        kerapipe: 1
        name: npz
        seed: 7
        data:
          source: {{npz: {{path: data.npz}}}}
          batch_size: 32
        model:
          layers: [{{Dense: {{units: {units}}}}}]
        train:
          epochs: 2
        output:
          dir: out
        """))
    return folder


def test_nan_in_the_input_data_is_refused_before_training_with_exit_3(tmp_path, call_main):
    x = np.random.default_rng(0).normal(size=(200, 4)).astype("float32")
    x[17, 2] = np.nan
    folder = _npz_pipeline(tmp_path / "nan-input", x, np.arange(200) % 3, units=3)
    code, _, err = call_main("run", folder / "pipe.yaml", "--output", folder / "out")
    assert code == 3, err
    assert "'x[17]' holds nan" in err, err
    assert not (folder / "out").exists()  # no run folder: refused before training


def test_labels_beyond_the_output_class_range_are_refused_before_training_with_exit_3(
        tmp_path, call_main):
    x = np.random.default_rng(0).normal(size=(200, 4)).astype("float32")
    folder = _npz_pipeline(tmp_path / "labels", x, np.arange(200) % 10, units=5)
    code, _, err = call_main("run", folder / "pipe.yaml", "--output", folder / "out")
    assert code == 3, err
    assert "labels go up to 9 (10 classes), but the model outputs 5 value(s)" in err, err
    assert "Set the output layer's units to 10" in err
    assert not (folder / "out").exists()
