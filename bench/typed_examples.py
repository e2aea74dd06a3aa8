"""The issue-13 typed-feature and text examples through `kerapipe run` (B) against the same
jobs written by hand after the keras.io recipes (A, bench/typed_keras.py), in one command.

For each job (``penguins``: pipelines/penguins.yaml, a FeatureSpace over a CSV with
missing values; ``text``: pipelines/text_topics.yaml, TextVectorization over a text
folder) and each seed: one fresh process per side, in the order A B for the first seed, B
A for the next, ... (so that drift on a shared machine hits both sides alike). Both sides
take the seed (B: ``--set seed=S``; A: ``--seed S``): the split (the same fractions, and
the same rows when kerapipe reads them in the same order: checked, "same test rows"),
the weights and the shuffling. Quiet: one line per process, then a table.

The report per job: the median test accuracy of each side and their difference in
points; the spread of each side over the seeds (max - min: how far two equally good runs
of one side differ, the yardstick for the difference); the per-seed differences; the
median wall time of the whole process and its B/A ratio; the median fit and steady epoch
seconds (from the stamped "Epoch i/E" lines). Targets: accuracy within one point, wall
B/A <= 1.05.

    python bench/typed_examples.py [--seeds 42 1 2] [--only penguins text] [--quick]
                                   [--keras-cache-encoded] [--output FILE]

Writes bench/results-typed.json.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train import kerapipe_command, phases, run_timed  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = ROOT / "pipelines"  # --pipelines: another folder of the same files (a draft)
RESULTS = ROOT / "bench" / "results-typed.json"
TARGET_RATIO = 1.05
TARGET_POINTS = 1.0
JOBS = {"penguins": "pipelines/penguins.yaml", "text": "pipelines/text_topics.yaml"}
MEDIANS = ("wall", "cpu", "rss_mib", "startup", "fit", "steady_epoch", "after_fit",
           "test_accuracy", "epochs_run")


def ids_digest(ids: list[str]) -> str:
    """A short digest of a set of example ids (the test rows), to compare the two sides."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]


def _json_line(lines: list) -> dict:
    return json.loads(next(text for _, stream, text in reversed(lines)
                           if stream == "out" and text.startswith("{")))


KERAS_OPTIONS: list[str] = []  # --keras-cache-encoded: ["--cache-encoded"]


def run_keras(job: str, seed: int, epochs: int | None) -> dict[str, Any]:
    command = [sys.executable, "bench/typed_keras.py", "--job", job, "--seed", str(seed),
               *(KERAS_OPTIONS if job == "penguins" else [])]
    done = run_timed(command + (["--epochs", str(epochs)] if epochs else []))
    report = _json_line(done["lines"])
    return {"wall": done["wall"], "cpu": done["cpu"], "rss_mib": done["rss_mib"],
            "test_accuracy": report["test_accuracy"], "epochs_run": report["epochs_run"],
            "splits": report["splits"], "test_ids": report["test_ids_digest"],
            **phases(done["wall"], done["lines"])}


