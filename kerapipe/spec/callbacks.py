"""``train.callbacks``: Keras callbacks by their Keras name, ``ReduceLROnPlateau: {...}``.

A callback is written as a layer is, ``ClassName: {keyword: value}`` (or the bare name),
and checked the same way against the shipped catalogue (``keras_catalog.json``:
``callbacks`` and ``refused_callbacks``, written by ``scripts/gen_keras_catalog.py``):
an unknown name gets a did-you-mean, a refused one the reason and the kerapipe key that
does the job, an unknown argument the accepted ones. Each argument's value is checked by
its type in the catalogue (``args``: the bounds Keras or kerapipe's run needs, such as
``factor`` below 1), so Keras never refuses one when the run builds the callback.

Across keys (``callback_issues``, once the file is typed): ``monitor`` by the rule of
``train.early_stopping.monitor`` (``checks.monitor_issues``); the options that need
another key (a schedule, an EMA optimizer); and the files a callback writes
(``PATH_ARGUMENTS``): relative paths that stay inside the run folder and are none of its
own files (``run_path_problem``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from kerapipe.spec.catalog import Family, load_catalog
from kerapipe.spec.issues import WARNING, Issue, Path, did_you_mean, safe_repr
from kerapipe.spec.keras_objects import (_check_named_object, _NamedKerasObject, _single_key,
                                         named_object_schema)

MAX_CALLBACKS = 32

# Arguments that name a file or folder the callback writes: resolved inside the run folder.
PATH_ARGUMENTS = {("TensorBoard", "log_dir"), ("CSVLogger", "filename")}

# What kerapipe writes directly in a run folder (kerapipe/run_folder.py), which a
# callback's path may not name or enter; atomic writes use `.tmp-*` names there too.
RUN_FOLDER_NAMES = ("spec.yaml", "run.json", "history.csv", "metrics.json", "predictions.csv",
                    "predictions.npz", "model.keras", "checkpoints")
_TEMPORARY_PREFIX = ".tmp-"
# What a finished run's folder holds besides RUN_FOLDER_NAMES: the report's files and
# output.tensorboard's logs (README "Plots and the report"). A callback path under one of
# them was valid before there was a report, so it stays valid, with a warning; the run
# then leaves the report unwritten rather than overwrite the callback's files.
REPORT_NAMES = ("model_summary.txt", "plots", "classification_report.csv", "report.html",
                "tensorboard", "export")


@dataclass(frozen=True)
class _CallbackCatalog:
    family: Family
    refused: dict  # name -> why
    defaults: dict  # name -> {argument: default} (plain values only)


def callback_catalog() -> _CallbackCatalog:
    """The catalogue's callback sections (``load_catalog``'s)."""
    catalog = load_catalog()
    return _CallbackCatalog(catalog.callbacks, catalog.refused_callbacks,
                            catalog.callback_defaults)


@dataclass(frozen=True)
class CallbackSpec(_NamedKerasObject, family="callbacks", noun="callback"):
    """A Keras callback: `ClassName: {keyword: value}` exactly as in keras.callbacks."""

    @classmethod
    def from_yaml(cls, value: Any, path: Path, issues: list[Issue]) -> "CallbackSpec | None":
        parsed = _single_key(value, "callback", path, issues)
        if parsed is None:
            return None
        name, kwargs = parsed
        catalog = callback_catalog()
        if isinstance(name, str) and name in catalog.refused:
            issues.append(Issue("refused-callback", path + (name,), f"callback '{name}' is not "
                                f"offered in a pipeline file: {catalog.refused[name]}.",
                                at_key=True))
            return None
        if isinstance(name, str) and catalog.family.get(name) is None:
            issues.append(Issue("unknown-callback", path + (name,), f"unknown callback "
                                f"'{name}'.{did_you_mean(name, catalog.family.names())} Names "
                                "are Keras's own class names; `kerapipe schema` lists them "
                                "all.", at_key=True))
            return None
        before = len(issues)
        kwargs = _check_named_object(catalog.family, "callback", name, kwargs, path, issues)
        if len(issues) > before:
            return None
        _check_values(name, kwargs, path + (name,), issues)
        return cls(name, kwargs) if len(issues) == before else None

    def argument(self, arg: str) -> Any:
        """The argument as written, else Keras's default (``None`` when it has none)."""
        if arg in self.kwargs:
            return self.kwargs[arg]
        return callback_catalog().defaults.get(self.name, {}).get(arg)

    @staticmethod
    def json_schema() -> dict:
        schema = named_object_schema(callback_catalog().family, allow_bare=True)
        schema["description"] = "A keras.callbacks class: `ClassName: {keyword: value}`."
        return schema


