"""Train the MNIST CNN by hand with Keras (A) and with `kerapipe run` (B), and compare.

Both sides train the same model on the same examples (pipelines/mnist.yaml: the bundled
5,000-digit sample, seeded stratified 4000/500/500 split, batch 64, Adam 1e-3, early
stopping on val_loss). A is bench/mnist_keras.py, a plain script with NumPy arrays; B is
`kerapipe run pipelines/mnist.yaml --set train.epochs=E --output <tmp>`. Each run is a
fresh process; the sides alternate A B A B so that drift on a shared machine hits both
alike, and the report gives medians and B/A ratios of:

* wall time of the whole process (start to exit), and its phases, timed from the lines
  the process prints (Keras prints "Epoch i/E" when an epoch begins and one line when
  it ends, flushed; each line is stamped when it arrives here): start-up (to "Epoch 1"),
  first epoch, steady-state epoch (median of epochs 2..n), fit, and after fit (to exit);
* CPU time (user + system) and peak RSS of each process (``/usr/bin/time -f "%U %S %M"``):
  on a shared machine CPU seconds move much less than wall seconds, and the fastest
  steady epoch is the one least disturbed by other work, so both are reported too;
* test accuracy and epochs run (A: its JSON line; B: metrics.json of its run folder).

    python bench/train.py [--pairs 3] [--epochs 15] [--quick]

Writes bench/results-train.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = "pipelines/mnist.yaml"
RESULTS = ROOT / "bench" / "results-train.json"
GNU_TIME = "/usr/bin/time"
TARGET_RATIO = 1.05  # kerapipe wall time / hand-written wall time
TARGET_POINTS = 1.0  # test accuracy difference, percentage points

EPOCH_BEGIN = re.compile(r"^Epoch (\d+)/(\d+)\s*$")
EPOCH_END = re.compile(r"^\s*(\d+)/(\d+) - \d+s - ")  # verbose=2: "63/63 - 3s - 41ms/step - ..."

SIDES = ("keras", "kerapipe")
LABELS = {"keras": "A hand-written Keras", "kerapipe": "B kerapipe run"}


def kerapipe_command() -> list[str]:
    script = Path(sys.executable).with_name("kerapipe")
    exe = str(script) if script.exists() else shutil.which("kerapipe")
    return [exe] if exe else [sys.executable, "-m", "kerapipe"]


def run_timed(command: list[str]) -> dict[str, Any]:
    """Run one fresh process; wall time, peak RSS and every output line with its time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as rss_file:
        wrapped = ([GNU_TIME, "-f", "%U %S %M", "-o", rss_file.name] + command
                   if os.access(GNU_TIME, os.X_OK) else command)
        lines: list[tuple[float, str, str]] = []
        load = os.getloadavg()[0]
        start = time.perf_counter()
        proc = subprocess.Popen(wrapped, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, bufsize=1)

        def pump(stream, name):
            for line in stream:
                lines.append((time.perf_counter() - start, name, line.rstrip("\n")))

        readers = [threading.Thread(target=pump, args=(proc.stdout, "out")),
                   threading.Thread(target=pump, args=(proc.stderr, "err"))]
        for reader in readers:
            reader.start()
        code = proc.wait()
        wall = time.perf_counter() - start
        for reader in readers:
            reader.join()
        rss_text = rss_file.read().strip().splitlines()
    if code != 0:
        tail = "\n".join(text for _, _, text in lines[-40:])
        raise SystemExit(f"{' '.join(command)} failed with exit code {code}:\n{tail}")
    lines.sort(key=lambda item: item[0])
    usage = rss_text[-1].split() if rss_text else []  # last line: after any exit message
    cpu = float(usage[0]) + float(usage[1]) if len(usage) == 3 else None
    rss_mib = int(usage[2]) / 1024 if len(usage) == 3 else None
    return {"wall": wall, "lines": lines, "rss_mib": rss_mib, "cpu": cpu, "load_before": load}


def phases(wall: float, lines: list[tuple[float, str, str]]) -> dict[str, Any]:
    """Epoch begin/end stamps -> start-up, per-epoch seconds, fit and after-fit seconds."""
    begins = [t for t, stream, text in lines if stream == "out" and EPOCH_BEGIN.match(text)]
    ends = [t for t, stream, text in lines if stream == "out" and EPOCH_END.match(text)]
    if not ends:
        return {}
    if len(begins) != len(ends):  # a single epoch prints no "Epoch 1/1" line
        return {"after_fit": wall - ends[-1]}
    epochs = [end - begin for begin, end in zip(begins, ends)]
    last_output = max(t for t, _, _ in lines)  # A: its JSON line; B: its summary
    return {
        "startup": begins[0],
        "first_epoch": epochs[0],
        "steady_epoch": statistics.median(epochs[1:]) if len(epochs) > 1 else None,
        "fastest_epoch": min(epochs[1:]) if len(epochs) > 1 else None,
        "fit": ends[-1] - begins[0],
        "after_fit": wall - ends[-1],
        "after_fit_work": last_output - ends[-1],
        "exit": wall - last_output,
        "epoch_seconds": [round(s, 3) for s in epochs],
    }


