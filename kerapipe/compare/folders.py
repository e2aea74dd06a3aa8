"""Which run folders ``kerapipe compare RUN_DIR...`` compares: the paths as given, globs
expanded by kerapipe, each folder once."""

from __future__ import annotations

import glob
import itertools
import os
from typing import Sequence

from kerapipe.compare.escape import printable
from kerapipe.compare.run_reader import RUN_FOLDER_HAS
from kerapipe.errors import UsageError

MAX_RUNS = 100  # run folders in one comparison, globs' matches included
_MAX_SCANNED = 100_000  # a glob's matches looked at for a run.json


def expand_run_arguments(arguments: Sequence[str]) -> list[str]:
    """The run folders the arguments name, in their order: a path that exists as it is,
    else a glob's matches (sorted); a folder named twice (or by a link) comes once.

    Raises:
        UsageError: a glob matches nothing, a folder given as it is has no run.json, or
            there are more than ``MAX_RUNS`` folders.
    """
    folders: list[str] = []
    seen: set[str] = set()
    for argument in arguments:
        if "\0" in argument:
            raise UsageError(f"{printable(argument, 80)}: a path cannot hold a NUL byte.")
        matches = [argument]
        if not os.path.lexists(argument) and glob.has_magic(argument):
            # What output.dir holds besides run folders (an MLflow `mlruns/`, a tune
            # folder) is skipped: `compare 'runs/*'` means the runs in it.
            scanned = itertools.islice(glob.iglob(argument), _MAX_SCANNED)
            matches = sorted(itertools.islice(
                (m for m in scanned if os.path.isfile(os.path.join(m, "run.json"))),
                MAX_RUNS + 1))
            if not matches:
                raise UsageError(f"no run folder matches {printable(argument, 200)}: the glob "
                                 "matches no folder with a run.json. Check the pattern, or "
                                 "give the run folders themselves.")
        elif os.path.isdir(argument) and not os.path.lexists(os.path.join(argument, "run.json")):
            raise UsageError(_no_run_folder(argument))
        for match in matches:
            real = os.path.realpath(match)
            if real in seen:
                continue
            seen.add(real)
            folders.append(match)
            if len(folders) > MAX_RUNS:
                raise UsageError(f"compare takes at most {MAX_RUNS} run folders; "
                                 f"{printable(argument, 200)} brings more. Give fewer runs "
                                 "or a narrower glob.")
    return folders


def _no_run_folder(folder: str) -> str:
    """The refusal of a folder named as it is that holds no run.json: most often one a
    shell's expansion of ``runs/*`` brought (an MLflow ``mlruns/``, a tune folder)."""
    return (f"{printable(folder, 200)} is not a kerapipe run folder: it has no run.json; "
            f"{RUN_FOLDER_HAS}. A shell's expansion of a glob includes every folder: quote "
            "the glob ('runs/*') so kerapipe expands it and skips the folders that are no "
            "runs (mlruns, tune folders).")