def _check_values(name: str, kwargs: dict, path: Path, issues: list[Issue]) -> None:
    """What one callback's typed arguments cannot be, whatever the rest of the file."""
    if name == "TerminateOnNaN" and kwargs.get("raise_error") is True:
        issues.append(Issue("not-applicable", path + ("raise_error",), "kerapipe stops a run at "
                            "the first NaN or infinite loss itself (exit 4, the run folder "
                            "keeps the last good checkpoint); raise_error would end it with a "
                            "Python traceback instead. Remove it. Received: raise_error=True"))
    if name == "TensorBoard" and kwargs.get("embeddings_metadata") is not None:
        issues.append(Issue("not-applicable", path + ("embeddings_metadata",), "embeddings_"
                            "metadata names files for TensorBoard to read beside its logs, "
                            "which a new run folder cannot hold yet, so kerapipe does not "
                            "pass it on. Remove it (embeddings_freq still logs the "
                            "embeddings). Received: embeddings_metadata="
                            f"{safe_repr(kwargs['embeddings_metadata'])}"))
    profile = kwargs.get("profile_batch")
    if isinstance(profile, list) and (len(profile) != 2 or profile[0] > profile[1]):
        issues.append(Issue("wrong-type", path + ("profile_batch",), "profile_batch is a batch "
                            "number (0: no profiling) or [first, last], two batch numbers in "
                            f"order, e.g. [10, 20]. Received: profile_batch={safe_repr(profile)}"))
    separator = kwargs.get("separator")
    if isinstance(separator, str) and len(separator) != 1:
        issues.append(Issue("wrong-type", path + ("separator",), "separator is one character "
                            "(Python's csv module writes the file), e.g. ',' or ';'. "
                            f"Received: separator={safe_repr(separator)}"))


def run_path_problem(value: str, reserved: tuple[str, ...] = ()) -> Optional[str]:
    """Why ``value`` cannot be a path inside a run folder, or ``None`` when it can.

    It must be relative, without ``..``, a URL or a control character, name something
    below the folder (not the folder itself), and not name or enter one of the run
    folder's own files (``RUN_FOLDER_NAMES``, the ``.tmp-*`` names of atomic writes, and
    ``reserved``: the copies of the pipeline's imported files).
    """
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "it holds a NUL byte or another control character"
    if "://" in value:
        return "it is a URL (TensorFlow would write there)"
    parts = [part for part in value.replace("\\", "/").split("/") if part not in ("", ".")]
    if value.startswith(("/", "\\", "~")) or (len(value) > 1 and value[1] == ":"):
        return "it is absolute"
    if ".." in parts:
        return "it holds '..'"
    if not parts:
        return "it names the run folder itself"
    first = parts[0]
    if first in RUN_FOLDER_NAMES or first in reserved or first.startswith(_TEMPORARY_PREFIX):
        return f"'{first}' is one of the run folder's own files"
    return None


def written_paths(spec: Any) -> list[tuple[tuple, str, str]]:
    """``(key path, callback name, path)`` of every file or folder the file's callbacks
    write (a default such as TensorBoard's ``logs`` included), in file order."""
    found = []
    for index, callback in enumerate(spec.train.callbacks):
        for name, arg in sorted(PATH_ARGUMENTS):
            if name == callback.name:
                at = ("train", "callbacks", index, name)
                found.append((at + (arg,) if arg in callback.kwargs else at, name,
                              str(callback.argument(arg))))
    return found


