"""The spec side's front door: YAML text -> located document -> typed spec -> issues.

``validate`` and ``run`` share this path, so a file that validates is exactly a file
that compiles (dbt-style: one front end for the parse-only and the real command).
"""

from __future__ import annotations

import copy
import dataclasses
import glob
import os
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any, Iterable, Iterator, Optional, Sequence, Union

from kerapipe.errors import SpecError
from kerapipe.safe_io import open_regular
from kerapipe.spec.applications import WEIGHT_NAMES, WEIGHTS, is_backbone, weights_issues
from kerapipe.spec.callbacks import callback_issues
from kerapipe.spec.checks import every_layer, import_name, run_checks
from kerapipe.spec.compose import EXTENDS, pipeline_folder, resolve_extends, substitute_env
from kerapipe.spec.data_paths import missing_data, missing_data_issues
from kerapipe.spec.issues import (ERROR, MAX_ISSUES, NOTE, WARNING, Issue, safe_repr,
                                   suggestion_budget)
from kerapipe.spec.model import LayerSpec, PipelineSpec, default_run_name, parse_pipeline
from kerapipe.spec.overrides import apply_overrides
from kerapipe.spec.weights import weight_issues
from kerapipe.spec.stages import stage_issues
from kerapipe.spec.tune import tune_issues
from kerapipe.spec.splits import split_issues
from kerapipe.spec.yaml_loader import (MAX_FILE_BYTES, Document, LoadProblem, bound_plain_data,
                                       load_document)

PIPELINE_SUFFIXES = (".yaml", ".yml")


@dataclass
class ValidationResult:
    """What validating one pipeline file found.

    Args:
        file: the file name used in messages.
        spec: the typed spec, or ``None`` when there are errors.
        issues: every problem found, errors and warnings, in file order.
        document: the loaded YAML with positions, or ``None`` when it did not load.
        path: the pipeline file validated, or ``None`` for text or a dict (relative paths
            in the spec are relative to its folder).
        overrides: the ``--set`` values applied before validation.
    """

    file: str
    spec: Optional[PipelineSpec]
    issues: list = field(default_factory=list)
    document: Optional[Document] = None
    path: Optional[str] = None
    overrides: tuple = ()

    @property
    def bases(self) -> list[str]:
        """The files ``extends:`` merged in, nearest first (for run.json)."""
        return list(self.document.bases) if self.document is not None else []

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == ERROR]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == WARNING]

    def ok(self, strict: bool = False) -> bool:
        return not self.errors and not (strict and self.warnings)

    def locate(self, issues: list[Issue]) -> list[Issue]:
        """Give issues found after validation (by compiling, by a command) the file, line
        and column of their key in this result's document; returns them."""
        for issue in issues:
            if self.document is not None:
                self.document.locate(issue)
            else:
                issue.file = self.file
        return issues


def validate_data(data: Any, file: str = "<dict>", document: Optional[Document] = None
                  ) -> ValidationResult:
    """Validate already-loaded data (a dict), positions taken from ``document`` if given.

    The report is bounded: at most ``MAX_ISSUES`` issues in file order, then one
    ``too-large`` issue that counts the rest (see ``bound_report``).
    """
    issues: list[Issue] = list(document.issues) if document else []
    data = bound_plain_data(data, issues)  # data from YAML is bounded already; a dict may not be
    if isinstance(data, dict) and EXTENDS in data:  # not resolved: a dict, or a run's spec.yaml
        issues.append(Issue("bad-extends", (EXTENDS,), "`extends` is read only as a key of "
                            "a pipeline file or YAML text, before the rest of it; not in a "
                            "dict given to the API, a --set or a run folder's spec.yaml "
                            "(resolved already). Write it in the file, or merge the base in "
                            "Python.", at_key=True))
        data = {key: value for key, value in data.items() if key != EXTENDS}
    with suggestion_budget():
        spec = parse_pipeline(data, issues)
        if spec is not None and not any(i.severity == ERROR for i in issues):
            issues += run_checks(spec)
            issues += weight_issues(spec)
            issues += callback_issues(spec)
            issues += stage_issues(spec)
            issues += split_issues(spec.data)
            issues += check_file_arguments(spec, file)
            issues += tune_issues(spec, data, file)  # after the rest: it validates again
            if spec.name is None:
                spec = dataclasses.replace(spec, name=default_run_name(file))
    for issue in issues:
        if document is not None:
            document.locate(issue)
        else:
            issue.file = file
    issues = in_file_order(issues, document)
    has_errors = any(i.severity == ERROR for i in issues)
    return ValidationResult(file, None if has_errors else spec, bound_report(issues), document)


