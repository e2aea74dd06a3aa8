"""What `train.distribute: {strategy: multi_worker}` costs per step on one machine: one
process (``strategy: none``) against 2 workers on loopback, at the same global batch.

This measures overhead, not scaling: the two workers share this machine's cores (2 here),
so each does half the examples of a step on half the CPU, plus the all-reduce of the
gradients and the collective metric/log reductions. Scaling needs real hosts or GPUs.

Workloads (``--workloads``, as ``MODEL-BATCH``; the batch is the global batch, split
32/32 or 128/128 across the two workers' replicas):

* ``conv``: pipelines/mnist.yaml as shipped (the CNN on the 5,000 bundled digits,
  4000/500/500 split), ``--set train.epochs=E train.early_stopping=null
  data.batch_size=B``; 34,826 weights (139 kB all-reduced per step);
* ``dense``: an MLP (Dense 512, 512, 10) on 8,000 generated rows of 256 features
  (6400 train), 400,906 weights (1.6 MB per step): more traffic per example.

Each variant is a fresh child process of this script (``--child``) that calls the API as
a launcher would (``compile_pipeline(file, overrides).fit(verbose=0, callbacks=[timer])``):
the 2-worker variant is two children started together, each with its ``TF_CONFIG`` from
``kerapipe.cluster.local_tf_config`` and ``--set train.distribute.strategy=multi_worker``.
The timer callback stamps each epoch's begin, its last training batch (so validation is
not counted) and the process CPU time. Reported per workload, from the chief (both
workers must exit 0 and report the same losses):

* steady ms/step: the training part of epochs 2..n / its steps, median over the epochs
  and rounds (epoch 1 traces); 2 workers / 1 process, and the difference (overhead);
* CPU ms/step: process CPU of the training part / steps, summed over both workers (on a
  shared machine CPU seconds move less than wall seconds);
* start-up to the first step: from this script's spawn of the process (``time.time()``
  passed in the environment) to the end of the first training batch, split at the end of
  ``compile_pipeline`` (import, data, the cluster's start-up for 2 workers, the model);
* the final validation loss of each variant (a sanity check: both learn alike).

Rounds run every workload once per variant, the order of the two variants rotated from
round to round. The machine's load average is recorded before each child; other work on
a shared machine still moves the wall figures, so read CPU ms/step beside them.

    python bench/distribute.py [--rounds 2] [--epochs 3] [--workloads conv-64 conv-256 dense-256]

The default takes about 5.5 minutes on this 2-core machine at a load average of 2 from
other work (7.5 at 4 to 6); about half of it is start-up (10 to 25 s a process).
bench/results-distribute.json holds ``--workloads conv-64 conv-256 dense-64 dense-256``
(7 minutes).

Prints one table and writes bench/results-distribute.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results-distribute.json"
VARIANTS = ("none", "workers2")
LABELS = {"none": "1 process", "workers2": "2 workers"}
CHILD_TIMEOUT = 420  # seconds a child (or the pair) may take before it is killed

DENSE = """\
kerapipe: 1
name: dense
seed: 1
data:
  source: {npz: dense.npz}
  split: {validation: 0.1, test: 0.1}
  preprocess: [{normalize: {}}]
  batch_size: 256
model:
  layers:
    - Dense: {units: 512, activation: relu}
    - Dense: {units: 512, activation: relu}
    - Dense: {units: 10}
train: {epochs: 3}
output: {predictions: none}
"""


# --- the child: one worker (or the one process) -----------------------------------------

def child(pipeline: str, overrides: list[str], out: str) -> None:
    """Compile and fit; write the timings as JSON to ``out``."""
    spawned = float(os.environ["BENCH_SPAWN_TIME"])
    started = time.time()
    import numpy as np

    from kerapipe.pipeline import compile_pipeline

    imported = time.time()
    compiled = compile_pipeline(pipeline, overrides)
    done_compiling = time.time()
    import keras
    import tensorflow as tf

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.first_step = None
            self.epochs: list[dict] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs.append({"begin": time.perf_counter(), "cpu_begin": time.process_time(),
                                "steps": 0})

        def on_train_batch_end(self, batch, logs=None):
            if self.first_step is None:
                self.first_step = time.time()
            epoch = self.epochs[-1]
            epoch["steps"] += 1
            epoch["last_batch"] = time.perf_counter()
            epoch["cpu_last_batch"] = time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.epochs[-1]["end"] = time.perf_counter()

    timer = Timer()
    history = compiled.fit(verbose=0, callbacks=[timer])
    finished = time.time()

    def last(key):
        values = history.history.get(key)
        return None if not values else float(np.reshape(values[-1], -1)[0])

    epochs = [{"train_s": e["last_batch"] - e["begin"], "epoch_s": e["end"] - e["begin"],
               "cpu_s": e["cpu_last_batch"] - e["cpu_begin"], "steps": e["steps"]}
              for e in timer.epochs]
    weights = sum(int(np.prod(v.shape)) for v in compiled.model.trainable_variables)
    Path(out).write_text(json.dumps({
        "worker": compiled.distribution.worker_index,
        "replicas": compiled.distribution.replicas,
        "strategy": compiled.distribution.name,
        "spawn_to_start_s": started - spawned,
        "spawn_to_imported_s": imported - spawned,
        "spawn_to_compiled_s": done_compiling - spawned,
        "spawn_to_first_step_s": timer.first_step - spawned,
        "spawn_to_fit_end_s": finished - spawned,
        "epochs": epochs, "loss": last("loss"), "val_loss": last("val_loss"),
        "val_accuracy": last("val_accuracy"), "trainable_weights": weights,
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "tensorflow": tf.__version__, "keras": keras.__version__}))


# --- the parent ---------------------------------------------------------------------------

def _dense_data(folder: Path) -> None:
    """8,000 rows of 256 features whose class is a linear function of them (learnable)."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(8000, 256)).astype("float32")
    y = np.argmax(x @ rng.normal(size=(256, 10)), axis=1)
    np.savez(folder / "dense.npz", x=x, y=y)


