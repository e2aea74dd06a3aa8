"""How a pipeline's examples are split (``data.split``): fractions drawn at random (or
taken in the source's order), a column naming each row's split, or a file for a split.

``SplitSpec`` and its checks live here; ``spec/model.py`` re-exports it. The compile side
that draws the splits is ``kerapipe/compiler/splits.py`` and ``sources/loading.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional, Union

from kerapipe.spec.issues import Issue, Path, safe_repr
from kerapipe.spec.sources import check_path_text
from kerapipe.spec.typed import spec_field

PARTS = ("validation", "test")


@dataclass(frozen=True)
class SplitFile:
    """A split read from its own file (`{file: PATH}`), of the same kind as the source."""

    file: str = spec_field(doc="Path of the split's data, relative to the pipeline file: a "
                           "CSV file for a csv source, an .npz file for npz, a folder of "
                           "class folders for images and text.")

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        check_path_text(values, "file", path, issues)


@dataclass(frozen=True)
class SplitSpec:
    """How examples are split: shuffled with the seed (or in the source's order), by a
    column naming each row's split, or from a file for validation or test."""

    validation: Union[float, SplitFile] = spec_field(
        0.1, "Fraction of all examples held out for validation (0 for none; with a "
        "source's own test split, of its training examples), or `{file: PATH}`: the "
        "validation examples read from a file of the source's kind.", ge=0, lt=1)
    test: Union[float, SplitFile] = spec_field(
        0.1, "Fraction of all examples held out for the final test, used only when the "
        "source has no test split of its own; or `{file: PATH}`: the test examples read "
        "from a file of the source's kind.", ge=0, lt=1)
    stratify: bool = spec_field(True, "Keep class proportions equal across the splits "
                                "(shuffled fractions only).")
    order: Literal["shuffled", "ordered"] = spec_field(
        "shuffled", "`shuffled`: each split drawn at random with the seed; `ordered`: the "
        "first examples (in the source's order) train, the next validate, the last test, "
        "each keeping its order (time series); not stratified.")
    column: Optional[str] = spec_field(
        None, "A CSV column (or an npz array of strings) saying `train`, `validation` or "
        "`test` for each example; it is neither a feature nor the label. Replaces the "
        "fractions.")

    @property
    def validation_fraction(self) -> float:
        """The validation fraction drawn from the source (0 for a file or a column)."""
        return _fraction(self.validation) if self.column is None else 0.0

    @property
    def test_fraction(self) -> float:
        """The test fraction drawn from the source (0 for a file or a column)."""
        return _fraction(self.test) if self.column is None else 0.0

    @property
    def files(self) -> dict[str, str]:
        """The splits read from files: ``{"validation": PATH, "test": PATH}``, either."""
        return {part: getattr(self, part).file for part in PARTS
                if isinstance(getattr(self, part), SplitFile)}

    @property
    def has_validation(self) -> bool:
        """Whether the run may have validation examples (a column's are known only once
        the data is read)."""
        return (self.column is not None or isinstance(self.validation, SplitFile)
                or self.validation > 0)

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        if values.get("column") is not None:
            for key in ("validation", "test", "order"):
                if key in values:
                    issues.append(Issue("not-applicable", path + (key,), f"`column` names "
                                        f"each example's split, so `{key}` does not apply. "
                                        f"Remove `{key}`, or `column`. Received: "
                                        f"{key}={safe_repr(_plain(values[key]))}", at_key=True))
        shuffled = values.get("column") is None and values.get("order") != "ordered"
        if values.get("stratify") is True and not shuffled:
            how = ("`order: ordered` keeps the source's order" if values.get("column") is None
                   else "`column` names each example's split")
            issues.append(Issue("not-applicable", path + ("stratify",), f"{how}, so the "
                                "splits cannot be stratified. Remove `stratify`.",
                                at_key=True))


def _fraction(value: Union[float, SplitFile]) -> float:
    return 0.0 if isinstance(value, SplitFile) else float(value)


def _plain(value: Any) -> Any:
    return {"file": value.file} if isinstance(value, SplitFile) else value


def split_issues(data: Any) -> list[Issue]:
    """What ``data.split`` asks of the source (``data.source``, ``data.features``): a
    column split needs a CSV column or an npz array that is no feature nor the label;
    split files need a source of files (``SourceSpec.split_column_problem``,
    ``split_file_problem``).

    Args:
        data: a parsed ``DataSpec``.
    """
    split, issues = data.split, []
    if split.column is not None:
        problem = data.source.split_column_problem(
            split.column, [f.name for f in data.features or []])
        if problem:
            issues.append(Issue("not-applicable", ("data", "split", "column"), problem,
                                at_key=True))
    for part in split.files:
        problem = data.source.split_file_problem()
        if problem:
            issues.append(Issue("not-applicable", ("data", "split", part, "file"), problem,
                                at_key=True))
    return issues


__all__ = ["SplitFile", "SplitSpec", "split_issues"]