def in_file_order(issues: list[Issue], document: Optional[Document]) -> list[Issue]:
    """``issues`` sorted by line and column: the file's (and the ``--set``'s) first, then
    those of each base it ``extends:``, nearest first."""
    order = {base: rank for rank, base in enumerate(document.bases, 1)} if document else {}
    return sorted(issues, key=lambda i: (order.get(i.file, 0), i.line, i.column))


def bound_report(issues: list[Issue], limit: int = MAX_ISSUES) -> list[Issue]:
    """The first ``limit`` issues, and one ``too-large`` issue for the rest, at the first
    one left out: its severity is the highest of theirs, so a result fails as before."""
    if len(issues) <= limit:
        return issues
    rest = issues[limit:]
    counts = {sev: sum(i.severity == sev for i in rest) for sev in (ERROR, WARNING, NOTE)}
    shown = " and ".join(f"{n} {sev}(s)" for sev, n in counts.items() if n)
    severity = next(sev for sev in (ERROR, WARNING, NOTE) if counts[sev])
    first = rest[0]
    return issues[:limit] + [Issue(
        "too-large", (), f"{len(rest)} more issue(s) from here on are not shown ({shown}): "
        f"a report stops at {limit} issues per file. Fix the ones above and validate again.",
        severity=severity, file=first.file, line=first.line, column=first.column)]


# Keras layer arguments that name a file Keras will read. Audited against Keras 3.15 and
# keras-hub 0.32 (keras_catalog.json; every argument named like a path, file, dir, url,
# origin, preset, weights or vocabulary): `vocabulary` of StringLookup, IntegerLookup
# and TextVectorization takes a path (read with tf.io.gfile, which also reads URLs such
# as gs://), and so does a backbone's `weights` (``applications.WEIGHTS``). `idf_weights`,
# `mean`/`variance` and the `weights` of Embedding, Bidirectional and ReversibleEmbedding
# take arrays; initializers, regularizers and constraints take names or configs; the
# keras-hub layers a file may use have no preset or file argument (tokenizers and
# `from_preset` models are not layers there). Callbacks write only inside the run folder
# (``callbacks.PATH_ARGUMENTS``).
FILE_ARGUMENTS = ("vocabulary",)


def is_file_argument(owner: Any, key: Any, value: Any) -> bool:
    """Whether ``value``, given as the argument ``key`` of ``owner`` (the layer name, or
    the key of the mapping holding it), names a file that Keras would read."""
    if not isinstance(value, str):
        return False
    if key in FILE_ARGUMENTS:
        return True
    return key == WEIGHTS and value not in WEIGHT_NAMES and is_backbone(owner)


def check_file_arguments(spec: PipelineSpec, file: str) -> list[Issue]:
    """A layer argument that reads a file must point inside the pipeline's own folder.

    A pipeline file from someone else must not make kerapipe read ``/etc/passwd`` or
    ``~/.ssh/id_rsa`` into a vocabulary or a backbone's weights (and from there into a
    saved model). Every layer is checked (``checks.every_layer``: nested ones, ``Random*``
    steps), and so is every mapping or list inside a layer's arguments (e.g. ``Pipeline:
    {layers: [...]}``). The check never touches the file, so its answer cannot tell
    whether an outside path exists.
    """
    folder = pipeline_folder(file)
    issues: list[Issue] = []
    for path, value in file_arguments(spec):
        if inside_folder(folder, value) is None:
            weights = path[-1] == WEIGHTS and is_backbone(path[-2])
            what = "a backbone's weights file" if weights else "a file a layer reads"
            hint = (" (or use `weights: imagenet`, which Keras downloads into its cache, or "
                    "`weights: null`)" if weights else "")
            issues.append(Issue("outside-path", path, f"{safe_repr(value)} is not a "
                                f"path inside the pipeline's folder; {what} "
                                "must be next to the pipeline file or below it "
                                "(absolute paths, `~`, `..` that leave the folder, "
                                "links that lead out, URLs and NUL bytes are refused). "
                                "Copy the file there and name it relative to the "
                                f"pipeline{hint}."))
    outside = {issue.path for issue in issues}  # said once: outside, whatever its name
    issues += [issue for layer_path, layer in every_layer(spec)
               for issue in weights_issues(layer, layer_path) if issue.path not in outside]
    for index, entry in enumerate(spec.imports):
        if not entry.endswith(".py") or import_name(entry) is None:
            continue  # a module name, or an entry check_imports refuses already
        target = inside_folder(folder, entry)
        if target is None:
            issues.append(Issue("outside-path", ("imports", index), f"'{entry}' is outside the "
                                "pipeline's folder; an imported file must be inside it. Copy "
                                "it there, or install it and import it by module name."))
        elif os.path.isdir(target):
            issues.append(Issue("missing-import", ("imports", index), f"'{entry}' is a folder, "
                                f"not a Python file (looked at {target}). Name the `.py` file "
                                "itself, or import a package by its module name."))
        elif not os.path.isfile(target):
            issues.append(Issue("missing-import", ("imports", index), f"'{entry}' does not "
                                f"exist (looked for {target}). Paths are relative to the "
                                "pipeline file."))
    return issues