def _pipeline(folder: Path, workload: str, epochs: int) -> tuple[str, list[str]]:
    model, batch = workload.split("-")
    overrides = [f"train.epochs={epochs}", f"data.batch_size={int(batch)}"]
    if model == "conv":
        return str(ROOT / "pipelines" / "mnist.yaml"), overrides + ["train.early_stopping=null"]
    path = folder / "dense.yaml"
    path.write_text(DENSE)
    return str(path), overrides


def _run_variant(folder: Path, workload: str, variant: str, epochs: int) -> dict:
    """One run of a variant: its children's reports (the chief first) and the load."""
    from kerapipe.cluster import free_local_ports, local_tf_config

    pipeline, overrides = _pipeline(folder, workload, epochs)
    workers = 2 if variant == "workers2" else 1
    if workers > 1:
        overrides += ["train.distribute.strategy=multi_worker",
                      "train.distribute.startup_timeout=120"]
        ports = free_local_ports(workers)
    base_env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    load = os.getloadavg()
    outs = [folder / f"out-{i}.json" for i in range(workers)]
    logs = [open(folder / f"err-{i}.log", "w+") for i in range(workers)]
    for out in outs:
        out.unlink(missing_ok=True)
    processes = []
    spawn = time.time()
    for i in range(workers):
        env = {**base_env, "BENCH_SPAWN_TIME": repr(spawn)}
        if workers > 1:
            env["TF_CONFIG"] = local_tf_config(ports, i)
        processes.append(subprocess.Popen(
            [sys.executable, __file__, "--child", pipeline, str(outs[i]), *overrides],
            cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=logs[i],
            stderr=subprocess.STDOUT))
    deadline = time.monotonic() + CHILD_TIMEOUT
    try:
        for process in processes:
            process.wait(max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for process in processes:  # ours, by pid
            if process.poll() is None:
                process.kill()
                process.wait()
    reports = []
    for i, (process, out, log) in enumerate(zip(processes, outs, logs)):
        log.seek(0)
        tail = log.read()[-2000:]
        log.close()
        if process.returncode != 0 or not out.exists():
            raise SystemExit(f"{workload} {variant}: worker {i} exited with "
                             f"{process.returncode}:\n{tail}")
        reports.append(json.loads(out.read_text()))
    chief = reports[0]
    assert chief["worker"] == 0 and chief["replicas"] == workers, chief
    if workers > 1:  # the reduced losses are the same on every worker
        for other in reports[1:]:
            assert len(other["epochs"]) == len(chief["epochs"]), (chief, other)
            assert abs(other["loss"] - chief["loss"]) <= 1e-6 * max(1.0, abs(chief["loss"])), \
                (chief["loss"], other["loss"])
    return {"load_before": load, "reports": reports}


def _steady(runs: list[dict], key: str, both_workers: bool = False) -> float:
    """ms/step of the training part of epochs 2..n (all of them if only one), the median
    over the epochs of every run; ``both_workers`` sums ``key`` over the workers."""
    samples = []
    for run in runs:
        reports = run["reports"] if both_workers else run["reports"][:1]
        count = len(reports[0]["epochs"])
        chosen = range(1, count) if count > 1 else range(count)
        for e in chosen:
            steps = reports[0]["epochs"][e]["steps"]
            samples.append(1000 * sum(r["epochs"][e][key] for r in reports) / steps)
    return statistics.median(samples)


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(run["reports"][0][key] for run in runs)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[4:], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workloads", nargs="+", default=["conv-64", "conv-256", "dense-256"],
                        help="MODEL-BATCH, MODEL one of conv, dense (default: %(default)s)")
    args = parser.parse_args()
    for workload in args.workloads:
        model, _, batch = workload.partition("-")
        if model not in ("conv", "dense") or not batch.isdigit() or int(batch) % 2:
            parser.error(f"workload {workload!r}: MODEL-BATCH, MODEL conv or dense, "
                         "an even BATCH")
    command = "python bench/distribute.py " + " ".join(sys.argv[1:])
    load_start = os.getloadavg()
    began = time.perf_counter()
    runs: dict = {w: {v: [] for v in VARIANTS} for w in args.workloads}
    with tempfile.TemporaryDirectory(prefix="kerapipe-bench-distribute-") as tmp:
        folder = Path(tmp)
        _dense_data(folder)
        for round_index in range(args.rounds):
            for workload in args.workloads:
                order = VARIANTS[round_index % 2:] + VARIANTS[:round_index % 2]
                for variant in order:
                    run = _run_variant(folder, workload, variant, args.epochs)
                    runs[workload][variant].append(run)
                    chief = run["reports"][0]
                    print(f"  round {round_index + 1} {workload:<10} {LABELS[variant]:<10} "
                          f"first step {chief['spawn_to_first_step_s']:5.1f} s, "
                          f"{_steady([run], 'train_s'):6.1f} ms/step "
                          f"(load {run['load_before'][0]:.2f})", flush=True)
    load_end = os.getloadavg()
    first = runs[args.workloads[0]]["none"][0]["reports"][0]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    report: dict = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "gpus": first["gpus"], "tensorflow": first["tensorflow"],
                    "keras": first["keras"], "python": platform.python_version(),
                    "load_average_start": load_start, "load_average_end": load_end},
        "commit": commit, "command": command, "epochs": args.epochs, "rounds": args.rounds,
        "seconds": time.perf_counter() - began, "workloads": {}}
    print(f"GPUs visible: {first['gpus'] or 'none'}; {os.cpu_count()} CPUs (shared by both "
          f"workers); {args.epochs} epochs, {args.rounds} round(s); load average "
          f"{load_start[0]:.2f} at start, {load_end[0]:.2f} at end")
    print(f"{'workload':<10} {'steps':>5} {'all-reduce':>10} | {'ms/step 1p':>10} "
          f"{'2 workers':>9} {'ratio':>6} {'overhead':>8} | {'CPU ms/step 1p':>14} "
          f"{'2w (sum)':>8} | {'first step s 1p':>15} {'2w':>5} | {'val loss 1p':>11} {'2w':>6}")
    for workload in args.workloads:
        one, two = runs[workload]["none"], runs[workload]["workers2"]
        entry: dict = {}
        for variant, found in (("none", one), ("workers2", two)):
            entry[variant] = {
                "steady_ms_per_step": _steady(found, "train_s"),
                "fastest_ms_per_step": min(
                    1000 * e["train_s"] / e["steps"] for run in found
                    for e in (run["reports"][0]["epochs"][1:] or run["reports"][0]["epochs"])),
                "steady_epoch_with_validation_s": statistics.median(
                    e["epoch_s"] for run in found
                    for e in (run["reports"][0]["epochs"][1:] or run["reports"][0]["epochs"])),
                "cpu_ms_per_step_all_workers": _steady(found, "cpu_s", both_workers=True),
                "spawn_to_compiled_s": _median(found, "spawn_to_compiled_s"),
                "spawn_to_first_step_s": _median(found, "spawn_to_first_step_s"),
                "val_loss": _median(found, "val_loss"),
                "val_accuracy": _median(found, "val_accuracy"),
                "runs": found}
        a, b = entry["none"], entry["workers2"]
        chief = one[0]["reports"][0]
        steps = chief["epochs"][-1]["steps"]
        weights = chief["trainable_weights"]
        entry.update(steps_per_epoch=steps, trainable_weights=weights,
                     all_reduce_bytes_per_step=4 * weights,
                     ratio=b["steady_ms_per_step"] / a["steady_ms_per_step"],
                     overhead_ms_per_step=b["steady_ms_per_step"] - a["steady_ms_per_step"],
                     cpu_ratio=(b["cpu_ms_per_step_all_workers"]
                                / a["cpu_ms_per_step_all_workers"]),
                     startup_extra_s=b["spawn_to_first_step_s"] - a["spawn_to_first_step_s"])
        report["workloads"][workload] = entry
        print(f"{workload:<10} {steps:>5} {4 * weights / 1e3:>8.0f}kB | "
              f"{a['steady_ms_per_step']:>10.1f} {b['steady_ms_per_step']:>9.1f} "
              f"{entry['ratio']:>5.2f}x {entry['overhead_ms_per_step']:>+8.1f} | "
              f"{a['cpu_ms_per_step_all_workers']:>14.1f} "
              f"{b['cpu_ms_per_step_all_workers']:>8.1f} | "
              f"{a['spawn_to_first_step_s']:>15.1f} {b['spawn_to_first_step_s']:>5.1f} | "
              f"{a['val_loss']:>11.4f} {b['val_loss']:>6.4f}")
    print("start-up to first step = spawn to compiled + compiled to first batch end; "
          "compiled at: " + ", ".join(
              f"{w} {report['workloads'][w]['none']['spawn_to_compiled_s']:.1f}/"
              f"{report['workloads'][w]['workers2']['spawn_to_compiled_s']:.1f} s"
              for w in args.workloads))
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)} ({report['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
