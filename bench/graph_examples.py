"""The issue-12 examples through `kerapipe run` (B) against the same models written by
hand with the Keras functional API (A, bench/graph_keras.py), in one command.

For each example: A B A B ... fresh processes (alternating, so that drift on a shared
machine hits both alike), each training the same model on the same examples for the same
epochs; the report gives the median wall time of the whole process, its B/A ratio, and
the median test accuracy of each side (targets: wall B/A <= 1.05, accuracy within one
point). The transformer trains on the shipped stand-in for IMDB (sequences of 64).

    python bench/graph_examples.py [--pairs 2] [--quick] [--only resnet_mnist ...]

Writes bench/results-graph.json.
"""

from __future__ import annotations

import argparse
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
RESULTS = ROOT / "bench" / "results-graph.json"
TARGET_RATIO = 1.05
TARGET_POINTS = 1.0

# example -> (epochs, extra --set values for the kerapipe side)
EXAMPLES: dict[str, tuple[int, list[str]]] = {
    "resnet_mnist": (6, []),
    "transformer_imdb": (5, ["data.source={npz: data/token_sequences.npz}",
                             "data.preprocess[0].pad_sequences.maxlen=64"]),
    "mobilenet_digits": (12, []),  # at chance for ~8 epochs (its pipeline says why)
}


# Medians reported per side: the whole process, its phases (from the stamped "Epoch i/E"
# lines, as bench/train.py reads them) and the test accuracy.
PHASES = ("wall", "startup", "first_epoch", "steady_epoch", "after_fit", "test_accuracy")


def _median(values: list) -> Any:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else float("nan")


def _json_line(lines: list) -> dict:
    return json.loads(next(text for _, stream, text in reversed(lines)
                           if stream == "out" and text.startswith("{")))


def run_keras(example: str, epochs: int) -> dict[str, Any]:
    done = run_timed([sys.executable, "bench/graph_keras.py", example, "--epochs", str(epochs)])
    report = _json_line(done["lines"])
    return {"wall": done["wall"], "cpu": done["cpu"], "rss_mib": done["rss_mib"],
            "test_accuracy": report["test_accuracy"], "epochs_run": report["epochs_run"],
            "splits": report["splits"], **phases(done["wall"], done["lines"])}


def run_kerapipe(example: str, epochs: int, sets: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kerapipe-bench-") as out:
        command = kerapipe_command() + ["run", f"pipelines/{example}.yaml", "--output", out,
                                        "--set", f"train.epochs={epochs}"]
        for value in sets:
            command += ["--set", value]
        done = run_timed(command)
        folder, = [p for p in Path(out).iterdir() if p.is_dir()]
        metrics = json.loads((folder / "metrics.json").read_text())
        record = json.loads((folder / "run.json").read_text())
    return {"wall": done["wall"], "cpu": done["cpu"], "rss_mib": done["rss_mib"],
            "test_accuracy": metrics["test"]["accuracy"], "epochs_run": metrics["epochs_run"],
            "splits": [record["data"]["splits"][k] for k in ("train", "validation", "test")],
            **phases(done["wall"], done["lines"])}


def benchmark(pairs: int, only: list[str], quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for example in only:
        epochs, sets = EXAMPLES[example]
        epochs = 2 if quick else epochs
        runs: dict[str, list] = {"keras": [], "kerapipe": []}
        for pair in range(pairs):
            for side in ("keras", "kerapipe"):
                run = (run_keras(example, epochs) if side == "keras"
                       else run_kerapipe(example, epochs, sets))
                runs[side].append(run)
                print(f"{example} pair {pair + 1}/{pairs} {side:<9} wall {run['wall']:6.2f} s  "
                      f"epochs {run['epochs_run']}  test acc {run['test_accuracy']:.4f}  "
                      f"RSS {run['rss_mib'] or 0:.0f} MiB", flush=True)
        medians = {side: {key: _median([r.get(key) for r in runs[side]]) for key in PHASES}
                   for side in runs}
        ratio = medians["kerapipe"]["wall"] / medians["keras"]["wall"]
        points = round(100 * abs(medians["kerapipe"]["test_accuracy"]
                                 - medians["keras"]["test_accuracy"]), 6)  # 1.0000000000000009
        results[example] = {"epochs": epochs, "medians": medians, "wall_ratio": ratio,
                            "accuracy_points": points,
                            "same_splits": runs["keras"][0]["splits"] == runs["kerapipe"][0]["splits"],
                            "runs": runs}
    return results


def print_table(results: dict[str, Any]) -> None:
    print(f"\n{'example':<18}{'epochs':>7}{'A wall s':>10}{'B wall s':>10}{'B/A':>7}"
          f"{'A test acc':>12}{'B test acc':>12}{'|B-A| pts':>11}")
    for example, result in results.items():
        a, b = result["medians"]["keras"], result["medians"]["kerapipe"]
        print(f"{example:<18}{result['epochs']:>7}{a['wall']:>10.2f}{b['wall']:>10.2f}"
              f"{result['wall_ratio']:>7.3f}{a['test_accuracy']:>12.4f}{b['test_accuracy']:>12.4f}"
              f"{result['accuracy_points']:>11.2f}")
    print(f"\n{'phases (median s), A / B':<26}" + "".join(f"{key:>20}" for key in PHASES[1:5]))
    for example, result in results.items():
        a, b = result["medians"]["keras"], result["medians"]["kerapipe"]
        print(f"{example:<26}" + "".join(f"{a.get(key, float('nan')):>9.2f} /{b.get(key, float('nan')):>8.2f} "
                                          for key in PHASES[1:5]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=None, help="A/B pairs (default 2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 epochs, 1 pair")
    parser.add_argument("--only", nargs="+", choices=sorted(EXAMPLES), default=list(EXAMPLES))
    args = parser.parse_args()
    pairs = args.pairs or (1 if args.quick else 2)
    results = benchmark(pairs, args.only, args.quick)
    print_table(results)
    for example, result in results.items():
        wall = "met" if result["wall_ratio"] <= TARGET_RATIO else "NOT met"
        accuracy = "met" if result["accuracy_points"] <= TARGET_POINTS else "NOT met"
        print(f"{example}: wall B/A {result['wall_ratio']:.3f} (<= {TARGET_RATIO}: {wall}); "
              f"accuracy {result['accuracy_points']:.2f} points (<= {TARGET_POINTS:g}: {accuracy})"
              + ("" if result["same_splits"] else "; SPLITS DIFFER"))
    RESULTS.write_text(json.dumps({"command": " ".join(["python", "bench/graph_examples.py",
                                                        *sys.argv[1:]]),
                                   "pairs": pairs, "cpus": os.cpu_count(), "results": results},
                                  indent=2) + "\n")
    print(f"{pairs} alternating pair(s), {os.cpu_count()} CPUs; wrote "
          f"{RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
