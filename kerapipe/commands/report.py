"""``kerapipe report RUN_DIR``: the plots, classification report and report.html of a
finished run, made again from its files (``kerapipe.html_report``), without TensorFlow."""

from __future__ import annotations

import click


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False))
def command(run_dir: str) -> None:
    """Write a finished run's plots, classification_report.csv and report.html again.

    Reads only the run folder's files (no TensorFlow, no model loaded); a folder that is
    not a finished kerapipe run is refused (exit 2).
    """
    from kerapipe.html_report import write_run_report
    from kerapipe.run_folder import RunFolder

    for path in write_run_report(RunFolder.open_finished(run_dir)):
        click.echo(f"wrote {path}")
