"""Does the cost per example stay flat, and memory stay put, as the data set grows?

Two file sources, each generated at 1x, 4x and 16x rows into a temporary folder:

* **csv**: 1x = 20,000 rows of 16 float features and a string label of 4 classes;
* **images**: 1x = 8,000 PNG files, 32x32 RGB, in 4 class folders (at 500 or 2,000 a
  steady epoch of the tiny model lasted 0.04-0.2 s, and the fixed cost of each epoch,
  the iterator start and buffers filling before the first step, dominated the time per
  sample).

Each (source, scale) runs in these data configurations (``--set`` overrides):

* ``auto``: the defaults, ``data.cache: auto`` and ``data.shuffle: 10000``; the in-memory
  cache is used while it fits the budget, so memory grows with the data *by design*;
* ``stream``: ``--set data.cache=false``, the streaming configuration: nothing holds the
  data set; image folders draw a full permutation of their file paths every epoch (8
  bytes a file; ``data.shuffle`` does not apply) and decode after, CSV rows are parsed by
  tf.data in blocks of lines and shuffled in a buffer of ``data.shuffle`` (10,000) rows.

For each (source, configuration, scale) a fresh process runs ``compile_pipeline`` on a
tiny model (csv: normalize + Dense 32 + Dense 4; images: rescale + Flatten + Dense 4),
then ``compiled.fit`` (as ``kerapipe run`` trains: one iterator over the repeated train
split; no validation) for one epoch and then the *steady window*: 48 epochs at 1x, 12 at
4x, 3 at 16x, so that every scale's window trains the same number of examples and lasts
about as long, so that pauses caused by other users of a shared machine hit every scale
alike. (With the median of 3 steady epochs at every scale, a 1x epoch lasted 0.15-0.5 s
and a 16x one 3-10 s, and the 1x figures swung most: cached 1x images gave 24-38 us a
sample across runs. In three alternating pairs, 1x over 12 epochs gave 31-33 us and 4x
over 3 epochs 29-31 us.) It reports:

* **steady time per sample**: the window's seconds (epochs timed by a Keras callback,
  ``on_epoch_begin`` -> ``on_epoch_end``, so costs paid once per epoch stay in) / the
  examples it trained: the cost per example once the fixed start-up (tracing, the first
  pass and cache fill) is paid; with the first epoch's time per sample and the window's
  CPU time per sample (process CPU seconds, all threads), as information;
* **load**: ``compile_pipeline`` seconds (reading, checking and splitting the files);
* **peak RSS**: VmHWM of the process at its end, with VmRSS after importing TensorFlow,
  after ``compile_pipeline`` and at the end of each epoch, to tell the data's share from the
  libraries'.

Runs alternate in rounds (every cell once, then again, ...) so that load from other users
of the machine hits them alike; medians over rounds. Targets: steady time per sample within
15% of 1x (``auto`` and ``stream``); peak RSS growth 1x -> 16x under 10% when streaming
(``stream``); the RSS of ``auto`` is information.

    python bench/scale.py [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MARK = "SCALE-RESULT "
SCALES = (1, 4, 16)
BASE = {"csv": 20_000, "images": 8_000}  # rows at 1x
QUICK_BASE = {"csv": 5_000, "images": 500}
CLASSES = ("alpha", "beta", "gamma", "delta")
TIME_TOLERANCE, RSS_GROWTH_MAX = 0.15, 0.10
STEADY_EPOCHS_AT_16X = 3  # the steady window: this many epochs at 16x, as many examples at 1x, 4x


def steady_epochs(scale: int) -> int:
    """Epochs in the steady window at `scale`: the same number of examples at every scale."""
    return STEADY_EPOCHS_AT_16X * max(SCALES) // scale
# name -> (--set overrides, label); the pipeline's own values are cache: auto, shuffle: 10000
CONFIGS: dict[str, tuple[list[str], str]] = {
    "auto": ([], "cache auto (in-memory cache within budget, grows with data by design)"),
    "stream": (["data.cache=false"], "streaming: cache=false, default shuffle 10000"),
}
CONFIG_KINDS: dict[str, tuple[str, ...]] = {}  # configurations run for some sources only
TIME_CONFIGS = ("auto", "stream")  # steady time per sample is a target in these
RSS_CONFIGS = ("stream",)  # peak RSS growth is a target in these


def make_csv(path: Path, rows: int) -> None:
    """`rows` rows: f0..f15 (floats whose mean depends on the class) and a string label."""
    rng = np.random.default_rng(rows)
    labels = rng.integers(0, len(CLASSES), rows)
    x = rng.normal(size=(rows, 16)) + labels[:, None] * 0.5
    with path.open("w") as f:
        f.write(",".join(f"f{i}" for i in range(16)) + ",label\n")
        for row, label in zip(x, labels):
            f.write(",".join(f"{v:.5f}" for v in row) + f",{CLASSES[label]}\n")


def make_images(folder: Path, count: int) -> None:
    """`count` 32x32 RGB PNG files in one sub-folder per class (colour tinted by class)."""
    from PIL import Image

    rng = np.random.default_rng(count)
    for name in CLASSES:
        (folder / name).mkdir(parents=True)
    for i in range(count):
        label = i % len(CLASSES)
        pixels = rng.integers(0, 192, (32, 32, 3), dtype=np.uint8)
        pixels[..., label % 3] += 63
        Image.fromarray(pixels).save(folder / CLASSES[label] / f"{i:06d}.png")


def pipeline(kind: str, path: str) -> dict[str, Any]:
    """The tiny pipeline (a dict for compile_pipeline) over the generated data at `path`."""
    if kind == "csv":
        source = {"csv": {"path": path, "label": "label"}}
        preprocess = [{"normalize": {}}]
        layers = [{"Dense": {"units": 32, "activation": "relu"}}, {"Dense": {"units": 4}}]
    else:
        source = {"images": {"dir": path, "image_size": [32, 32]}}
        preprocess = [{"rescale": 1 / 255}]
        layers = [{"Flatten": {}}, {"Dense": {"units": 4}}]
    return {"kerapipe": 1, "name": f"scale-{kind}", "seed": 42,
            "data": {"source": source, "split": {"validation": 0.1, "test": 0.1},
                     "preprocess": preprocess, "batch_size": 64, "shuffle": 10000},
            "model": {"layers": layers}, "loss": "sparse_categorical_crossentropy",
            "optimizer": {"name": "adam", "learning_rate": 0.001}, "metrics": ["accuracy"],
            "train": {"epochs": 1 + steady_epochs(1)}}


def memory_mib() -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak so far) of this process, MiB."""
    status = Path("/proc/self/status").read_text().splitlines()
    values = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in status
              if line.startswith(("VmRSS:", "VmHWM:"))}
    return {"rss": values["VmRSS"], "peak": values["VmHWM"]}


