"""Time `kerapipe validate pipelines/` against `python -c "import tensorflow"`.

Both commands run as fresh processes, alternating A B A B, so that drift on a shared
machine hits both sides alike; the report gives medians and their ratio. A third
command validates a generated graph pipeline of 200 layers in 20 blocks (each block of
10 layers with a skip connection, used once): its time is reported beside them.

    python bench/validate.py [--pairs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def kerapipe_command() -> list[str]:
    script = Path(sys.executable).with_name("kerapipe")
    exe = str(script) if script.exists() else shutil.which("kerapipe")
    return [exe] if exe else [sys.executable, "-m", "kerapipe"]


# Every command runs with Python's bytecode cache allowed, as an installed kerapipe has it
# (pip byte-compiles a package when it installs it, TensorFlow's included); a machine that
# sets PYTHONDONTWRITEBYTECODE and has never run kerapipe's sources compiles them in every
# process (~0.09 s of a validate), which measures the environment, not kerapipe.
_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def wall_time(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True,
                          env={**_ENV, "TF_CPP_MIN_LOG_LEVEL": "3"})
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout.decode()}{done.stderr.decode()}")
    return elapsed


VALIDATE = "kerapipe validate pipelines/"
IMPORT_TF = 'python -c "import tensorflow"'
GRAPH = "kerapipe validate <200 layers, 20 blocks>"


def graph_pipeline(blocks: int = 20, layers: int = 10) -> str:
    """A valid pipeline of ``blocks`` blocks of ``layers`` layers each (a Dense chain whose
    last layer adds the block's input back), every block used once: 200 layers in 20
    blocks by default."""
    lines = ["kerapipe: 1", "name: graph-200", "data:", "  source: {sample: mnist}",
             "  preprocess: [{rescale: 1/255}, {reshape: [784]}]", "model:", "  blocks:"]
    for block in range(blocks):
        lines += [f"    block_{block}:", "      params: {units: {type: int, default: 16}}",
                  "      layers:"]
        lines += [f"        - Dense: {{units: $units, activation: relu, name: d{i}}}"
                  for i in range(layers - 1)]
        lines += ["        - Add: {}", f"          inputs: [input, d{layers - 2}]"]
    lines += ["  layers:", "    - Dense: {units: 16, name: stem}"]
    lines += [f"    - block_{block}: {{name: stage{block}}}" for block in range(blocks)]
    lines += ["    - Dense: {units: 10}", "train: {epochs: 1}", ""]
    return "\n".join(lines)


def benchmark(pairs: int = 5) -> dict:
    """Alternate the two commands `pairs` times (after one untimed warm-up of each).

    Returns the raw seconds per command, their medians, and how many times faster
    validate is than importing TensorFlow (ratio of medians).
    """
    validate = kerapipe_command() + ["validate", "pipelines/"]
    import_tf = [sys.executable, "-c", "import tensorflow"]
    with tempfile.TemporaryDirectory(prefix="kerapipe-bench-") as folder:
        graph_file = Path(folder) / "graph-200.yaml"
        graph_file.write_text(graph_pipeline())
        graph = kerapipe_command() + ["validate", "--strict", str(graph_file)]
        wall_time(validate)  # warm the file and bytecode caches for both sides before timing
        wall_time(import_tf)
        wall_time(graph)
        times: dict[str, list[float]] = {VALIDATE: [], IMPORT_TF: [], GRAPH: []}
        for _ in range(pairs):
            times[VALIDATE].append(wall_time(validate))
            times[IMPORT_TF].append(wall_time(import_tf))
            times[GRAPH].append(wall_time(graph))
    med = {name: statistics.median(values) for name, values in times.items()}
    return {"pairs": pairs, "seconds": times, "medians": med,
            "times_faster": med[IMPORT_TF] / med[VALIDATE]}


def print_table(result: dict) -> None:
    print(f"{'command':<42}{'median s':>10}{'min s':>10}{'max s':>10}")
    for name, values in result["seconds"].items():
        print(f"{name:<42}{result['medians'][name]:>10.3f}{min(values):>10.3f}{max(values):>10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="A/B pairs to run (default 5)")
    args = parser.parse_args()
    result = benchmark(args.pairs)
    print_table(result)
    print(f"\nvalidate is {result['times_faster']:.1f}x faster than importing TensorFlow "
          f"({args.pairs} alternating pairs, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
