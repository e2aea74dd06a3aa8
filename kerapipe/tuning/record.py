"""The tune folder's record, ``tune.json``: the state one search shares with its tuner,
written after every change (the file, its ``--set`` values, the tune section, the
trial budget, each trial's run folders and each failed trial's reason) and read back by ``--resume``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Sequence

from kerapipe.errors import UsageError
from kerapipe.safe_io import write_text_atomic
from kerapipe.spec.tune import TuneSpec
from kerapipe.spec.validate import ValidationResult, read_pipeline_text, validate_file

TUNE_RECORD = "tune.json"
PROJECT = "keras_tuner"


class Search:
    """The state one ``tune_pipeline`` call shares with its tuner."""

    def __init__(self, file: str, overrides: Sequence[str], allow_imports: bool,
                 tune_dir: Path, spec, echo: Callable[[str], None]) -> None:
        self.file, self.overrides, self.allow_imports = file, list(overrides), allow_imports
        self.tune_dir, self.spec, self.echo = tune_dir, spec, echo
        self.tune: TuneSpec = spec.tune
        self.keys = list(self.tune.space)
        self.runs: dict[str, list[str]] = {}
        self.reasons: dict[str, str] = {}
        self.max_trials: int = self.tune.max_trials  # the search's budget (--max-trials)

    def validated(self, sets: Sequence[str]) -> ValidationResult:
        return validate_file(self.file, [*self.overrides, *sets, "tune="])

    def record(self) -> None:
        write_text_atomic(self.tune_dir / TUNE_RECORD, json.dumps({
            "pipeline_file": os.path.abspath(self.file),  # --resume from any folder
            "overrides": self.overrides,
            "tune": plain_tune(self.tune), "max_trials": self.max_trials,
            "runs": self.runs, "failed": self.reasons},
            indent=1) + "\n")


def plain_tune(tune: TuneSpec) -> dict:
    """The tune section as tune.json records it (a resume must run the same one)."""
    from kerapipe.spec.typed import to_plain

    plain = to_plain(tune)
    plain.pop("max_trials")  # a resume may raise the budget
    return plain


def read_record(tune_dir: Path) -> dict:
    """tune.json of the tune folder ``--resume`` names, checked to be one tune wrote."""
    path = tune_dir / TUNE_RECORD
    if not (tune_dir / PROJECT / "oracle.json").is_file() or not path.is_file():
        raise UsageError(f"{tune_dir} is not a tune folder (it has no {TUNE_RECORD} and "
                         f"{PROJECT}/oracle.json): give the folder `kerapipe tune` made.")
    try:
        record = json.loads(read_pipeline_text(str(path)))
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read {path}: {err}") from err
    if not isinstance(record, dict) or not isinstance(record.get("pipeline_file"), str):
        raise UsageError(f"{path} is not a record kerapipe tune wrote.")
    runs = record.get("runs")
    root = os.path.realpath(tune_dir / "trials")
    if not isinstance(runs, dict) or not all(
            isinstance(folders, list) and all(
                isinstance(f, str) and os.path.commonpath(
                    [root, os.path.realpath(tune_dir / f)]) == root for f in folders)
            for folders in runs.values()):
        raise UsageError(f"{path} names run folders outside {tune_dir}/trials: it is not "
                         "the record kerapipe tune wrote. Start a new search.")
    budget = record.get("max_trials")  # absent in a tune.json of an older kerapipe
    if budget is not None and (type(budget) is not int or budget < 1):
        raise UsageError(f"{path}: max_trials is {budget!r}, not a trial budget (a whole "
                         "number, 1 or more): it is not the record kerapipe tune wrote. "
                         "Start a new search.")
    return record