def child(kind: str, path: str, config: str, window: int) -> dict[str, Any]:
    """One (source, scale, configuration) in this process: compile, fit 1 + `window` epochs;
    times, memory."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import tensorflow  # noqa: F401  (imported before the baseline memory reading)

    from kerapipe import compile_pipeline

    overrides = CONFIGS[config][0]
    after_import = memory_mib()
    start = time.perf_counter()
    compiled = compile_pipeline(pipeline(kind, path), overrides)
    load_seconds = time.perf_counter() - start
    after_compile = memory_mib()

    class EpochTimer(keras.callbacks.Callback):
        """Wall seconds of every epoch and to the end of its first step, and the RSS at its end."""

        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self.cpu_seconds: list[float] = []
            self.first_step: list[float] = []
            self.rss: list[float] = []

        def on_epoch_begin(self, epoch, logs=None) -> None:
            self.began = time.perf_counter()
            self.cpu_began = time.process_time()

        def on_train_batch_end(self, batch, logs=None) -> None:
            if batch == 0:
                self.first_step.append(time.perf_counter() - self.began)

        def on_epoch_end(self, epoch, logs=None) -> None:
            self.seconds.append(time.perf_counter() - self.began)
            self.cpu_seconds.append(time.process_time() - self.cpu_began)
            self.rss.append(memory_mib()["rss"])

    timer = EpochTimer()
    start = time.perf_counter()
    compiled.fit(epochs=1 + window, verbose=0, callbacks=[timer], validation_data=None)
    fit_seconds = time.perf_counter() - start
    end = memory_mib()
    samples = len(compiled.data.train)
    steady = sum(timer.seconds[1:]) / window  # seconds per epoch over the window
    from kerapipe.compiler.datasets import use_cache

    return {"kind": kind, "config": config, "overrides": overrides,
            "cache_used": use_cache(compiled.spec, compiled.data.train, compiled.preprocessing),
            "shuffle": compiled.spec.data.shuffle, "train_samples": samples,
            "load_seconds": load_seconds, "fit_seconds": fit_seconds,
            "epoch_seconds": timer.seconds, "epoch_first_step_seconds": timer.first_step,
            "steady_seconds": steady, "epoch_cpu_seconds": timer.cpu_seconds,
            "steady_epochs": window, "steady_cpu_us_per_sample":
            1e6 * sum(timer.cpu_seconds[1:]) / window / samples,
            "steady_first_step_ms": 1e3 * statistics.median(timer.first_step[1:]),
            "first_epoch_us_per_sample":
            1e6 * timer.seconds[0] / samples, "steady_us_per_sample": 1e6 * steady / samples,
            "rss_after_import_mib": after_import["rss"],
            "rss_after_compile_mib": after_compile["rss"], "rss_epoch_end_mib": timer.rss,
            "rss_end_mib": end["rss"], "peak_rss_mib": end["peak"]}


def run_child(kind: str, path: Path, config: str, window: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", kind, str(path), config,
                           str(window)],
                          cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"scale child {kind} {path} {config} failed:\n"
                           f"{(done.stdout + done.stderr)[-2000:]}")
    return json.loads(lines[-1][len(MARK):])


MEDIANS = ("load_seconds", "fit_seconds", "first_epoch_us_per_sample", "steady_us_per_sample",
           "steady_seconds", "steady_first_step_ms", "steady_cpu_us_per_sample",
           "rss_after_import_mib", "rss_after_compile_mib", "peak_rss_mib")


def benchmark(rounds: int = 3, quick: bool = False) -> dict[str, Any]:
    """Generate the data, run every (source, configuration, scale) `rounds` times in turn;
    medians over rounds, ratios against 1x."""
    base = QUICK_BASE if quick else BASE
    folder = Path(tempfile.mkdtemp(prefix="kerapipe-scale-"))
    samples: dict[str, dict[str, dict[int, list[dict]]]] = {
        k: {c: {s: [] for s in SCALES} for c in CONFIGS if k in CONFIG_KINDS.get(c, (k,))}
        for k in BASE}
    try:
        paths: dict[tuple[str, int], Path] = {}
        start = time.perf_counter()
        for scale in SCALES:
            paths["csv", scale] = folder / f"csv-{scale}x.csv"
            make_csv(paths["csv", scale], base["csv"] * scale)
            paths["images", scale] = folder / f"images-{scale}x"
            make_images(paths["images", scale], base["images"] * scale)
        print(f"  generated data in {time.perf_counter() - start:.1f} s", flush=True)
        sizes = {f"{kind} {scale}x": {"rows": base[kind] * scale,
                                      "mib": round(disk_mib(paths[kind, scale]), 1)}
                 for kind, scale in paths}
        for r in range(rounds):
            for kind in BASE:
                for config in samples[kind]:
                    for scale in SCALES:
                        run = run_child(kind, paths[kind, scale], config,
                                        steady_epochs(scale))
                        samples[kind][config][scale].append(run)
                        window = run["epoch_seconds"][1:]
                        print(f"  round {r + 1}/{rounds} {kind:<6} {config:<9} {scale:>2}x  "
                              f"epoch 1 {run['epoch_seconds'][0]:.2f} s, {len(window)} more "
                              f"{min(window):.2f}..{max(window):.2f} s  "
                              f"steady {run['steady_us_per_sample']:6.1f} us/sample "
                              f"(CPU {run['steady_cpu_us_per_sample']:6.1f})  "
                              f"peak RSS {run['peak_rss_mib']:4.0f} MiB", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rows: dict[str, dict[str, dict[str, dict]]] = {}
    for kind, by_config in samples.items():
        rows[kind] = {}
        for config, by_scale in by_config.items():
            table = rows[kind][config] = {}
            for scale, runs in by_scale.items():
                row = {"rows": base[kind] * scale, "train_samples": runs[0]["train_samples"],
                       "cache_used": runs[0]["cache_used"], "shuffle": runs[0]["shuffle"]}
                row.update({key: statistics.median(run[key] for run in runs) for key in MEDIANS})
                table[f"{scale}x"] = row
            one, before = table["1x"], None
            for row in table.values():
                # us per extra example between this scale's steady epoch and the one before:
                # the cost per example with any fixed cost per epoch taken out
                row["marginal_us_per_sample"] = None if before is None else 1e6 * (
                    row["steady_seconds"] - before["steady_seconds"]) / (
                    row["train_samples"] - before["train_samples"])
                before = row
                row["time_vs_1x"] = row["steady_us_per_sample"] / one["steady_us_per_sample"]
                row["cpu_vs_1x"] = (row["steady_cpu_us_per_sample"]
                                    / one["steady_cpu_us_per_sample"])
                row["first_epoch_vs_1x"] = (row["first_epoch_us_per_sample"]
                                            / one["first_epoch_us_per_sample"])
                row["rss_vs_1x"] = row["peak_rss_mib"] / one["peak_rss_mib"]
                row["time_met"] = abs(row["time_vs_1x"] - 1) <= TIME_TOLERANCE
            table["16x"]["rss_met"] = table["16x"]["rss_vs_1x"] - 1 < RSS_GROWTH_MAX
    return {"rounds": rounds, "quick": quick,
            "steady_epochs": {f"{scale}x": steady_epochs(scale) for scale in SCALES},
            "sizes": sizes,
            "configs": {name: {"overrides": o, "label": label}
                        for name, (o, label) in CONFIGS.items()},
            "rows": rows, "samples": samples,
            "targets": {"time_vs_1x_tolerance": TIME_TOLERANCE, "rss_growth_max": RSS_GROWTH_MAX,
                        "time_configs": list(TIME_CONFIGS), "rss_configs": list(RSS_CONFIGS)}}


def disk_mib(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def print_table(result: dict[str, Any]) -> None:
    """One row per (source, configuration, scale): sizes, load, time per sample, RSS vs 1x."""
    print(f"{'source':<22}{'rows':>7}{'MiB':>6}{'train':>7}{'load s':>7}{'epoch1':>7}"
          f"{'steady':>7}{'vs 1x':>6}{'CPU':>7}{'vs 1x':>6}{'step1 ms':>9}{'marginal':>9}"
          f"{'RSS import':>11}"
          f"{'compile':>8}{'peak':>6}{'vs 1x':>6}  targets")
    for kind, by_config in result["rows"].items():
        for config, by_scale in by_config.items():
            for scale, row in by_scale.items():
                size = result["sizes"][f"{kind} {scale}"]
                verdicts = []
                if config in TIME_CONFIGS:
                    verdicts.append("time " + ("met" if row["time_met"] else "NOT met"))
                if "rss_met" in row:
                    verdicts.append(("RSS " + ("met" if row["rss_met"] else "NOT met"))
                                    if config in RSS_CONFIGS else "RSS info")
                marginal = ("-" if row["marginal_us_per_sample"] is None
                            else f"{row['marginal_us_per_sample']:.1f}")
                name = f"{kind} {config} {scale}"
                print(f"{name:<22}{row['rows']:>7}{size['mib']:>6.1f}{row['train_samples']:>7}"
                      f"{row['load_seconds']:>7.2f}{row['first_epoch_us_per_sample']:>7.0f}"
                      f"{row['steady_us_per_sample']:>7.1f}{row['time_vs_1x']:>6.2f}"
                      f"{row['steady_cpu_us_per_sample']:>7.1f}{row['cpu_vs_1x']:>6.2f}"
                      f"{row['steady_first_step_ms']:>9.1f}{marginal:>9}"
                      f"{row['rss_after_import_mib']:>11.0f}{row['rss_after_compile_mib']:>8.0f}"
                      f"{row['peak_rss_mib']:>6.0f}{row['rss_vs_1x']:>6.2f}  {', '.join(verdicts)}")
    window = ", ".join(f"{n} at {scale}" for scale, n in result["steady_epochs"].items())
    print(f"(medians of {result['rounds']} round(s), one fresh process per row, compiled.fit "
          f"for 1 epoch + a steady window of the same examples at every scale ({window} "
          f"epochs);\n epoch1 / steady: us per train example in epoch 1 (tracing, first "
          f"pass, cache fill) / over the window, epochs timed on_epoch_begin -> "
          f"on_epoch_end;\n CPU: the window in CPU seconds of the process (all "
          f"its threads) per train example (information);\n step1 ms: window epochs, epoch start to the end of their first "
          f"step (the shuffle buffer refilling: a cost per epoch);\n marginal: steady us per "
          f"extra train example since the scale before (costs per epoch taken out);\n RSS in "
          f"MiB: after importing TensorFlow, after compile_pipeline, peak (VmHWM);\n "
          "configurations: " + "; ".join(f"{name} = {label}" + (
              f" [--set {' '.join(o)}]" if o else "")
              for name, (o, label) in CONFIGS.items())
          + f";\n targets: steady us/sample within {TIME_TOLERANCE:.0%} of 1x "
          f"({', '.join(TIME_CONFIGS)}), peak RSS 1x -> 16x under +{RSS_GROWTH_MAX:.0%} "
          f"({', '.join(RSS_CONFIGS)}); other RSS is information)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3; quick 1)")
    parser.add_argument("--quick", action="store_true", help="1 round, 1x = 5,000 rows / 500 images")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, path, config, window = args.child
        print(MARK + json.dumps(child(kind, path, config, int(window))), flush=True)
        return
    print_table(benchmark(args.rounds or (1 if args.quick else 3), args.quick))


if __name__ == "__main__":
    main()
