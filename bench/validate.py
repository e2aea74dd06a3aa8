"""Time `kerapipe validate pipelines/` against `python -c "import tensorflow"`.

Both commands run as fresh processes, alternating A B A B, so that drift on a shared
machine hits both sides alike; the report gives medians and their ratio.

    python bench/validate.py [--pairs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def kerapipe_command() -> list[str]:
    script = Path(sys.executable).with_name("kerapipe")
    exe = str(script) if script.exists() else shutil.which("kerapipe")
    return [exe] if exe else [sys.executable, "-m", "kerapipe"]


def wall_time(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout.decode()}{done.stderr.decode()}")
    return elapsed


VALIDATE = "kerapipe validate pipelines/"
IMPORT_TF = 'python -c "import tensorflow"'


def benchmark(pairs: int = 5) -> dict:
    """Alternate the two commands `pairs` times (after one untimed warm-up of each).

    Returns the raw seconds per command, their medians, and how many times faster
    validate is than importing TensorFlow (ratio of medians).
    """
    validate = kerapipe_command() + ["validate", "pipelines/"]
    import_tf = [sys.executable, "-c", "import tensorflow"]
    wall_time(validate)  # warm the file cache for both sides before timing
    wall_time(import_tf)
    times: dict[str, list[float]] = {VALIDATE: [], IMPORT_TF: []}
    for _ in range(pairs):
        times[VALIDATE].append(wall_time(validate))
        times[IMPORT_TF].append(wall_time(import_tf))
    med = {name: statistics.median(values) for name, values in times.items()}
    return {"pairs": pairs, "seconds": times, "medians": med,
            "times_faster": med[IMPORT_TF] / med[VALIDATE]}


def print_table(result: dict) -> None:
    print(f"{'command':<36}{'median s':>10}{'min s':>10}{'max s':>10}")
    for name, values in result["seconds"].items():
        print(f"{name:<36}{result['medians'][name]:>10.3f}{min(values):>10.3f}{max(values):>10.3f}")


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
