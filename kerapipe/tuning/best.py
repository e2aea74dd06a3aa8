"""best.yaml: the pipeline with the best trial's values, ``tune:`` removed, its relative
paths rebased onto the tune folder, and best-files/, the copies of the files a pipeline's
folder must hold (imports, vocabulary, TFRecord and backbone weights files)."""

from __future__ import annotations

import filecmp
import json
import os
import posixpath
import shutil
from pathlib import Path
from typing import Any, NamedTuple, Optional, Sequence

from kerapipe.errors import DataError, KerapipeError, OutputError, SpecError, UsageError
from kerapipe.safe_io import write_text_atomic
from kerapipe.spec.validate import validate_file
from kerapipe.tuning.space import trial_overrides


class BestPipeline(NamedTuple):
    """best.yaml's text and the files it names in its own folder: ``{path under the tune
    folder: (the pipeline's file, whether a hard link may stand for a copy)}``."""

    text: str
    copies: dict
    placed: dict  # key path -> the path best.yaml names there


def write_best_pipeline(file: str, overrides: Sequence[str], values: dict,
                        tune_dir: Path, ran_in: Sequence[str] = ()) -> Path:
    """Write best.yaml (``best_pipeline``) and the copies it names, in best-files/. When a
    resumed search found another best, or the pipeline's files changed since, best-2.yaml
    and best-2-files/, ...: an earlier one is never overwritten, nor the same written twice.
    ``ran_in``: the best trial's run folder (under ``tune_dir``), whose copy of each
    imported file is the code the trial ran.

    Raises:
        DataError: a file best.yaml needs a copy of is no longer there.
        OutputError: the copies or best.yaml cannot be written.
    """
    for index in range(1, 1000):
        stem = "best" if index == 1 else f"best-{index}"
        path, files_dir = tune_dir / f"{stem}.yaml", tune_dir / f"{stem}-files"
        best = best_pipeline(file, overrides, values, tune_dir, files_dir.name,
                             [tune_dir / run for run in ran_in])
        if path.exists():
            if _same_text(path, best.text) and all(
                    _same_file(source, tune_dir / copy)
                    for copy, (source, _) in best.copies.items()):
                return path
            continue
        _place_copies(tune_dir, files_dir, best.copies)
        _check_placed(best, path)
        write_text_atomic(path, best.text)
        return path
    raise UsageError(f"{tune_dir} holds 999 best-*.yaml files; start a new search.")


def best_pipeline(file: str, overrides: Sequence[str], values: dict,
                  written_in: Optional[Path] = None, files_folder: str = "best-files",
                  ran_in: Sequence[Path] = ()) -> BestPipeline:
    """best.yaml: the pipeline as it validates with its ``--set`` values and the best
    ``values`` (``extends:`` merged in, ``${env:...}`` read), ``tune:`` removed, as YAML.

    With ``written_in`` (best.yaml's folder), every path the file names relative to its
    folder (``data_paths.pipeline_paths``) names the same file from there: a data path is
    rebased onto it; a path that must stay inside the pipeline's folder (``imports``,
    ``vocabulary``, TFRecord globs) names a copy in ``files_folder`` (inside
    ``written_in``) at the same relative path, as no path can lead from best.yaml's folder
    to the pipeline's. An imported file is copied from the trial's run folder
    (``ran_in``, which keeps the code it ran) when it is there; a TFRecord file may be a
    hard link (data can be large).
    """
    import yaml

    from kerapipe.spec.data_paths import data_folder, data_path_from, pipeline_paths

    result = validate_file(file, [*overrides, *trial_overrides(values), "tune="])
    if result.spec is None or result.document is None:  # the best trial validated: a bug
        raise SpecError(result.errors)
    data = {k: v for k, v in result.document.data.items() if k != "tune"}
    folder = data_folder(file)
    copies: dict[str, tuple[str, bool]] = {}
    placed = {}
    if written_in is not None:
        here = data_folder(str(Path(written_in) / "best.yaml"))  # links resolved, as a run's
        for key_path, value, what, inside in pipeline_paths(result.spec):
            if inside:
                new = _copied_path(folder, value, what, files_folder, copies, ran_in)
            elif os.path.isabs(os.path.expanduser(value)):
                continue
            else:
                new = data_path_from(here, os.path.join(folder, os.path.expanduser(value)))
            if not _set_in(data, key_path, value, new):
                raise _unplaced([key_path])
            placed[key_path] = new
    header = (f"# kerapipe tune: {os.path.basename(file)} with the best trial's values "
              f"({', '.join(f'{k}={json.dumps(v)}' for k, v in values.items())}).\n"
              + ("# Its relative paths lead from this folder to the files the search read"
                 + (f"; {files_folder}/ holds copies of those a pipeline's folder must hold "
                    "(imports, vocabulary, TFRecord and backbone weights files).\n" if copies else ".\n")
                 if placed else ""))
    text = header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None,
                                   allow_unicode=True)
    return BestPipeline(text, copies, placed)