def report_names_claimed(spec: Any) -> list[tuple[tuple, str, str]]:
    """``(key path, callback name, path)`` of each callback file in one of the report's
    places (``REPORT_NAMES``): the report is not written for such a run (the run side and
    ``kerapipe report`` ask here)."""
    return [(at, name, value) for at, name, value in written_paths(spec)
            if _first_part(value) in REPORT_NAMES]


def _first_part(value: str) -> str:
    parts = [part for part in value.replace("\\", "/").split("/") if part not in ("", ".")]
    return parts[0] if parts else ""


def callback_issues(spec: Any) -> list[Issue]:
    """The checks of ``train.callbacks`` across keys (a typed ``PipelineSpec``)."""
    from kerapipe.spec.checks import monitor_issues
    from kerapipe.spec.keras_objects import ScheduleSpec

    issues: list[Issue] = []
    for index, callback in enumerate(spec.train.callbacks):
        at = ("train", "callbacks", index, callback.name)
        if "monitor" in callback_catalog().family.get(callback.name).params:
            written = "monitor" in callback.kwargs
            issues += monitor_issues(spec, str(callback.argument("monitor")),
                                     at + ("monitor",) if written else at,
                                     "" if written else f" (the default of {callback.name})")
        if callback.name == "ReduceLROnPlateau" and isinstance(spec.optimizer.learning_rate,
                                                               ScheduleSpec):
            issues.append(Issue("not-applicable", at, "ReduceLROnPlateau sets the optimizer's "
                                "learning rate, but optimizer.learning_rate is a schedule, "
                                "which Keras cannot lower. Use a number as the learning rate, "
                                "or the schedule alone.", at_key=True))
        if callback.name == "SwapEMAWeights" and spec.optimizer.kwargs.get("use_ema") is not True:
            issues.append(Issue("not-applicable", at, "SwapEMAWeights swaps in the optimizer's "
                                "moving averages of the weights, which it keeps only with "
                                "`use_ema: true`. Add `use_ema: true` to optimizer.",
                                at_key=True))
    issues += _path_issues(spec)
    for at, name, value in report_names_claimed(spec):
        issues.append(Issue(
            "callback-path-shared", at, f"{name} writes into '{_first_part(value)}', where the "
            "run's report goes (plots/, report.html, ..., README \"Plots and the report\"), so "
            "the run will not write its report. Give the callback another path, e.g. "
            + ("`log_dir: logs`" if name == "TensorBoard" else "`filename: epochs.csv`")
            + f". Received: {safe_repr(value)}", severity=WARNING))
    return issues


def _path_issues(spec: Any) -> list[Issue]:
    from kerapipe.spec.checks import import_name

    reserved = tuple(entry.replace("\\", "/").split("/")[0] for entry in spec.imports
                     if import_name(entry) is not None and entry.endswith(".py"))
    issues: list[Issue] = []
    seen: list[tuple[tuple[str, ...], str]] = []
    for at, name, value in written_paths(spec):
        problem = run_path_problem(value, reserved)
        if problem is not None:
            issues.append(Issue("bad-callback-path", at, f"{name} writes here, inside the run "
                                f"folder, but {problem}. Give a relative path of a new file "
                                "or folder in the run folder, e.g. "
                                + ("`log_dir: logs`" if name == "TensorBoard" else
                                   "`filename: epochs.csv`")
                                + f". Received: {safe_repr(value)}"))
            continue
        parts = tuple(p for p in value.replace("\\", "/").split("/") if p not in ("", "."))
        other = next((was for was_parts, was in seen
                      if parts[:len(was_parts)] == was_parts or was_parts[:len(parts)] == parts),
                     None)
        if other is not None:
            issues.append(Issue("bad-callback-path", at, f"{name} would write where another "
                                f"callback writes ('{other}'). Give each its own path. "
                                f"Received: {safe_repr(value)}"))
        seen.append((parts, value))
    return issues
