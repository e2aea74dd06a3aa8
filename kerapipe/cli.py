"""The `kerapipe` command: a thin click shell over the Python API.

Each command parses its options, calls one API function and maps the outcome to a
documented exit code (see ``kerapipe/errors.py``). TensorFlow is imported only by the
commands that train or build a model, never by ``validate`` or ``schema``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Optional

import click

from kerapipe import __version__
from kerapipe.errors import EXIT_CODES, EXIT_INTERNAL, EXIT_SIGINT, EXIT_SIGTERM, KerapipeError

_EXIT_CODE_HELP = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items())


@click.group(context_settings={"help_option_names": ["-h", "--help"]},
             epilog=f"Exit codes:\n\n\b\n{_EXIT_CODE_HELP}")
@click.version_option(__version__, prog_name="kerapipe")
def cli() -> None:
    """Compile a declarative YAML pipeline into a Keras model and tf.data pipeline."""


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text",
              show_default=True, help="text: FILE:LINE:COL lines; json: one JSON document; "
              "github: GitHub Actions annotations.")
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@click.option("--deep", is_flag=True, help="Also import Keras and build each model "
              "symbolically (no data read, no training) to catch shape errors.")
def validate(paths: tuple[str, ...], fmt: str, strict: bool, deep: bool) -> None:
    """Check pipeline files, directories or globs; report every problem at once.

    Exit 0 when every file is valid, 2 when any has an error (or, with --strict, a
    warning). Without --deep it never imports TensorFlow or Keras.
    """
    from kerapipe.spec.issues import ERROR, WARNING, render
    from kerapipe.spec.validate import collect_pipeline_files, validate_file

    files, issues = collect_pipeline_files(paths)
    results = [validate_file(f) for f in files]
    for result in results:
        issues += result.issues
    if deep:
        from kerapipe.compiler.deep import deep_check  # imports Keras

        for result in results:
            if result.spec is not None:
                issues += deep_check(result.spec, result.document)
    failed = any(i.severity == ERROR or (strict and i.severity == WARNING) for i in issues)
    output = render(issues, fmt, len(files))
    if output:
        click.echo(output)
    if fmt != "json":
        errors = sum(i.severity == ERROR for i in issues)
        warnings = sum(i.severity == WARNING for i in issues)
        summary = (f"{len(files)} file(s) checked: {errors} error(s), {warnings} warning(s)"
                   + (" (warnings fail under --strict)" if strict and warnings else ""))
        click.echo(summary, err=fmt == "github")
    sys.exit(2 if failed else 0)


@cli.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
              help="Write the schema to this file instead of standard output.")
def schema(output: Optional[str]) -> None:
    """Print the JSON Schema of the pipeline file format (for editors and CI).

    Its ``x-kerapipe-commands`` annotation lists every command and option of this CLI.
    """
    text = json.dumps(schema_document(), indent=1) + "\n"
    if output:
        from kerapipe.safe_io import write_text_atomic

        write_text_atomic(output, text)
    else:
        click.echo(text, nl=False)


def _validated(file: str, overrides: tuple[str, ...], allow_imports: bool,
               warn: bool = True):
    """Validate once, before importing TensorFlow, so a typo is reported in a fraction of a
    second (and code the pipeline imports is refused before any of it runs); the result is
    what the command compiles (``compile_pipeline`` does not validate it again).

    Raises:
        SpecError: the file has errors, or imports code without --allow-imports (every
            issue is listed, warnings too).
    """
    from kerapipe.errors import SpecError
    from kerapipe.spec.checks import refused_imports
    from kerapipe.spec.issues import render
    from kerapipe.spec.validate import validate_file

    result = validate_file(file, overrides)
    refused = refused_imports(result, allow_imports)
    issues = result.issues + refused
    if result.errors or refused:
        raise SpecError(issues)
    if issues and warn:
        click.echo(render(issues, "text", 1), err=True)
    return result


_ALLOW_IMPORTS = click.option("--allow-imports", is_flag=True, help="Run the Python files "
                              "and modules the pipeline lists under `imports:` (custom layers "
                              "and losses). Refused without it: read that code first.")
_SET_OPTION = click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
                           help="Override a key of the file, e.g. --set train.epochs=3 "
                           "(repeatable; typed and validated like the file).")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@_SET_OPTION
@click.option("--output", "-o", "output_dir", metavar="DIR",
              help="Folder that receives the new run folder. Defaults to output.dir.")
@click.option("--resume", "resume_dir", metavar="RUN_DIR", type=click.Path(file_okay=False),
              help="Continue an interrupted run from its last checkpoint (FILE defaults to "
              "the run's pipeline file).")
@click.option("--force", is_flag=True, help="With --resume: continue even though the "
              "pipeline file changed.")
@click.option("--workers", type=click.IntRange(1, 64), metavar="N",
              help="Start N local worker processes on loopback, each with its TF_CONFIG "
              "(train.distribute.strategy must be multi_worker): a launcher for tests and "
              "demos. Streams the chief's output; stops every worker if one fails.")
@_ALLOW_IMPORTS
def run(file: Optional[str], overrides: tuple[str, ...], output_dir: Optional[str],
        resume_dir: Optional[str], force: bool, workers: Optional[int],
        allow_imports: bool) -> None:
    """Train a pipeline: fit, evaluate on the test split, write argmax predictions.

    Every run writes a new folder (never overwriting): spec.yaml, model.keras,
    history.csv, metrics.json, predictions.csv, run.json and checkpoints/. Ctrl-C or
    SIGTERM stops at the next step, keeps the last finished epoch, and exits 130/143.
    """
    if workers is not None:
        sys.exit(_launch_workers(workers, file, overrides, output_dir, resume_dir, force,
                                 allow_imports))
    if resume_dir:
        from kerapipe.runner import resume_run

        command = ["kerapipe", "run", *([file] if file else []), "--resume", resume_dir]
        result = resume_run(resume_dir, file, overrides, force, command=command,
                            allow_imports=allow_imports)
        _echo_run_summary(result)
        return
    if not file:
        raise click.UsageError("give a pipeline FILE (or --resume RUN_DIR).")
    result = _validated(file, overrides, allow_imports)
    from kerapipe.run_location import ensure_writable_dir

    ensure_writable_dir(output_dir or result.spec.output.dir)  # fail before minutes of loading
    from kerapipe.tracking import check_mlflow_installed

    check_mlflow_installed(result.spec)  # output.mlflow without the extra: before the data
    from kerapipe.pipeline import compile_pipeline

    _freeze_imported_objects()
    compiled = compile_pipeline(result, allow_imports=allow_imports)
    click.echo(f"kerapipe: {compiled.spec.name}: {compiled.data.description}", err=True)
    _warn_of_a_slow_precision(compiled)  # before minutes of fit
    command = ["kerapipe", "run", file]
    for override in overrides:
        command += ["--set", override]
    command += ["--output", output_dir] if output_dir else []
    result = compiled.run(output_dir=output_dir, command=command)
    _echo_run_summary(result)


def _launch_workers(workers: int, file: Optional[str], overrides: tuple[str, ...],
                    output_dir: Optional[str], resume_dir: Optional[str], force: bool,
                    allow_imports: bool) -> int:
    """``run --workers N``: the file checked here first (a typo stops one process, not N),
    then N local workers (``kerapipe.launcher``); returns the exit code."""
    if resume_dir:  # the run's own file and --set values, as a resume of one reads them
        from kerapipe.run_folder import RunFolder

        record = RunFolder.open_for_resume(resume_dir).record
        file = file or record.get("pipeline_file")
        overrides = overrides or tuple(record.get("overrides") or ())
    if not file:
        raise click.UsageError("give a pipeline FILE (or --resume RUN_DIR).")
    result = _validated(file, overrides, allow_imports, warn=False)  # the chief warns
    if result.spec.train.distribute.strategy != "multi_worker":
        raise click.UsageError(
            f"--workers starts a multi-worker cluster, but {file} trains with "
            f"train.distribute.strategy: {result.spec.train.distribute.strategy}. Set "
            "`train: {distribute: {strategy: multi_worker}}`, or add "
            "--set train.distribute.strategy=multi_worker.")
    from kerapipe.launcher import launch_local_workers

    arguments = [file, *(a for o in overrides for a in ("--set", o))]
    arguments += ["--output", output_dir] if output_dir else []
    arguments += ["--resume", resume_dir] if resume_dir else []
    arguments += ["--force"] if force else []
    arguments += ["--allow-imports"] if allow_imports else []
    return launch_local_workers(workers, arguments)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@_SET_OPTION
@_ALLOW_IMPORTS
def plan(file: str, overrides: tuple[str, ...], allow_imports: bool) -> None:
    """Show what would run: data stages with shapes, splits, model summary. No training."""
    result = _validated(file, overrides, allow_imports)
    from kerapipe.pipeline import compile_pipeline
    from kerapipe.report import format_plan

    compiled = compile_pipeline(result, allow_imports=allow_imports, distribute=False)
    _warn_of_a_slow_precision(compiled)
    click.echo(format_plan(compiled))


def _warn_of_a_slow_precision(compiled) -> None:
    """One ``warning:`` line on stderr when ``train.precision`` is slower here than float32."""
    from kerapipe.compiler.precision import slow_precision_warning

    warning = slow_precision_warning(compiled.spec.train.precision)
    if warning:
        click.echo(warning, err=True)


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.option("--output", "-o", "output_file", metavar="FILE",
              help="Write the CSV to a new file (never overwritten) instead of standard output.")
@_ALLOW_IMPORTS
def predict(run_dir: str, input_path: str, output_file: Optional[str],
            allow_imports: bool) -> None:
    """Argmax predictions of a finished run's model for INPUT (.npz, .csv or image folder)."""
    from kerapipe.safe_io import make_parent_folders, refuse_a_parent_through_a_file
    from kerapipe.saved_run import open_run, predict_to_csv, write_new_file

    if output_file:  # before the model loads (seconds); its missing folders come after
        refuse_a_parent_through_a_file(output_file)
    text = predict_to_csv(open_run(run_dir, allow_imports), input_path)
    if output_file:
        make_parent_folders(output_file)  # as init -o and export -o do
        write_new_file(output_file, text)
        click.echo(f"wrote {output_file}", err=True)
    else:
        click.echo(text, nl=False)


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@_ALLOW_IMPORTS
def evaluate(run_dir: str, allow_imports: bool) -> None:
    """Re-evaluate a finished run's model on its test split (same data, same seed)."""
    from kerapipe.report import format_metrics
    from kerapipe.saved_run import evaluate_run, open_run

    click.echo(format_metrics(evaluate_run(open_run(run_dir, allow_imports))))