def run_keras(epochs: int) -> dict[str, Any]:
    done = run_timed([sys.executable, "bench/mnist_keras.py", "--epochs", str(epochs)])
    report = json.loads(next(text for _, stream, text in reversed(done["lines"])
                             if stream == "out" and text.startswith("{")))
    timed = phases(done["wall"], done["lines"])
    callback = report["epoch_seconds"]
    # Cross-check of the line-stamp timing against an in-process callback.
    stamp_error = (max(abs(a - b) for a, b in zip(timed["epoch_seconds"], callback))
                   if timed.get("epoch_seconds") and len(callback) == len(timed["epoch_seconds"])
                   else None)
    return {"wall": done["wall"], "cpu": done["cpu"], "rss_mib": done["rss_mib"],
            "load_before": done["load_before"], "test_accuracy": report["test_accuracy"],
            "epochs_run": report["epochs_run"], "in_process_fit": report["fit_seconds"],
            "callback_epoch_seconds": callback, "stamp_vs_callback_max_error": stamp_error, **timed}


def run_kerapipe(epochs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kerapipe-bench-") as out:
        done = run_timed(kerapipe_command() + ["run", PIPELINE, "--set", f"train.epochs={epochs}",
                                               "--output", out])
        folders = [p for p in Path(out).iterdir() if p.is_dir()]
        if len(folders) != 1:
            raise SystemExit(f"expected one run folder in {out}, found {folders}")
        metrics = json.loads((folders[0] / "metrics.json").read_text())
        record = json.loads((folders[0] / "run.json").read_text())
    seconds = record["seconds"]
    return {"wall": done["wall"], "cpu": done["cpu"], "rss_mib": done["rss_mib"],
            "load_before": done["load_before"], "test_accuracy": metrics["test"]["accuracy"],
            "test_accuracy_argmax": metrics["test_accuracy_argmax"],
            "epochs_run": metrics["epochs_run"], "in_process_fit": seconds["fit"],
            "run_json_seconds": seconds, "splits": record["data"]["splits"],
            **phases(done["wall"], done["lines"])}


def median(runs: list[dict], key: str) -> Optional[float]:
    values = [run[key] for run in runs if run.get(key) is not None]
    return statistics.median(values) if values else None


ROWS = [  # (key, label, format, ratio?)
    ("wall", "wall time, whole process (s)", "{:.2f}", True),
    ("startup", "  start-up, to 'Epoch 1' (s)", "{:.2f}", True),
    ("first_epoch", "  first epoch (s)", "{:.2f}", True),
    ("steady_epoch", "  steady epoch, median 2..n (s)", "{:.3f}", True),
    ("fastest_epoch", "  fastest epoch of 2..n (s)", "{:.3f}", True),
    ("fit", "  fit, epoch 1 start..last end (s)", "{:.2f}", True),
    ("after_fit", "  after fit, to exit (s)", "{:.2f}", True),
    ("after_fit_work", "    evaluate (+B: predict, save)", "{:.2f}", True),
    ("exit", "    interpreter exit (s)", "{:.2f}", True),
    ("cpu", "CPU time, user + system (s)", "{:.1f}", True),
    ("epochs_run", "epochs run", "{:.0f}", False),
    ("test_accuracy", "test accuracy", "{:.4f}", False),
    ("rss_mib", "peak RSS (MiB)", "{:.0f}", True),
]


def benchmark(pairs: int, epochs: int) -> dict[str, Any]:
    """Run `pairs` alternating A/B pairs of `epochs` epochs; medians, B/A ratios, raw runs.

    Prints one line per finished process (so a long run shows progress); returns what
    bench/results-train.json holds (without the command line).
    """
    # Warm the file cache for both sides alike (TensorFlow, Keras, kerapipe) before timing.
    subprocess.run([sys.executable, "-c", "import keras, kerapipe.pipeline"],
                   cwd=ROOT, check=True, capture_output=True)

    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    for pair in range(pairs):
        for side in SIDES:
            run = run_keras(epochs) if side == "keras" else run_kerapipe(epochs)
            run["pair"] = pair + 1
            runs[side].append(run)
            print(f"pair {pair + 1}/{pairs} {LABELS[side]:<22} wall {run['wall']:6.2f} s  "
                  f"epochs {run['epochs_run']:2d}  steady epoch "
                  f"{run.get('steady_epoch') or float('nan'):.3f} s  CPU {run['cpu'] or 0:.1f} s  "
                  f"test acc {run['test_accuracy']:.4f}  RSS {run['rss_mib'] or 0:.0f} MiB  "
                  f"(load {run['load_before']:.2f})", flush=True)

    medians = {side: {key: median(runs[side], key) for key, *_ in ROWS} for side in SIDES}
    for side in SIDES:
        medians[side]["in_process_fit_per_epoch"] = statistics.median(
            r["in_process_fit"] / r["epochs_run"] for r in runs[side])
    ratios = {key: medians["kerapipe"][key] / medians["keras"][key]
              for key, _, _, ratio in ROWS
              if ratio and medians["keras"][key] and medians["kerapipe"][key] is not None}
    points = 100 * abs(medians["kerapipe"]["test_accuracy"] - medians["keras"]["test_accuracy"])
    stamp_errors = [r["stamp_vs_callback_max_error"] for r in runs["keras"]
                    if r["stamp_vs_callback_max_error"] is not None]
    return {
        "pairs": pairs, "epochs": epochs, "cpus": os.cpu_count(),
        "platform": platform.platform(), "python": platform.python_version(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "sides": {"keras": "python bench/mnist_keras.py --epochs E",
                  "kerapipe": f"kerapipe run {PIPELINE} --set train.epochs=E --output <tmp>"},
        "medians": medians, "ratios_b_over_a": ratios,
        "accuracy_difference_points": points,
        "stamp_vs_callback_max_error": max(stamp_errors) if stamp_errors else None,
        "targets": {"wall_ratio_max": TARGET_RATIO, "wall_ratio_met": ratios["wall"] <= TARGET_RATIO,
                    "accuracy_points_max": TARGET_POINTS, "accuracy_met": points <= TARGET_POINTS},
        "runs": runs,
    }


def print_table(result: dict[str, Any]) -> None:
    """The medians of both sides and their B/A ratio, one row per measure."""
    medians, ratios = result["medians"], result["ratios_b_over_a"]
    a, b = LABELS["keras"], LABELS["kerapipe"]
    print(f"\n{'median of ' + str(result['pairs']) + ' pair(s), ' + str(result['epochs']) + ' epochs':<36}"
          f"{a:>22}{b:>17}{'B/A':>8}")
    for key, label, fmt, ratio in ROWS:
        cells = [fmt.format(medians[s][key]) if medians[s][key] is not None else "-"
                 for s in SIDES]
        tail = f"{ratios[key]:.3f}" if key in ratios else ""
        print(f"{label:<36}{cells[0]:>22}{cells[1]:>17}{tail:>8}")
    print(f"{'  in-process fit s / epochs run':<36}"
          f"{medians['keras']['in_process_fit_per_epoch']:>22.3f}"
          f"{medians['kerapipe']['in_process_fit_per_epoch']:>17.3f}")
    if result["stamp_vs_callback_max_error"] is not None:
        print(f"(epoch times come from output-line stamps; on side A they agree with an "
              f"in-process callback to within {result['stamp_vs_callback_max_error'] * 1000:.0f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=None, help="A/B pairs (default 3)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 15)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 epochs, 1 pair")
    args = parser.parse_args()
    pairs = args.pairs or (1 if args.quick else 3)
    epochs = args.epochs or (3 if args.quick else 15)

    result = benchmark(pairs, epochs)
    print_table(result)
    ratios, points, targets = (result["ratios_b_over_a"], result["accuracy_difference_points"],
                               result["targets"])
    print(f"\nwall time B/A {ratios['wall']:.3f} (target <= {TARGET_RATIO}): "
          f"{'met' if targets['wall_ratio_met'] else 'NOT met'}")
    print(f"test accuracy difference {points:.2f} points (target <= {TARGET_POINTS:g}): "
          f"{'met' if targets['accuracy_met'] else 'NOT met'}")
    print(f"{pairs} alternating pair(s), {os.cpu_count()} CPUs; wrote "
          f"{RESULTS.relative_to(ROOT)}")
    RESULTS.write_text(json.dumps({
        "command": " ".join(["python", "bench/train.py", *sys.argv[1:]]), **result,
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
