"""Does a CSV of typed features (strings, numbers, missing values) stream? Peak RSS at 16x vs 1x.

``kerapipe run pipelines/penguins.yaml`` (FeatureSpace over string and number columns
with ``NA`` cells filled by the training mean / mode) on a generated penguins-like table
at 1x and 16x rows, with ``--set data.cache=false`` (the streaming configuration: nothing
holds the data set). 1x = 10,000 rows (quick: 5,000): rows of pipelines/data/penguins.csv
drawn with replacement, each measurement moved by a little noise (its ``NA`` cells kept),
so that the strings (species, island, sex), the numbers and the missing cells are the
real table's, in the real proportions; 16x = 160,000 rows (about 7 MiB). The real table
has 344 rows: at that size any run's memory is the libraries', and 16x of it (5,504 rows)
would show nothing.

Each (scale, round) is one fresh ``kerapipe run`` process (``--set train.epochs=2
data.batch_size=256``, so that 16x trains in seconds), timed by ``/usr/bin/time``: its
peak RSS (max resident set size) and wall time, and the median epoch time from its
"Epoch i/E" lines. The scales alternate 1x 16x 1x 16x ... Target: peak RSS growth 1x ->
16x under +10 %.

    python bench/typed_stream.py [--rounds 2] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train import kerapipe_command, phases, run_timed  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = ROOT / "pipelines" / "penguins.yaml"
TABLE = ROOT / "pipelines" / "data" / "penguins.csv"
BASE_ROWS, QUICK_ROWS = 10_000, 5_000
SCALES = (1, 16)
RSS_GROWTH_MAX = 0.10
OVERRIDES = ["data.cache=false", "train.epochs=2", "data.batch_size=256"]
NUMBERS = {"bill_length_mm": 1, "bill_depth_mm": 1, "flipper_length_mm": 0, "body_mass_g": 0}


def make_table(path: Path, rows: int) -> None:
    """`rows` rows of the penguins table drawn with replacement, numbers moved by ~2 %."""
    with TABLE.open(newline="") as f:
        reader = csv.DictReader(f)
        header, table = reader.fieldnames, list(reader)
    rng = np.random.default_rng(rows)
    picks = rng.integers(0, len(table), rows)
    noise = rng.normal(1.0, 0.02, (rows, len(NUMBERS)))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, header, lineterminator="\n")
        writer.writeheader()
        for pick, moves in zip(picks, noise):
            row = dict(table[pick])
            for (name, decimals), move in zip(NUMBERS.items(), moves):
                if row[name] != "NA":
                    row[name] = f"{float(row[name]) * move:.{decimals}f}"
            writer.writerow(row)


def run_once(folder: Path, scale: int) -> dict[str, Any]:
    """One `kerapipe run` of the pipeline copied into `folder` on the `scale`x table."""
    with tempfile.TemporaryDirectory(prefix="runs-", dir=folder) as out:
        command = kerapipe_command() + ["run", str(folder / PIPELINE.name), "--output", out,
                                        "--set", f"data.source.csv.path=penguins-{scale}x.csv"]
        for value in OVERRIDES:
            command += ["--set", value]
        done = run_timed(command)
    timing = phases(done["wall"], done["lines"])
    return {"scale": scale, "peak_rss_mib": done["rss_mib"], "wall": done["wall"],
            "cpu": done["cpu"], "steady_epoch": timing.get("steady_epoch"),
            "first_epoch": timing.get("first_epoch"), "startup": timing.get("startup")}


def benchmark(rounds: int = 2, quick: bool = False) -> dict[str, Any]:
    base = QUICK_ROWS if quick else BASE_ROWS
    folder = Path(tempfile.mkdtemp(prefix="kerapipe-typed-stream-"))
    samples: dict[int, list[dict]] = {scale: [] for scale in SCALES}
    try:
        shutil.copy(PIPELINE, folder / PIPELINE.name)
        sizes = {}
        for scale in SCALES:
            path = folder / f"penguins-{scale}x.csv"
            make_table(path, base * scale)
            sizes[f"{scale}x"] = {"rows": base * scale,
                                  "mib": round(path.stat().st_size / 2**20, 2)}
        for r in range(rounds):
            for scale in SCALES:
                run = run_once(folder, scale)
                samples[scale].append(run)
                print(f"  round {r + 1}/{rounds} {scale:>2}x ({base * scale:,} rows)  peak RSS "
                      f"{run['peak_rss_mib']:.0f} MiB  wall {run['wall']:.1f} s", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rows = {}
    for scale, runs in samples.items():
        rows[f"{scale}x"] = {**sizes[f"{scale}x"], **{
            key: statistics.median(run[key] for run in runs if run[key] is not None)
            for key in ("peak_rss_mib", "wall", "cpu", "steady_epoch")}}
    one, big = rows["1x"], rows[f"{max(SCALES)}x"]
    growth = big["peak_rss_mib"] / one["peak_rss_mib"] - 1
    return {"rounds": rounds, "quick": quick, "overrides": OVERRIDES, "rows": rows,
            "rss_growth": growth, "rss_growth_max": RSS_GROWTH_MAX,
            "met": growth < RSS_GROWTH_MAX, "samples": samples}


def print_table(result: dict[str, Any]) -> None:
    print(f"{'penguins-like CSV':<20}{'rows':>9}{'MiB':>7}{'peak RSS MiB':>14}{'wall s':>8}"
          f"{'epoch s':>9}")
    for name, row in result["rows"].items():
        print(f"{name:<20}{row['rows']:>9,}{row['mib']:>7.1f}{row['peak_rss_mib']:>14.0f}"
              f"{row['wall']:>8.1f}{row['steady_epoch'] or float('nan'):>9.2f}")
    print(f"(kerapipe run pipelines/penguins.yaml --set {' '.join(result['overrides'])}; "
          f"medians of {result['rounds']} round(s), one process per run; peak RSS: "
          f"/usr/bin/time's maximum resident set size; epoch s: the second epoch)\n"
          f"peak RSS 1x -> 16x {result['rss_growth']:+.1%} (target < "
          f"+{RSS_GROWTH_MAX:.0%}: {'met' if result['met'] else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 2; quick 1)")
    parser.add_argument("--quick", action="store_true", help="1 round, 1x = 5,000 rows")
    args = parser.parse_args()
    print_table(benchmark(args.rounds or (1 if args.quick else 2), args.quick))


if __name__ == "__main__":
    main()