def _register_discovered_commands() -> None:
    from kerapipe.commands import discovered_commands

    for command in discovered_commands():
        cli.add_command(command)


_register_discovered_commands()


def _freeze_imported_objects() -> None:
    """Move what the imports made (TensorFlow and Keras: about a million objects that live
    as long as the process) out of the garbage collector's reach (``gc.freeze``): each
    later full collection would walk them all again, ~0.15 s apiece, at moments nobody
    chose (bench/run.py end_to_end: start-up to the first step). The command's own
    garbage is collected as before."""
    import gc

    gc.freeze()


def schema_document() -> dict:
    """The JSON Schema of the format, annotated with the CLI's commands and options (what
    `kerapipe schema` prints and schema/pipeline.schema.json holds)."""
    from kerapipe.spec.schema import pipeline_json_schema

    document = pipeline_json_schema()
    document["x-kerapipe-commands"] = command_reference()
    return document


def command_reference() -> list[dict]:
    """Every command with its arguments and options, read from click's declarations."""
    # The context that `kerapipe ...` itself gets (context_settings: -h as well as --help).
    context = cli.make_context("kerapipe", [], resilient_parsing=True)
    reference = [{"command": "kerapipe", "help": cli.help,
                  "options": _options(cli.get_params(context))}]
    for name in sorted(cli.commands):
        command = cli.commands[name]
        params = command.get_params(context)
        reference.append({
            "command": f"kerapipe {name}",
            "help": (command.help or "").split("\n\n")[0].strip(),
            "arguments": [p.human_readable_name for p in params
                          if isinstance(p, click.Argument)],
            "options": _options(params)})
    return reference


