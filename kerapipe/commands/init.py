"""``kerapipe init DATA [-o FILE]``: a first, commented pipeline file for a data set.

The inspection and the file's text are ``kerapipe.scaffold``'s (imported when the command
runs: ``validate`` imports this module, and stays light); no TensorFlow is imported.
"""

from __future__ import annotations

from typing import Optional

import click


@click.command("init")
@click.argument("data", type=click.Path())
@click.option("--output", "-o", "output", metavar="FILE", help="Write the pipeline to this "
              "new file (never overwritten; missing folders are created; its data path is "
              "relative to the file's folder). "
              "Defaults to standard output, with paths relative to the current directory.")
@click.option("--label", metavar="COLUMN", help="The CSV label column. Defaults to a column "
              "named like a label (label, target, class, y, species, ...), else the last one.")
def command(data: str, output: Optional[str], label: Optional[str]) -> None:
    """Write a pipeline file for DATA: a CSV file, a folder of one sub-folder per class
    (images or .txt files), or an .npz file of arrays x and y.

    The label, its kind, the feature types and a first model are guessed from a bounded
    sample of the data; each comment in the file says why. Exit 3 when the data cannot
    be read or used, 5 when FILE exists, is a folder or cannot be written. With -o, the
    "wrote" line goes to standard error.
    """
    from kerapipe.safe_io import make_parent_folders
    from kerapipe.scaffold import scaffold, write_new_file

    if output is not None:
        _check_output(output)
    result = scaffold(data, output, label)
    found = result.inspection
    summary = (f"{found.kind} data, label {found.label.name!r} ({found.label.kind}"
               + (f", {found.label.units} outputs" if found.label.kind != "regression" else "")
               + ")")
    if output is None:
        click.echo(result.text, nl=False)
        click.echo(f"kerapipe init: {summary}; save it as a .yaml file in this folder.",
                   err=True)
        return
    make_parent_folders(output)
    write_new_file(output, result.text)
    # Standard error, as predict's "wrote": with -o, standard output carries no data.
    click.echo(f"wrote {output}: {summary}.\nNext: kerapipe validate --strict {output} && "
               f"kerapipe run {output}", err=True)


def _check_output(output: str) -> None:
    """Refuse, before the data is read, an ``-o`` that cannot name a new file: empty, a
    folder (``write_new_file`` refuses what exists, but would call a folder a file), or
    a path through a file."""
    import os

    from kerapipe.errors import OutputError

    if not output:
        raise OutputError("-o names the new pipeline file, but it is empty. Give a file "
                          "name, e.g. -o pipeline.yaml.")
    if os.path.isdir(output) or output.endswith(("/", os.sep)):
        example = os.path.join(output, "pipeline.yaml")
        raise OutputError(f"-o {output}: {'a folder' if os.path.isdir(output) else 'a folder name'}"
                          f"; -o names the new pipeline file. Give a file in it, e.g. "
                          f"-o {example}.")
    from kerapipe.safe_io import refuse_a_parent_through_a_file

    refuse_a_parent_through_a_file(output)
