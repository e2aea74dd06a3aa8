"""`kerapipe export RUN_DIR --format saved_model|tflite|onnx [-o PATH]` (``kerapipe.export``)."""

from __future__ import annotations

from typing import Optional

import click

# The names kerapipe.export.FORMATS holds (that package imports NumPy; this one stays light).
_FORMATS = ("saved_model", "tflite", "onnx")


@click.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(_FORMATS), required=True,
              help="saved_model: a TensorFlow SavedModel folder (Keras's model.export); "
              "tflite: a .tflite file (the TFLite converter); onnx: a .onnx file (tf2onnx, "
              'the optional extra: pip install "kerapipe[onnx]").')
@click.option("--output", "-o", "output", metavar="PATH",
              help="Where to write the export (never overwritten; a tflite path ends in .tflite, "
              "an onnx path in .onnx). Defaults to "
              "RUN_DIR/export/saved_model, RUN_DIR/export/model.tflite or "
              "RUN_DIR/export/model.onnx.")
@click.option("--allow-imports", is_flag=True, help="Import the Python files the run's "
              "pipeline lists under `imports:` (its custom layers), from the run folder's "
              "copies. Refused without it: read that code first.")
def command(run_dir: str, fmt: str, output: Optional[str], allow_imports: bool) -> None:
    """Export a finished run's model for serving, checked on the run's test inputs.

    The export runs on the run's test split by its own runtime (the SavedModel's serving
    signature, the TFLite interpreter, onnxruntime); its outputs must equal the Keras
    model's within the tolerance (max |Δp| printed) and its predicted classes the run's
    predictions.csv, else nothing is written (exit 4).
    """
    from kerapipe.export import check_export_request, export_run

    if output == "":
        raise click.UsageError("-o/--output needs a path.")
    # Every refusal that needs no TensorFlow comes first, in well under a second: the
    # request's here, the run folder's in open_run before it loads the model.
    check_export_request(run_dir, fmt, output)
    from kerapipe.saved_run import open_run

    result = export_run(open_run(run_dir, allow_imports), fmt, output)
    click.echo(result.summary())