def file_arguments(spec: PipelineSpec) -> Iterator[tuple[tuple, str]]:
    """``(key path, value)`` of every layer argument that names a file
    (``is_file_argument``: a ``vocabulary``, a backbone's ``weights`` file) as a string,
    in every layer (``checks.every_layer``) and every mapping or list inside a layer's
    arguments (e.g. ``Pipeline: {layers: [...]}``)."""
    for layer_path, layer in every_layer(spec):
        # a loop over (path, value), not recursion: a dict given to the API may nest deeply
        pending = [(layer_path + (layer.name, k), layer.name, k, v)
                   for k, v in layer.kwargs.items()
                   if not isinstance(v, LayerSpec)]  # every_layer visits those
        while pending:
            path, owner, key, value = pending.pop()
            if is_file_argument(owner, key, value):
                yield path, value
            elif isinstance(value, (dict, list)):
                # a mapping's items belong to the key holding it (`{applications.X: {...}}`)
                inner = key if isinstance(value, dict) else owner
                items = value.items() if isinstance(value, dict) else enumerate(value)
                pending += [(path + (k,), inner, k, v) for k, v in items]


def data_path_issues(spec: PipelineSpec, file: str) -> list[Issue]:
    """A ``missing-data`` warning for each file, folder or glob of data that the pipeline
    file ``file`` names and that is not there (``data_paths.missing_data_issues``), and for
    each file a layer would read (``vocabulary``, a backbone's ``weights``) that is
    missing. Only for a file on disk: a run folder's ``spec.yaml`` names paths relative to
    the pipeline it came from."""
    issues = missing_data_issues(spec, file)
    folder = pipeline_folder(file)
    for path, value in file_arguments(spec):
        target = inside_folder(folder, value)
        if target is not None and not os.path.exists(target):  # outside: an error already
            issues.append(missing_data(path, "file", value, f"does not exist (looked for "
                                       f"{target})"))
    return issues


def inside_folder(folder: str, value: str) -> Optional[str]:
    """``value`` resolved against ``folder`` (links followed) when it stays inside it.

    ``None`` for a path that leaves the folder, a URL (``gs://...``: tf.io.gfile would
    fetch it) and a string the OS cannot take as a path (a NUL byte).
    """
    if "\0" in value or "://" in value:
        return None
    target = os.path.realpath(os.path.join(folder, os.path.expanduser(value)))
    root = os.path.realpath(folder)
    return target if os.path.commonpath([target, root]) == root else None


def validate_text(text: str, file: str = "<string>", overrides: Sequence[str] = (), *,
                  resolve: bool = True) -> ValidationResult:
    """Validate pipeline YAML text; never raises for a problem in the text.

    Args:
        text: the YAML source.
        file: the name used in messages. Defaults to ``<string>``.
        overrides: ``KEY.PATH=VALUE`` strings applied before validation (``--set``).
        resolve: read ``extends:`` (relative to ``file``'s folder; the cwd for
            ``<string>``) and ``${env:NAME}`` references (``spec/compose.py``). Defaults to
            ``True``; a run folder's ``spec.yaml``, resolved already, is read without.
    """
    try:
        document = load_document(text, file)
        if resolve and isinstance(document.data, dict) and EXTENDS in document.data:
            document = resolve_extends(document, read_pipeline_text,
                                       len(text.encode("utf-8", "surrogatepass")))
    except LoadProblem as problem:
        return ValidationResult(file, None, [problem.issue])
    if overrides:
        override_issues = apply_overrides(document, list(overrides))
        if override_issues:
            return ValidationResult(file, None, override_issues, document,
                                    overrides=tuple(overrides))
    env_issues = substitute_env(document) if resolve and document.references else []
    if env_issues:  # the values are not what the file means: no typing on top of them
        issues = in_file_order([document.locate(i) for i in document.issues + env_issues],
                               document)
        return ValidationResult(file, None, bound_report(issues), document,
                                overrides=tuple(overrides))
    result = validate_data(document.data, file, document)
    result.overrides = tuple(overrides)
    return result


