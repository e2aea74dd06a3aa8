"""kerapipe's benchmarks in one command: four sections, one table each, targets, results.json.

Sections (each runs its measurements in fresh processes; A/B comparisons alternate
A B A B so that other work on a shared machine hits both sides alike):

1. ``end_to_end``: ``kerapipe run pipelines/mnist.yaml`` against the same CNN written by
   hand with Keras (bench/train.py): wall time, steady-state epoch, time to the first
   training step, peak RSS, test accuracy. 3 pairs of 15 epochs (quick: 1 pair, 3).
2. ``validate``: ``kerapipe validate pipelines/`` against ``python -c "import tensorflow"``,
   and a generated pipeline of 200 layers in 20 blocks (bench/validate.py). 5 pairs
   (quick: 3).
3. ``input_pipeline``: for every pipelines/*.yaml, batches/s of the compiled training
   dataset alone against the model's training steps/s (bench/input_pipeline.py), the
   typed-feature CSV (penguins.yaml) and the text folder (text_topics.yaml) among them;
   and whether a typed-feature CSV streams: peak RSS of ``kerapipe run penguins.yaml``
   with ``data.cache=false`` on a penguins-like table of 16x the rows against 1x
   (bench/typed_stream.py). 3 rounds, 1 streaming round (peak RSS barely moves between
   rounds; quick: 2, 1 on smaller tables).
4. ``scale``: a CSV and an image-folder source at 1x, 4x, 16x rows: steady time per
   training example (a window of the same examples at every scale) and peak RSS (streaming, ``data.cache=false``) against
   1x; ``cache: auto`` memory as information (bench/scale.py). 3 rounds (quick: 1).

Every figure is printed; targets are checked and summarised, never asserted. Writes
bench/results.json: machine and versions, then per section its medians, ratios and raw
samples, with the commit and command that measured it. ``--only`` replaces only the
sections it runs and keeps the others from the file as they were measured.

    python bench/run.py [--quick] [--only end_to_end validate input_pipeline scale]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import input_pipeline  # noqa: E402
import scale  # noqa: E402
import train  # noqa: E402
import typed_stream  # noqa: E402
import validate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"

# A target: (section, what, measured value as text, target as text, met).
Target = tuple[str, str, str, str, bool]


def machine() -> dict[str, Any]:
    """CPU count, platform, versions, and the state of the kerapipe working tree."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    versions = {}
    for package in ("tensorflow", "keras", "numpy", "kerapipe"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "versions": versions,
            "git_commit": git("rev-parse", "HEAD"),
            "uncommitted_kerapipe_files": git("status", "--porcelain", "kerapipe").splitlines(),
            "load_average_at_start": os.getloadavg()}


def end_to_end(quick: bool) -> tuple[dict, list[Target]]:
    """kerapipe run vs hand-written Keras on the bundled MNIST sample (bench/train.py)."""
    result = train.benchmark(pairs=1 if quick else 3, epochs=3 if quick else 15)
    train.print_table(result)
    print("(time to first training step = 'start-up, to Epoch 1': process start until Keras "
          "starts epoch 1; the first epoch row adds tracing and the first pass over the data)")
    med, ratios = result["medians"], result["ratios_b_over_a"]
    rss_delta = med["kerapipe"]["rss_mib"] - med["keras"]["rss_mib"]
    points = result["accuracy_difference_points"]
    steady = ratios.get("steady_epoch")
    return result, [
        ("end_to_end", "wall time B/A", f"{ratios['wall']:.3f}", "<= 1.05", ratios["wall"] <= 1.05),
        ("end_to_end", "steady epoch B/A", f"{steady:.3f}" if steady else "-", "<= 1.02",
         steady is not None and steady <= 1.02),
        ("end_to_end", "peak RSS B - A", f"{rss_delta:+.0f} MiB", "<= +50 MiB", rss_delta <= 50),
        ("end_to_end", "test accuracy |B - A|", f"{points:.2f} points", "<= 1 point", points <= 1),
    ]


def validate_section(quick: bool) -> tuple[dict, list[Target]]:
    """kerapipe validate pipelines/ vs importing TensorFlow (bench/validate.py)."""
    result = validate.benchmark(pairs=3 if quick else 5)
    validate.print_table(result)
    seconds, faster = result["medians"][validate.VALIDATE], result["times_faster"]
    print(f"validate is {faster:.1f}x faster than importing TensorFlow "
          f"({result['pairs']} alternating pairs)")
    return result, [
        ("validate", "kerapipe validate pipelines/ median", f"{seconds:.3f} s", "<= 0.3 s",
         seconds <= 0.3),
        ("validate", "times faster than import tensorflow", f"{faster:.1f}x", ">= 15x",
         faster >= 15),
        ("validate", "validate 200 layers in 20 blocks median",
         f"{result['medians'][validate.GRAPH]:.3f} s", "<= 0.3 s",
         result["medians"][validate.GRAPH] <= 0.3),
    ]


# The pipelines of issue 13's input-pipeline target, by what they show.
TYPED_PIPELINES = {"pipelines/penguins.yaml": "typed-feature CSV",
                   "pipelines/text_topics.yaml": "text folder"}