def _options(params: list) -> list[dict]:
    # Short names first: click keeps the help option's names in a set (no fixed order).
    return [{"names": sorted(p.opts, key=lambda name: (name.startswith("--"), name)), "help": p.help or "", "flag": bool(p.is_flag)}
            for p in params if isinstance(p, click.Option)]


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(EXIT_SIGTERM)


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point: maps every failure to its documented exit code, never a traceback."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        cli.main(args=argv, prog_name="kerapipe", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        sys.exit(EXIT_SIGINT)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except KerapipeError as err:
        if os.environ.get("KERAPIPE_DEBUG"):
            import traceback  # only here: the success path never needs it

            traceback.print_exception(err)  # with its cause: what the user's code raised
        err.show()
        sys.exit(err.exit_code)
    except KeyboardInterrupt as err:
        click.echo(f"Interrupted.{_notes(err)}", err=True)
        sys.exit(EXIT_SIGINT)
    except Exception as err:  # a bug in kerapipe, never a problem in the user's input
        from kerapipe.dependencies import missing_package_error

        missing = missing_package_error(err, sys.argv[1:] if argv is None else argv)
        if missing is not None:  # the light install (no TensorFlow), or an extra not installed
            missing.show()
            sys.exit(missing.exit_code)
        if os.environ.get("KERAPIPE_DEBUG"):
            raise
        click.echo(f"internal error: {type(err).__name__}: {err}{_notes(err)}\nThis is a bug "
                   "in kerapipe; rerun with KERAPIPE_DEBUG=1 for the traceback and report it.",
                   err=True)
        sys.exit(EXIT_INTERNAL)


def _echo_run_summary(result) -> None:
    """``kerapipe run``'s summary (``format_run_summary``: its MLflow run included)."""
    from kerapipe.report import format_run_summary

    click.echo(format_run_summary(result))


def _notes(err: BaseException) -> str:
    """What the run side added to an error on its way out (what the run folder kept)."""
    return "".join(f"\n{note}" for note in getattr(err, "__notes__", ()))
