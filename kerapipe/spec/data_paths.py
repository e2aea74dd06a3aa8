"""The data a pipeline file names on disk, found the way the run finds it.

One rule for where a relative data path leads (``data_folder``, ``resolve_data_path``,
``data_glob``): the run's sources open their files through it, and ``validate`` uses it
to warn (``missing-data``) about a named file, folder or glob that is not there. A
warning, not an error: CI often checks pipeline files without their data. Named data
sets (``sample``, ``keras``, ``tfds``) are downloads or shipped files, never paths.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path as FsPath
from typing import Iterator, Optional

from kerapipe.spec.issues import WARNING, Issue, Path, safe_repr
from kerapipe.spec.known_datasets import source_data_paths


def data_folder(pipeline_file: Optional[str]) -> str:
    """The folder a pipeline's relative data paths start from: the pipeline file's own
    folder, links followed (a linked pipeline reads the data next to its real file);
    the current directory for a pipeline given as text or a dict."""
    return str(FsPath(pipeline_file).resolve().parent) if pipeline_file else os.getcwd()


def resolve_data_path(base: str, path: str) -> str:
    """A data path from the spec, relative to ``base`` (``data_folder``); ``~`` expanded."""
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def data_path_from(base: str, target: str) -> str:
    """How a pipeline in ``base`` (``data_folder``) names the data at ``target`` (absolute):
    relative to ``base``, as written by hand; absolute when the two share no folder but
    the root (``../../../../srv/data.csv`` says less and breaks when either moves)."""
    target = os.path.abspath(target)
    if os.path.commonpath([base, target]) == os.path.dirname(os.path.abspath(os.sep)):
        return target.replace(os.sep, "/")
    return os.path.relpath(target, base).replace(os.sep, "/")


def data_glob(base: str, pattern: str) -> list[str]:
    """What a file glob from the spec (``data/train-*.tfrecord``, ``**``) matches under
    ``base``, unsorted; ``base`` itself is taken literally (it may hold ``[`` or ``*``)."""
    return glob.glob(os.path.join(glob.escape(base), pattern), recursive=True)


def named_data_paths(spec) -> Iterator[tuple[Path, str, str]]:
    """``(key path, value, what)`` of every data path the spec names: the source's file,
    folder or globs (``known_datasets.source_data_paths``) and the split files
    (``data.split.validation: {file: ...}``), each of the kind the source reads."""
    found = source_data_paths(spec.data.source)
    for path, value, what in found:
        yield ("data", "source") + path, value, what
    for part, file in spec.data.split.files.items():
        yield ("data", "split", part, "file"), file, found[0][2] if found else "file"


def pipeline_paths(spec) -> Iterator[tuple[Path, str, str, bool]]:
    """``(key path, value, what, inside)`` of every path the spec names relative to the
    pipeline file's folder: its data (``named_data_paths``), its imported ``.py`` files
    (``imports``) and the files its layers read (``vocabulary``, a backbone's ``weights``
    file: ``validate.file_arguments``).
    ``inside``: the spec refuses the path unless it stays inside that folder (TFRecord
    globs, imports, layer files), so another file can name such a file only in its own
    folder. Module names, URLs and ``output.dir`` (the current directory's) are no such
    paths; a file that ``extends:`` another is resolved before this is asked."""
    from kerapipe.spec.validate import file_arguments  # it imports this module

    for path, value, what in named_data_paths(spec):
        yield path, value, what, what == "glob"  # TfrecordSource.check_local
    for index, entry in enumerate(spec.imports):
        if entry.endswith(".py"):
            yield ("imports", index), entry, "import", True
    for path, value in file_arguments(spec):
        yield path, value, "file", True


def missing_data_issues(spec, pipeline_file: Optional[str]) -> list[Issue]:
    """A ``missing-data`` warning for each data path of ``spec`` (``named_data_paths``)
    that leads nowhere from the pipeline's folder, and each glob that matches nothing.

    Args:
        spec: a typed ``PipelineSpec``.
        pipeline_file: the pipeline file the paths are relative to; ``None`` for text.
    """
    base = data_folder(pipeline_file)
    issues: list[Issue] = []
    for path, value, what in named_data_paths(spec):
        if what == "glob":
            if data_glob(base, value):
                continue
            looked = os.path.join(base, value)
            found = f"matches no file (looked for {looked})"
        else:
            looked = resolve_data_path(base, value)
            if os.path.exists(looked):
                continue
            found = f"does not exist (looked for {looked})"
        issues.append(missing_data(path, what, value, found))
    return issues


def missing_data(path: Path, what: str, value: str, found: str) -> Issue:
    """The ``missing-data`` warning at ``path`` for ``value``, a ``what`` that ``found``
    (``does not exist (looked for ...)``)."""
    key = next(part for part in reversed(path) if isinstance(part, str))
    return Issue("missing-data", path, f"the {what} {safe_repr(value)} {found}, so a run "
                 "would stop there. Paths are relative to the pipeline file's folder: fix "
                 "the path, or ignore this where the data is not at hand (CI). Received: "
                 f"{key}={safe_repr(value)}", severity=WARNING)
