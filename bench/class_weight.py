"""`class_weight: balanced` against no class weights on a 1:20 two-class table, in one
command: pipelines/imbalanced.yaml (data: pipelines/data/imbalanced.csv, written by
scripts/make_imbalanced.py), through `kerapipe run`, one fresh process per run.

For each seed: the unweighted run (``--set train.class_weight=null``) and the balanced
run (the file as written), in the order A B for the first seed, B A for the next, ...
(so that drift on a shared machine hits both sides alike). Both take the seed (``--set
seed=S``): the same split, initial weights and shuffling; only the loss's weights
differ. Quiet: one line per process, then a table.

The report per side: the test split's minority-class (`fraud`) recall, its overall
accuracy, the wall time of the whole process and the training seconds (`fit`, as `kerapipe
run` prints them), per seed and as medians; and the
balanced/unweighted ratio of each median. The test split holds 30 of the 100 `fraud`
rows, so one row is 3.3 points of recall.

    python bench/class_weight.py [--seeds 42 1 2] [--epochs N] [--output FILE]

Writes bench/results-class-weight.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train import kerapipe_command, run_timed  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = "pipelines/imbalanced.yaml"
RESULTS = ROOT / "bench" / "results-class-weight.json"
KEYS = ("recall", "accuracy", "wall", "fit")
SIDES = {"unweighted": ["--set", "train.class_weight=null"], "balanced": []}


def run_side(side: str, seed: int, epochs: int | None, output: Path) -> dict[str, Any]:
    """One `kerapipe run` of the example: its test recall and accuracy, and wall time."""
    command = [*kerapipe_command(), "run", PIPELINE, "--set", f"seed={seed}",
               "--output", str(output / f"{side}-{seed}"), *SIDES[side]]
    if epochs is not None:
        command += ["--set", f"train.epochs={epochs}"]
    timed = run_timed(command)
    folder = next(text.split(": ", 1)[1] for _, stream, text in timed["lines"]
                  if stream == "out" and text.startswith("run folder: "))
    fit = next(float(text.split("(", 1)[1].split(" s training")[0])
               for _, stream, text in timed["lines"]
               if stream == "out" and text.startswith("epochs: ") and " s training" in text)
    metrics = json.loads((Path(folder) / "metrics.json").read_text())
    run = {"side": side, "seed": seed, "recall": metrics["test"]["recall"],
           "accuracy": metrics["test"]["accuracy"], "wall": timed["wall"], "fit": fit,
           "epochs_run": metrics["epochs_run"]}
    print(f"{side:>10} seed {seed:>3}: fraud recall {run['recall']:.3f}, accuracy "
          f"{run['accuracy']:.4f}, wall {run['wall']:.1f} s (fit {fit:.1f} s)", flush=True)
    return run


def benchmark(seeds: list[int], epochs: int | None) -> dict[str, Any]:
    """Both sides for every seed (alternating order); medians and balanced/unweighted
    ratios."""
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kerapipe-class-weight-") as tmp:
        for index, seed in enumerate(seeds):
            order = list(SIDES) if index % 2 == 0 else list(reversed(SIDES))
            runs += [run_side(side, seed, epochs, Path(tmp)) for side in order]
    medians = {side: {key: statistics.median(r[key] for r in runs if r["side"] == side)
                      for key in KEYS} for side in SIDES}
    ratios = {key: medians["balanced"][key] / medians["unweighted"][key]
              for key in KEYS if medians["unweighted"][key]}
    return {"pipeline": PIPELINE, "seeds": seeds, "epochs": epochs, "runs": runs,
            "medians": medians, "balanced_over_unweighted": ratios}


def print_table(result: dict[str, Any]) -> None:
    """Per seed and median: recall, accuracy, wall of each side; the ratio column."""
    rows = [("", "fraud recall", "accuracy", "wall s", "fit s")]
    for seed in result["seeds"]:
        for side in SIDES:
            run = next(r for r in result["runs"] if r["side"] == side and r["seed"] == seed)
            rows.append((f"{side} seed {seed}", f"{run['recall']:.3f}", f"{run['accuracy']:.4f}",
                         f"{run['wall']:.1f}", f"{run['fit']:.1f}"))
    for side in SIDES:
        m = result["medians"][side]
        rows.append((f"{side} median", f"{m['recall']:.3f}", f"{m['accuracy']:.4f}",
                     f"{m['wall']:.1f}", f"{m['fit']:.1f}"))
    r = result["balanced_over_unweighted"]
    rows.append(("balanced / unweighted", f"{r.get('recall', float('nan')):.2f}x",
                 f"{r['accuracy']:.3f}x", f"{r['wall']:.2f}x", f"{r['fit']:.2f}x"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.rjust(w) if i else cell.ljust(w)
                        for i, (cell, w) in enumerate(zip(row, widths))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--epochs", type=int, default=None,
                        help="train.epochs of both sides (default: the file's)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = benchmark(args.seeds, args.epochs)
    print_table(result)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
