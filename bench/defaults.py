"""Justify kerapipe's training defaults with figures: each knob against the defaults.

For each example pipeline (pipelines/mnist.yaml: a CNN on the bundled 5,000 digits;
pipelines/iris.yaml: a tiny MLP on 150 rows, per-step overhead dominated) and each
variant below, one fresh process (bench/defaults_child.py) compiles the pipeline with
``compile_pipeline(path, overrides=[...])``, fits it for a fixed number of epochs with
early stopping off and a timer callback, and evaluates the test split. The variants of
a pipeline run once per round, their order rotated from round to round so that none
always runs first or right after another; drift on a shared machine therefore hits
every variant alike, and each variant is also compared with the baseline of its own
round (paired ratio).

Variants (spec keys set with overrides, as ``--set`` on the command line):

* ``baseline``: the current defaults (deterministic: true, jit_compile: auto,
  steps_per_execution: 1, cache: auto);
* ``deterministic=false``: op determinism off (jit_compile auto);
* ``deterministic=false, jit_compile=false``;
* ``deterministic=false, jit_compile=true``: XLA really on. Keras's ``auto`` turns XLA
  off on a machine without an accelerator, so the variant above does not switch it on
  on CPU; this one does;
* ``jit_compile=true`` with determinism on: Keras refuses XLA while op determinism is on
  (it warns and goes on without it); reported as such;
* ``steps_per_execution=8`` and ``=32``;
* ``cache=false``.

Reported per pipeline and variant: the median over runs of the steady-state epoch
(median wall seconds of epochs 2..n, validation included), its min and max over runs,
the ratio to the baseline's median and the range of paired per-round ratios; the same
for process-CPU seconds per steady epoch (less disturbed by other work on a shared
machine); the first epoch (tracing / XLA compilation); test accuracy; whether XLA was
really on; and whether the runs are bit-identical across rounds (final training loss,
final validation loss, test loss and a SHA-256 of the final weights all equal), and
equal to the baseline's.

    python bench/defaults.py [--rounds 3] [--quick] [--pipelines mnist iris]
                             [--epochs-mnist 6] [--epochs-iris 40]

Writes bench/results-defaults.json (after every run, so a partial run leaves data).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
CHILD = ROOT / "bench" / "defaults_child.py"
RESULTS = ROOT / "bench" / "results-defaults.json"
CHILD_TIMEOUT = 1800  # seconds; an XLA run on CPU is several times slower

PIPELINES = {  # name: (file, epochs, quick epochs)
    "mnist": ("pipelines/mnist.yaml", 6, 3),
    "iris": ("pipelines/iris.yaml", 40, 15),
}

VARIANTS: list[tuple[str, list[str]]] = [
    ("baseline", []),
    ("deterministic=false", ["train.deterministic=false"]),
    ("deterministic=false jit=false", ["train.deterministic=false", "train.jit_compile=false"]),
    ("deterministic=false jit=true", ["train.deterministic=false", "train.jit_compile=true"]),
    ("jit=true (deterministic)", ["train.jit_compile=true"]),
    ("steps_per_execution=8", ["train.steps_per_execution=8"]),
    ("steps_per_execution=32", ["train.steps_per_execution=32"]),
    ("cache=false", ["data.cache=false"]),
]


def run_child(pipeline: str, overrides: list[str]) -> dict[str, Any]:
    command = [sys.executable, str(CHILD), pipeline]
    for item in overrides:
        command += ["--set", item]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT} s", "load_before": load}
    wall = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        return {"error": f"exit code {proc.returncode}, no report", "stderr_tail": tail,
                "load_before": load, "process_wall": wall}
    record = json.loads(lines[-1])
    record["process_wall"] = wall
    record["load_before"] = load
    record["exit_code"] = proc.returncode
    if "error" not in record:
        steady_wall = record["epoch_wall"][1:]
        record["steady_epoch"] = statistics.median(steady_wall)
        record["fastest_epoch"] = min(steady_wall)
        record["steady_cpu"] = statistics.median(record["epoch_cpu"][1:])
        record["steady_train"] = statistics.median(record["epoch_train_wall"][1:])
        record["first_epoch"] = record["epoch_wall"][0]
        record["test_accuracy"] = record["test"].get("accuracy")
        history = record["history"]
        record["final"] = {
            "loss": history["loss"][-1].hex(),
            "val_loss": history["val_loss"][-1].hex() if "val_loss" in history else None,
            "test_loss": float(record["test"]["loss"]).hex() if "loss" in record["test"] else None,
            "weights_sha256": record["weights_sha256"],
        }
    return record


def bits(run: dict) -> Optional[str]:
    final = run.get("final")
    return json.dumps(final, sort_keys=True) if final else None


def spread(values: list[float]) -> dict[str, Optional[float]]:
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(runs: dict[str, list[dict]]) -> dict[str, dict]:
    good = {name: [r for r in rs if "error" not in r] for name, rs in runs.items()}
    base = good.get("baseline", [])
    base_by_round = {r["round"]: r for r in base}
    base_bits = {bits(r) for r in base}
    summary: dict[str, dict] = {}
    for name, rs in runs.items():
        ok = good[name]
        entry: dict[str, Any] = {"runs": len(rs), "ok_runs": len(ok),
                                 "errors": sorted({r["error"] for r in rs if "error" in r})}
        if ok:
            for key in ("steady_epoch", "steady_cpu", "steady_train", "fastest_epoch",
                        "first_epoch", "compile_seconds", "test_accuracy"):
                entry[key] = spread([r[key] for r in ok])
            for key in ("steady_epoch", "steady_cpu", "first_epoch"):
                bm = spread([r[key] for r in base])["median"]
                entry[f"{key}_ratio"] = entry[key]["median"] / bm if bm else None
                paired = [r[key] / base_by_round[r["round"]][key] for r in ok
                          if r["round"] in base_by_round]
                entry[f"{key}_paired_ratio"] = spread(paired)
            distinct = {bits(r) for r in ok}
            entry["distinct_results"] = len(distinct)
            entry["bit_identical_across_rounds"] = (len(distinct) == 1) if len(ok) > 1 else None
            entry["equal_to_baseline_bits"] = (distinct == base_bits) if base_bits else None
            entry["xla_on"] = sorted({r["jit_compile_effective"] for r in ok})
            entry["op_determinism"] = sorted({r["op_determinism"] for r in ok})
            entry["warnings"] = sorted({w for r in ok for w in r.get("warnings", [])})
            entry["test_accuracies"] = [r["test_accuracy"] for r in ok]
            entry["final_losses"] = [float.fromhex(r["final"]["loss"]) for r in ok]
        summary[name] = entry
    return summary


def fmt(value: Optional[float], pattern: str) -> str:
    return pattern.format(value) if value is not None else "-"


def print_table(pipeline: str, epochs: int, summary: dict[str, dict]) -> None:
    print(f"\n{pipeline}: {PIPELINES[pipeline][0]}, {epochs} epochs, early stopping off; "
          f"median over runs (min..max)")
    head = (f"{'variant':<30}{'XLA':>4}{'steady epoch s':>24}{'ratio':>7}{'paired':>13}"
            f"{'CPU s/epoch':>22}{'ratio':>7}{'1st epoch s':>12}{'test acc':>17}"
            f"{'bit-identical':>15}{'=baseline':>10}")
    print(head)
    print("-" * len(head))
    for name, e in summary.items():
        if not e.get("ok_runs"):
            print(f"{name:<30}  ERROR: {'; '.join(e['errors'])}")
            continue
        se, sc, acc = e["steady_epoch"], e["steady_cpu"], e["test_accuracy"]
        pr = e["steady_epoch_paired_ratio"]
        xla = "/".join("on" if x else "off" for x in e["xla_on"])
        ident = e["bit_identical_across_rounds"]
        ident_s = "n/a (1 run)" if ident is None else (
            "yes" if ident else f"no ({e['distinct_results']}/{e['ok_runs']})")
        base_s = "yes" if e["equal_to_baseline_bits"] else "no"
        acc_s = (f"{acc['median']:.4f}" if acc["min"] == acc["max"]
                 else f"{acc['median']:.3f} ({acc['min']:.3f}..{acc['max']:.3f})")
        print(f"{name:<30}{xla:>4}"
              f"{se['median']:>9.3f} ({se['min']:.3f}..{se['max']:.3f})"
              f"{fmt(e['steady_epoch_ratio'], '{:.2f}'):>7}"
              f"{fmt(pr['min'], '{:.2f}'):>7}..{fmt(pr['max'], '{:.2f}'):<4}"
              f"{sc['median']:>8.3f} ({sc['min']:.3f}..{sc['max']:.3f})"
              f"{fmt(e['steady_cpu_ratio'], '{:.2f}'):>7}"
              f"{e['first_epoch']['median']:>12.2f}{acc_s:>17}{ident_s:>15}{base_s:>10}")
        if e["errors"]:
            print(f"{'':<30}  also failed: {'; '.join(e['errors'])}")
        for warning in e["warnings"]:
            print(f"{'':<30}  warning: {warning}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 round, fewer epochs")
    parser.add_argument("--pipelines", nargs="+", choices=sorted(PIPELINES),
                        default=list(PIPELINES))
    parser.add_argument("--epochs-mnist", type=int, default=None)
    parser.add_argument("--epochs-iris", type=int, default=None)
    parser.add_argument("--variants", nargs="+", choices=[n for n, _ in VARIANTS],
                        default=None, help="subset of variants (baseline is always run)")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    epochs = {name: (getattr(args, f"epochs_{name}") or (quick if args.quick else full))
              for name, (_, full, quick) in PIPELINES.items()}
    variants = [v for v in VARIANTS
                if args.variants is None or v[0] == "baseline" or v[0] in args.variants]

    # Warm the file cache (TensorFlow, Keras, kerapipe) so the first run pays no more.
    subprocess.run([sys.executable, "-c", "import keras, kerapipe.pipeline"],
                   cwd=ROOT, check=True, capture_output=True)

    all_runs: dict[str, dict[str, list[dict]]] = {
        p: {name: [] for name, _ in variants} for p in args.pipelines}
    failed: dict[str, set[str]] = {p: set() for p in args.pipelines}
    meta = {
        "command": " ".join(["python", "bench/defaults.py", *sys.argv[1:]]),
        "rounds": rounds, "epochs": {p: epochs[p] for p in args.pipelines},
        "cpus": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(),
        "variants": {name: overrides for name, overrides in variants},
        "common_overrides": ["train.epochs=E", "train.early_stopping=null"],
        "timing": "steady epoch = median wall seconds of epochs 2..n (validation included), "
                  "per process; tables give median (min..max) over processes",
    }

    def save(status: str) -> None:
        import keras
        import tensorflow as tf
        RESULTS.write_text(json.dumps({
            **meta, "status": status, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "summary": {p: summarise(all_runs[p]) for p in args.pipelines},
            "runs": all_runs,
        }, indent=2) + "\n")

    total = rounds * len(variants) * len(args.pipelines)
    done = 0
    for pipeline in args.pipelines:
        path = PIPELINES[pipeline][0]
        common = [f"train.epochs={epochs[pipeline]}", "train.early_stopping=null"]
        for r in range(rounds):
            shift = r % len(variants)
            for name, overrides in variants[shift:] + variants[:shift]:
                done += 1
                if name in failed[pipeline]:  # a deterministic error: do not pay it again
                    continue
                run = run_child(path, common + overrides)
                run["round"] = r + 1
                all_runs[pipeline][name].append(run)
                if "error" in run:
                    failed[pipeline].add(name)
                    print(f"[{done}/{total}] {pipeline} round {r + 1} {name:<30} ERROR "
                          f"{run['error']}", flush=True)
                else:
                    print(f"[{done}/{total}] {pipeline} round {r + 1} {name:<30} steady "
                          f"{run['steady_epoch']:.3f} s  CPU {run['steady_cpu']:.3f} s  first "
                          f"{run['first_epoch']:.2f} s  XLA "
                          f"{'on ' if run['jit_compile_effective'] else 'off'}  test acc "
                          f"{run['test_accuracy']:.4f}  loss {float.fromhex(run['final']['loss']):.9g}"
                          f"  (load {run['load_before']:.2f})", flush=True)
                save("partial")

    for pipeline in args.pipelines:
        print_table(pipeline, epochs[pipeline], summarise(all_runs[pipeline]))
    print("\nratio: variant median / baseline median; paired: range of variant / baseline "
          "of the same round. CPU: process CPU seconds (all threads) per steady epoch.\n"
          "bit-identical: final train loss, val loss, test loss and weights' SHA-256 equal "
          "in every round; =baseline: equal to the baseline's.")
    save("complete")
    print(f"{rounds} round(s), {os.cpu_count()} CPUs; wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