def input_section(quick: bool) -> tuple[dict, list[Target]]:
    """Input batches/s vs model steps/s for every example pipeline (bench/input_pipeline.py);
    peak RSS of a typed-feature CSV streamed at 16x vs 1x (bench/typed_stream.py)."""
    result = input_pipeline.benchmark(repeats=2 if quick else 3, model_steps=20 if quick else 50)
    input_pipeline.print_table(result)
    targets = []
    for pipeline in TYPED_PIPELINES:
        if pipeline not in result["rows"]:
            targets.append(("input_pipeline", f"{pipeline} input/model", "no such file",
                            ">= 5x", False))
    for pipeline, row in result["rows"].items():
        name = pipeline.removeprefix("pipelines/")
        if pipeline in TYPED_PIPELINES:
            name += f" ({TYPED_PIPELINES[pipeline]})"
        if "error" in row:
            targets.append(("input_pipeline", f"{name} input/model", "failed", ">= 5x", False))
        else:
            stand_in = " (synthetic stand-in)" if row["data"] != "real" else ""
            targets.append(("input_pipeline", f"{name} input/model{stand_in}",
                             f"{row['ratio']:.1f}x", ">= 5x", row["met"]))
    print("\nstreaming a typed-feature CSV (bench/typed_stream.py):", flush=True)
    stream = typed_stream.benchmark(rounds=1, quick=quick)
    typed_stream.print_table(stream)
    result["typed_stream"] = stream
    targets.append(("input_pipeline", "typed CSV peak RSS 1x -> 16x (cache false)",
                    f"{stream['rss_growth']:+.1%}", "< +10%", stream["met"]))
    return result, targets


def scale_section(quick: bool) -> tuple[dict, list[Target]]:
    """Steady time per example and peak RSS at 1x, 4x, 16x rows (bench/scale.py)."""
    result = scale.benchmark(rounds=1 if quick else 3, quick=quick)
    scale.print_table(result)
    targets = []
    for kind, by_config in result["rows"].items():
        for config in scale.TIME_CONFIGS:
            for name in ("4x", "16x"):
                row = by_config[config][name]
                targets.append(("scale", f"{kind} steady time/sample {name} vs 1x ({config})",
                                f"{row['time_vs_1x']:.2f}", "0.85..1.15", row["time_met"]))
        for config in scale.RSS_CONFIGS:
            row = by_config[config]["16x"]
            targets.append(("scale", f"{kind} peak RSS growth 1x -> 16x ({config})",
                            f"{row['rss_vs_1x'] - 1:+.1%}", "< +10%", row["rss_met"]))
    print("information (no target):")
    for kind, by_config in result["rows"].items():
        for config, by_scale in by_config.items():
            one, big = by_scale["1x"], by_scale["16x"]
            print(f"  {kind + ' ' + config:<17} peak RSS 1x -> 16x {one['peak_rss_mib']:.0f} -> "
                  f"{big['peak_rss_mib']:.0f} MiB ({big['rss_vs_1x'] - 1:+.1%}); first-epoch "
                  f"us/sample 16x vs 1x {big['first_epoch_vs_1x']:.2f}; steady CPU us/sample "
                  f"4x, 16x vs 1x {by_scale['4x']['cpu_vs_1x']:.2f}, {big['cpu_vs_1x']:.2f}: "
                  f"{result['configs'][config]['label']}")
    return result, targets


SECTIONS: dict[str, Callable[[bool], tuple[dict, list[Target]]]] = {
    "end_to_end": end_to_end, "validate": validate_section,
    "input_pipeline": input_section, "scale": scale_section,
}


def print_summary(targets: list[Target]) -> None:
    met = sum(1 for *_, ok in targets if ok)
    print(f"\n=== summary: {met} of {len(targets)} targets met")
    print(f"{'section':<16}{'measure':<52}{'value':>26}  {'target':<11}result")
    for section, what, value, target, ok in targets:
        print(f"{section:<16}{what:<52}{value:>26}  {target:<11}{'met' if ok else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: fewer pairs, epochs, rounds and smaller data")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), metavar="NAME",
                        help=f"run only these sections ({', '.join(SECTIONS)})")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results file")
    args = parser.parse_args()
    names = [name for name in SECTIONS if not args.only or name in args.only]

    report: dict[str, Any] = {"command": " ".join(["python", "bench/run.py", *sys.argv[1:]]),
                              "quick": args.quick, "machine": machine(),
                              "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "sections": {}}
    info = report["machine"]
    print(f"kerapipe benchmarks{' (quick)' if args.quick else ''}: {info['cpus']} CPUs, "
          f"{info['platform']}, Python {info['python']}, "
          + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
          + f"; load average {info['load_average_at_start'][0]:.2f}")
    if info["uncommitted_kerapipe_files"]:
        print(f"note: uncommitted changes in kerapipe/: {info['uncommitted_kerapipe_files']}")

    if args.only and args.output.exists() and not args.quick:
        earlier = json.loads(args.output.read_text())
        for name, section in earlier.get("sections", {}).items():
            if name in SECTIONS and name not in names:
                report["sections"][name] = {  # measured by the earlier command, at its commit
                    "command": earlier.get("command"),
                    "git_commit": earlier.get("machine", {}).get("git_commit"), **section}
    all_targets: list[Target] = []
    for name in names:
        print(f"\n=== {name}", flush=True)
        start = time.perf_counter()
        result, targets = SECTIONS[name](args.quick)
        seconds = time.perf_counter() - start
        print(f"({name}: {seconds:.0f} s, load average now {os.getloadavg()[0]:.2f})", flush=True)
        all_targets += targets
        report["sections"][name] = {
            "command": report["command"], "git_commit": info["git_commit"],
            "section_seconds": seconds, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "load_average_after": os.getloadavg(),
            "targets": [dict(zip(("what", "value", "target", "met"), t[1:])) for t in targets],
            **result}
    print_summary(all_targets)
    report["sections"] = {name: report["sections"][name] for name in SECTIONS
                          if name in report["sections"]}  # in section order
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")


if __name__ == "__main__":
    main()
