"""`kerapipe compare RUN_DIR... [--format text|json|csv]`: one table of runs
(``kerapipe.compare``). Imports only click here; never TensorFlow."""

from __future__ import annotations

import click

_FORMATS = ("text", "json", "csv")  # kerapipe.compare.FORMATS, not imported at start-up


@click.command("compare")
@click.argument("run_dirs", metavar="RUN_DIR...", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default="text",
              show_default=True,
              help="text: an aligned table; json: one document; csv: one row per run, the "
                   "differing spec keys as columns.")
def command(run_dirs: tuple[str, ...], fmt: str) -> None:
    """Compare runs: name, date, status, test metrics, epochs and wall time of each run
    folder, and the spec keys (key paths, as --set writes them) in which they differ.

    Each difference is one column, at the shallowest key path where the runs differ: where
    only some runs have a mapping (output.mlflow: null in one run, {experiment: x} in
    another), that key path's whole value.

    RUN_DIR may be a glob (quote it to let kerapipe expand it). A path that is not a run
    folder, a glob that matches nothing and a damaged run file are errors (exit 2).
    """
    from kerapipe.compare import compare_runs, expand_run_arguments, render

    comparison = compare_runs(expand_run_arguments(run_dirs))
    for warning in comparison.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(render(comparison, fmt), nl=False)