def _copied_path(folder: str, value: str, what: str, files_folder: str,
                 copies: dict, ran_in: Sequence[Path] = ()) -> str:
    """The path under best.yaml's folder of the copy of ``value`` (a file, or the files a
    glob matches in ``folder``), recorded in ``copies``."""
    from kerapipe.spec.data_paths import data_glob
    from kerapipe.spec.validate import inside_folder

    relative = _inside_path(folder, value)
    if what == "glob":
        for match in sorted(data_glob(folder, value)):
            if os.path.isfile(match):  # `data/**` also matches folders: the run skips them
                copies[posixpath.join(files_folder, _inside_path(folder, match))] = (
                    os.path.realpath(match), True)
    else:
        kept = [run / os.path.normpath(value) for run in ran_in if what == "import"]
        source = (str(kept[0]) if kept and kept[0].is_file()  # RunFolder.copy_imports
                  else inside_folder(folder, value))
        if source is None or not os.path.isfile(source):
            raise DataError(f"{value}: no such file (looked for "
                            f"{os.path.join(folder, value)}). The search read it; best.yaml "
                            "needs a copy of it. Put it back and resume the search "
                            "(kerapipe tune --resume TUNE_DIR).")
        copies[posixpath.join(files_folder, relative)] = (source, False)
    return posixpath.join(files_folder, relative)


def _inside_path(folder: str, value: str) -> str:
    """``value`` (inside ``folder``: the spec checked it) as a ``/`` path from ``folder``,
    as written where it can be (a linked file keeps its name: an import's module name)."""
    path = os.path.relpath(os.path.join(folder, os.path.expanduser(value)), folder)
    if path.startswith(os.pardir) or os.path.isabs(path):  # `link/..`: only the real one
        path = os.path.relpath(os.path.realpath(os.path.join(folder, value)),
                               os.path.realpath(folder))
    return path.replace(os.sep, "/")


def _set_in(data: Any, key_path: tuple, old: str, new: str) -> bool:
    """Replace ``old`` at ``key_path`` of the loaded file, or where a shorthand on the way
    holds it (``npz: data.npz`` for ``data.source.npz.path``); whether it was there."""
    node = data
    for depth, part in enumerate(key_path):
        if isinstance(node, dict) and part in node or (
                isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)):
            if depth == len(key_path) - 1 or isinstance(node[part], str):
                if node[part] != old:
                    return False
                node[part] = new
                return True
            node = node[part]
        else:
            return False
    return False


def _check_placed(best: BestPipeline, path: Path) -> None:
    """best.yaml, validated where it goes (its copies in place), names each path where it
    was placed: a typed key that the file writes elsewhere would be left as it was."""
    from kerapipe.spec.data_paths import pipeline_paths
    from kerapipe.spec.validate import validate_text

    if not best.placed:
        return
    result = validate_text(best.text, str(path))
    if result.spec is None:
        raise SpecError(result.errors)
    found = {key_path: value for key_path, value, _, _ in pipeline_paths(result.spec)}
    wrong = [key_path for key_path, new in best.placed.items() if found.get(key_path) != new]
    if wrong:
        raise _unplaced(wrong)


def _unplaced(key_paths: list) -> KerapipeError:
    """A path best.yaml could not rebase (a kerapipe bug: the exit code is internal)."""
    where = ", ".join("".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
                      .lstrip(".") for path in key_paths)
    return KerapipeError(f"kerapipe tune cannot write best.yaml: the path at {where} would "
                         "not lead to the file the search read. Please report this; the "
                         "trials' run folders and tune.json are complete.")


def _place_copies(tune_dir: Path, files_dir: Path, copies: dict) -> None:
    """Write the copies into ``files_dir`` at once: into a new folder, then renamed (a
    folder left by a write cut short, before its best.yaml, is replaced)."""
    if not copies:
        return
    partial = tune_dir / f".{files_dir.name}.partial"
    try:
        for stale in (partial, files_dir):
            if stale.is_dir():
                shutil.rmtree(stale)
        for copy, (source, may_link) in copies.items():
            target = partial / (tune_dir / copy).relative_to(files_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            if may_link:
                try:
                    os.link(source, target)
                    continue
                except OSError:  # another file system, or links not allowed: a copy
                    pass
            shutil.copyfile(source, target)
        os.replace(partial, files_dir)
    except OSError as err:
        raise OutputError(f"cannot write the copies best.yaml names into {files_dir}: "
                          f"{err}") from err


def _same_text(path: Path, text: str) -> bool:
    try:
        return path.read_text("utf-8") == text
    except (OSError, ValueError):
        return False


def _same_file(source: str, copy: Path) -> bool:
    try:
        return copy.is_file() and (os.path.samefile(source, copy)
                                   or filecmp.cmp(source, copy, shallow=False))
    except OSError:
        return False
