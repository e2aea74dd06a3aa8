"""`kerapipe tune FILE`: a hyperparameter search over the file's `tune:` section
(keras-tuner; optional extra ``kerapipe[tune]``). The search itself is
``kerapipe.tuning``; keras-tuner and TensorFlow are imported only when it runs."""

from __future__ import annotations

from typing import Optional

import click


@click.command("tune")
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
              help="Override a key of the file for every trial, e.g. --set train.epochs=3 "
              "(repeatable; typed and validated like the file).")
@click.option("--output", "-o", "output_dir", metavar="DIR",
              help="Folder that receives the new tune folder. Defaults to output.dir.")
@click.option("--resume", "resume_dir", metavar="TUNE_DIR", type=click.Path(file_okay=False),
              help="Continue a search: finished trials are kept, an interrupted one runs "
              "again (FILE and --set default to the search's own).")
@click.option("--max-trials", type=click.IntRange(1, 1000), metavar="N",
              help="The trial budget instead of tune.max_trials (a resume counts the "
              "finished trials).")
@click.option("--allow-imports", is_flag=True, help="Run the Python files and modules the "
              "pipeline lists under `imports:` (custom layers and losses). Refused without "
              "it: read that code first.")
def command(file: Optional[str], overrides: tuple[str, ...], output_dir: Optional[str],
            resume_dir: Optional[str], max_trials: Optional[int], allow_imports: bool) -> None:
    """Search the hyperparameters of the file's `tune:` section with keras-tuner.

    Each trial is the file with the trial's values as --set overrides, validated, then
    trained as `kerapipe run` trains it, into its own run folder inside a new tune
    folder (never overwriting). At the end: a table of the trials, best.yaml (the file
    with the best values) and the run folder of the best pipeline. Ctrl-C keeps the
    finished trials; --resume TUNE_DIR goes on. Needs `pip install "kerapipe[tune]"`.
    """
    from kerapipe.errors import SpecError, UsageError
    from kerapipe.spec.checks import refused_imports
    from kerapipe.spec.issues import render
    from kerapipe.spec.validate import validate_file

    if file:  # checked before TensorFlow and keras-tuner load: a typo costs no seconds
        result = validate_file(file, overrides)
        refused = refused_imports(result, allow_imports)
        issues = result.issues + refused
        if result.errors or refused:
            raise SpecError(issues)
        if result.spec.tune is None:
            raise UsageError(f"{file} has no `tune:` section: add one that names the key "
                             "paths to search (README: Hyperparameter search).")
        if issues:
            click.echo(render(issues, "text", 1), err=True)
    elif not resume_dir:
        raise click.UsageError("give a pipeline FILE (or --resume TUNE_DIR).")
    from kerapipe.tuning import tune_pipeline

    tune_pipeline(file, overrides, allow_imports=allow_imports, resume_dir=resume_dir,
                  max_trials=max_trials, output_dir=output_dir,
                  echo=lambda line: click.echo(line, err=not line.startswith(("trial ", "best"))))