def validate_file(path: Union[str, os.PathLike], overrides: Sequence[str] = ()
                  ) -> ValidationResult:
    """Validate one pipeline file; an unreadable file is an issue, not an exception.

    Data the file names that is not there relative to its folder is a ``missing-data``
    warning (``data_path_issues``), which text and dicts are not checked for.
    """
    name = os.fsdecode(os.fspath(path))
    try:
        text = read_pipeline_text(name)
    except (OSError, ValueError) as err:  # ValueError: a NUL in the name, not UTF-8
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        return ValidationResult(name, None, [Issue("unreadable-file", (), f"cannot read the file: "
                                                   f"{reason}.", file=name)], path=name,
                                overrides=tuple(overrides))
    result = validate_text(text, name, overrides)
    result.path = name
    if result.spec is not None:
        result.issues = in_file_order(
            result.issues + result.locate(data_path_issues(result.spec, name)), result.document)
    return result


def read_pipeline_text(name: str) -> str:
    """A pipeline file's text: a regular file only (a FIFO would block, ``/dev/zero`` never
    end; ``kerapipe.safe_io.open_regular``), read up to one byte past the loader's size bound.

    Raises:
        OSError: it cannot be opened or is not a regular file.
        ValueError: the name holds a NUL byte, or the bytes are not UTF-8.
    """
    with os.fdopen(open_regular(name), "rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:  # the loader reports the size; a cut character is no matter
        return data.decode("utf-8", "replace")
    return data.decode("utf-8")


def validate_source(source: Union[str, os.PathLike, dict], overrides: Sequence[str] = ()
                    ) -> tuple[ValidationResult, Optional[str]]:
    """Validate a path, YAML text or dict; return the result and the file path (if any)."""
    if isinstance(source, dict):
        if overrides:
            bounded: list[Issue] = []  # before the copy: a dict may contain itself
            data = bound_plain_data(source, bounded)
            document = Document(data=copy.deepcopy(data), file="<dict>", issues=bounded)
            issues = apply_overrides(document, list(overrides))
            if issues:
                return ValidationResult("<dict>", None, issues, document,
                                        overrides=tuple(overrides)), None
            result = validate_data(document.data, "<dict>", document)
            result.overrides = tuple(overrides)
            return result, None
        return validate_data(source), None
    if not isinstance(source, (str, os.PathLike)):  # a list, None, ...: data of the wrong kind
        return validate_data(source), None
    text = os.fspath(source) if isinstance(source, os.PathLike) else source
    if not isinstance(text, str):  # a bytes path
        text = os.fsdecode(text)
    if isinstance(source, os.PathLike) or is_path_like(text):
        return validate_file(text, overrides), text
    return validate_text(text, "<string>", overrides), None


def load_spec(source: Union[str, os.PathLike, dict]) -> PipelineSpec:
    """A typed, validated spec from a path, a YAML string or a dict.

    Raises:
        SpecError: with every issue found, when the spec has errors.
    """
    result, _ = validate_source(source)
    if result.spec is None:
        raise SpecError(result.errors)
    return result.spec


def is_path_like(text: str) -> bool:
    """A one-line string naming a pipeline file (or any existing file) rather than YAML."""
    if "\n" in text:
        return False
    return text.endswith(PIPELINE_SUFFIXES) or os.path.isfile(text)


def collect_pipeline_files(paths: Iterable[str]) -> tuple[list[str], list[Issue]]:
    """Expand files, directories (recursively: ``*.yaml``, ``*.yml``) and globs.

    Returns the files in a stable order, and an issue for each path that matches nothing.
    """
    files: list[str] = []
    problems: list[Issue] = []
    for raw in paths:
        if os.path.isdir(raw):
            found = sorted(str(p) for p in FsPath(raw).rglob("*")
                           if p.suffix in PIPELINE_SUFFIXES and p.is_file())
        elif os.path.exists(raw):
            found = [raw]
        else:
            found = sorted(glob.glob(raw, recursive=True))
        if not found:
            problems.append(Issue("no-such-file", (), "no pipeline file matches this path.",
                                  file=raw))
        files += [f for f in found if f not in files]
    return files, problems