def run_kerapipe(job: str, seed: int, epochs: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kerapipe-bench-") as out:
        command = kerapipe_command() + ["run", str(PIPELINES / Path(JOBS[job]).name), "--output", out,
                                        "--set", f"seed={seed}"]
        done = run_timed(command + (["--set", f"train.epochs={epochs}"] if epochs else []))
        folder, = [p for p in Path(out).iterdir() if p.is_dir()]
        metrics = json.loads((folder / "metrics.json").read_text())
        record = json.loads((folder / "run.json").read_text())
        with (folder / "predictions.csv").open(newline="") as f:
            test_ids = [row["input"] for row in csv.DictReader(f)]
    return {"wall": done["wall"], "cpu": done["cpu"], "rss_mib": done["rss_mib"],
            "test_accuracy": metrics["test"]["accuracy"], "epochs_run": metrics["epochs_run"],
            "splits": [record["data"]["splits"][k] for k in ("train", "validation", "test")],
            "test_ids": ids_digest(test_ids), **phases(done["wall"], done["lines"])}


def _median(values: list) -> float:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else float("nan")


def benchmark(jobs: list[str], seeds: list[int], epochs: int | None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for job in jobs:
        runs: dict[str, list] = {"keras": [], "kerapipe": []}
        for turn, seed in enumerate(seeds):
            order = ("keras", "kerapipe") if turn % 2 == 0 else ("kerapipe", "keras")
            for side in order:
                run = (run_keras if side == "keras" else run_kerapipe)(job, seed, epochs)
                run["seed"] = seed
                runs[side].append(run)
                print(f"{job} seed {seed:<4} {side:<9} wall {run['wall']:6.2f} s  fit "
                      f"{run.get('fit', float('nan')):6.2f} s  epochs {run['epochs_run']:>3}  "
                      f"test acc {run['test_accuracy']:.4f}  RSS {run['rss_mib'] or 0:.0f} MiB",
                      flush=True)
        for side in runs:  # in seed order, whatever order they ran in
            runs[side].sort(key=lambda run: seeds.index(run["seed"]))
        medians = {side: {key: _median([r.get(key) for r in runs[side]]) for key in MEDIANS}
                   for side in runs}
        accuracies = {side: [r["test_accuracy"] for r in runs[side]] for side in runs}
        per_seed = [round(100 * (b - a), 4) for a, b in zip(accuracies["keras"],
                                                             accuracies["kerapipe"])]
        results[job] = {
            "pipeline": JOBS[job], "seeds": seeds, "medians": medians,
            "wall_ratio": medians["kerapipe"]["wall"] / medians["keras"]["wall"],
            "fit_ratio": medians["kerapipe"]["fit"] / medians["keras"]["fit"],
            "steady_epoch_ratio": (medians["kerapipe"]["steady_epoch"]
                                   / medians["keras"]["steady_epoch"]),
            "accuracy_points": round(100 * (medians["kerapipe"]["test_accuracy"]
                                            - medians["keras"]["test_accuracy"]), 4),
            "per_seed_points": per_seed,
            "seed_spread_points": {side: round(100 * (max(a) - min(a)), 4)
                                   for side, a in accuracies.items()},
            "test_examples": runs["keras"][0]["splits"][2],
            "same_test_rows": [a["test_ids"] == b["test_ids"]
                               for a, b in zip(runs["keras"], runs["kerapipe"])],
            "runs": runs}
    return results


def print_table(results: dict[str, Any]) -> None:
    print(f"\n{'job':<10}{'seeds':>6}{'test n':>7}{'A acc':>8}{'B acc':>8}{'B-A pts':>8}"
          f"{'A spread':>9}{'B spread':>9}{'A wall':>8}{'B wall':>8}{'B/A':>7}"
          f"{'A fit':>7}{'B fit':>7}{'A ep':>6}{'B ep':>6}{'A st.ep':>8}{'B st.ep':>8}")
    for job, r in results.items():
        a, b = r["medians"]["keras"], r["medians"]["kerapipe"]
        print(f"{job:<10}{len(r['seeds']):>6}{r['test_examples']:>7}{a['test_accuracy']:>8.4f}"
              f"{b['test_accuracy']:>8.4f}{r['accuracy_points']:>+8.2f}"
              f"{r['seed_spread_points']['keras']:>9.2f}{r['seed_spread_points']['kerapipe']:>9.2f}"
              f"{a['wall']:>8.2f}{b['wall']:>8.2f}{r['wall_ratio']:>7.3f}{a['fit']:>7.2f}"
              f"{b['fit']:>7.2f}{a['epochs_run']:>6.0f}{b['epochs_run']:>6.0f}"
              f"{a['steady_epoch']:>8.3f}{b['steady_epoch']:>8.3f}")
    print("(A: bench/typed_keras.py, B: kerapipe run; medians over the seeds; spread: max - "
          "min over the seeds, in points; wall: the whole process; fit: Epoch 1 begins to the "
          "last epoch's end; ep: epochs run (early stopping); st.ep: median epoch after the "
          "first, s)")
    for job, r in results.items():
        print(f"{job}: per-seed B-A points {r['per_seed_points']} (one test example = "
              f"{100 / r['test_examples']:.2f} points); same test rows per seed: "
              f"{r['same_test_rows']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="seeds (default 42 1 2; quick: 42)")
    parser.add_argument("--only", nargs="+", choices=sorted(JOBS), default=list(JOBS))
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of both sides (default: the pipeline's)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 3 epochs")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results file")
    parser.add_argument("--keras-cache-encoded", action="store_true", help="A side of "
                        "penguins caches the encoded rows as kerapipe does (not the "
                        "recipe's FeatureSpace map over every batch of every epoch)")
    parser.add_argument("--pipelines", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global PIPELINES
    PIPELINES = (args.pipelines or PIPELINES).resolve()
    if args.keras_cache_encoded:
        KERAS_OPTIONS.append("--cache-encoded")
    seeds = args.seeds or ([42] if args.quick else [42, 1, 2])
    epochs = args.epochs or (3 if args.quick else None)
    results = benchmark(args.only, seeds, epochs)
    print_table(results)
    for job, r in results.items():
        wall = "met" if r["wall_ratio"] <= TARGET_RATIO else "NOT met"
        accuracy = "met" if abs(r["accuracy_points"]) <= TARGET_POINTS else "NOT met"
        print(f"{job}: wall B/A {r['wall_ratio']:.3f} (<= {TARGET_RATIO}: {wall}); accuracy "
              f"{r['accuracy_points']:+.2f} points (within {TARGET_POINTS:g}: {accuracy}; seed "
              f"spread A {r['seed_spread_points']['keras']:.2f}, B "
              f"{r['seed_spread_points']['kerapipe']:.2f})")
    args.output.write_text(json.dumps({"command": " ".join(["python", "bench/typed_examples.py",
                                                        *sys.argv[1:]]),
                                   "seeds": seeds, "epochs": epochs, "cpus": os.cpu_count(),
                                   "keras_options": KERAS_OPTIONS,
                                   "load_average_at_end": os.getloadavg(),
                                   "results": results}, indent=2) + "\n")
    print(f"{len(seeds)} seed(s), {os.cpu_count()} CPUs; wrote {args.output}")


if __name__ == "__main__":
    main()
