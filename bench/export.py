"""Export parity of pipelines/mnist.yaml (the 5,000 shipped digits): one `kerapipe run`
(a few epochs), then `kerapipe export` to each format in one process, as the command does
it (``kerapipe.export.export_run``).

Per format: the largest |difference| of a probability between the exported model, run by
its own runtime (SavedModel serving signature, tf.lite.Interpreter, onnxruntime), and the
Keras model on the run's 500 test digits; how many predicted classes equal the Keras
model's and the run's predictions.csv; the seconds of the export itself (model.export /
the converter) and of the whole export_run (loading the data, the export, its check);
and the artifact's size. Then per format, the command a user types, in a child process:
the seconds of a whole ``kerapipe export`` (start-up, TensorFlow's import, loading the
model, the export and its check) and what it wrote to stderr (nothing, when TensorFlow's,
tf2onnx's and TFLite's logs are kept off it); and the seconds ``kerapipe export`` takes to
refuse a path that exists (before TensorFlow is imported).

    python bench/export.py [--epochs N] [--output FILE]

Writes bench/results-export.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = ROOT / "pipelines" / "mnist.yaml"
RESULTS = ROOT / "bench" / "results-export.json"
FORMATS = ("saved_model", "tflite", "onnx")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _cli(*args: str) -> tuple[float, int, str]:
    """Seconds, exit code and stderr of ``python -m kerapipe ARGS`` as a user's shell runs
    it: without a TF_CPP_MIN_LOG_LEVEL kerapipe's backend set in this process."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",
                                                            "KERAPIPE_DEBUG")}
    tick = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "kerapipe", *args], capture_output=True,
                          text=True, timeout=900, env=env)
    return time.perf_counter() - tick, done.returncode, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kerapipe-bench-export-") as scratch:
        runs = Path(scratch) / "runs"
        done = subprocess.run([sys.executable, "-m", "kerapipe", "run", str(PIPELINE),
                               "--set", f"train.epochs={args.epochs}", "--output", str(runs)],
                              capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            sys.exit(f"kerapipe run failed ({done.returncode}):\n{done.stderr[-2000:]}")
        (run_dir,) = runs.iterdir()
        metrics = json.loads((run_dir / "metrics.json").read_text())

        from kerapipe.export import SUFFIXES, export_run
        from kerapipe.saved_run import open_run

        saved = open_run(run_dir)
        results = []
        for fmt in FORMATS:
            tick = time.perf_counter()
            result = export_run(saved, fmt)
            total = time.perf_counter() - tick
            row = {"format": fmt, "max_abs_delta_p": result.max_delta,
                   "tolerance": result.tolerance, "examples": result.examples,
                   "agree_keras": result.agreed, "agree_predictions_csv": result.agreed_run,
                   "export_seconds": round(result.seconds, 2),
                   "export_and_check_seconds": round(total, 2),
                   "bytes": _size(result.path)}
            results.append(row)
            print(f"{fmt:>11}: max |Δp| = {row['max_abs_delta_p']:.3g}, argmax "
                  f"{row['agree_keras']}/{row['examples']} = Keras, "
                  f"{row['agree_predictions_csv']}/{row['examples']} = predictions.csv, "
                  f"export {row['export_seconds']:.1f} s (with its check "
                  f"{row['export_and_check_seconds']:.1f} s), {row['bytes']:,} bytes",
                  flush=True)

        taken = Path(scratch) / "taken"
        taken.mkdir()
        for row in results:
            fmt = row["format"]
            name = f"m{SUFFIXES[fmt]}"
            seconds, code, stderr = _cli("export", str(run_dir), "--format", fmt, "-o",
                                         str(Path(scratch) / name))
            if code != 0:
                sys.exit(f"kerapipe export --format {fmt} failed ({code}):\n{stderr[-2000:]}")
            (taken / name).write_bytes(b"")
            refusal, code, _ = _cli("export", str(run_dir), "--format", fmt, "-o",
                                    str(taken / name))
            row.update(cli_seconds=round(seconds, 2), cli_stderr_lines=stderr.splitlines(),
                       refusal_seconds=round(refusal, 2), refusal_exit=code)
            print(f"{fmt:>11}: `kerapipe export` {seconds:.1f} s, {len(stderr.splitlines())} "
                  f"line(s) on stderr; an existing path refused in {refusal:.2f} s "
                  f"(exit {code})", flush=True)

    import keras
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    document = {"pipeline": "pipelines/mnist.yaml", "epochs": args.epochs,
                "test_accuracy": metrics["test"].get("accuracy"),
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version(), "keras": keras.__version__,
                            "tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__,
                            "onnxruntime": onnxruntime.__version__},
                "formats": results}
    args.output.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
