"""Data sources: one module per kind of ``data.source``, behind one interface (``Source``).

Training (``loading.load_data``, ``kerapipe.compiler.datasets``) and ``kerapipe predict``
(``kerapipe.saved_run.read_inputs``) reach a source only through ``source_for``, the one
place that maps a source kind to its module; no other module branches on the kind. A
source:

* loads its examples (``load``: a ``RawData`` with one id per example, naming where it
  came from), which ``loading.load_data`` then checks and splits;
* prepares their features (``prepare_features``: arrays are padded and checked; CSV rows
  and image paths were checked by the first pass);
* reads a split's features in tf.data (``features``, ``examples``);
* reads the inputs of ``predict`` by the same rules as training (``read_inputs``), with
  one id per row of the same kind as the splits' ids;
* reads its examples' sample weights (``sample_weights``: a CSV column, an npz array;
  none by default);
* reads a split given as its own file (``data.split.validation: {file: PATH}``) through a
  second source of its kind over that file (``for_file``);
* explains a decode failure that tf.data reports deep in a traceback
  (``explain_decode_failure``: the image file that cannot be decoded).

The example shape a source fixes without data (for ``validate``) lives on the spec side,
``kerapipe.spec.known_datasets``. Adding a kind: a field of ``SourceSpec``
(``kerapipe/spec/sources.py``), a module here with its ``Source`` subclass, and its line in
``_KINDS``. Importing this package loads no TensorFlow: the kind modules, and TensorFlow
inside them, are imported when a source is asked for and when it builds tf.data.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Optional

import numpy as np

from kerapipe.errors import DataError

if TYPE_CHECKING:
    from kerapipe.compiler.sources.loading import LoadedData, Split
    from kerapipe.compiler.sources.raw import RawData
    from kerapipe.spec.model import PipelineSpec

__all__ = ["Source", "source_for"]

# The one dispatch point: source kind (a ``SourceSpec`` field) -> "module:class" here.
_KINDS = {
    "sample": "named_datasets:SampleSource",
    "keras": "named_datasets:KerasDatasetSource",
    "npz": "npz_file:NpzFileSource",
    "csv": "csv_file:CsvFileSource",
    "images": "image_folder:ImageFolderSource",
    "text": "text_folder:TextFolderSource",
    "tfrecord": "tfrecord_file:TfrecordFileSource",
    "tfds": "tfds_dataset:TfdsDatasetSource",
}


def source_for(spec: PipelineSpec, base_dir: str | os.PathLike = ".") -> Source:
    """The source ``spec.data.source`` names, for training or for ``predict``.

    Args:
        spec: a validated pipeline.
        base_dir: the folder that relative paths in the pipeline are relative to (the
            pipeline file's folder). Defaults to the working directory.
    """
    module_name, class_name = _KINDS[spec.data.source.kind].split(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)(spec, base_dir)


class Source:
    """One kind of data source: what training and ``predict`` need from it.

    Subclasses set ``kind`` (the ``data.source`` key) and implement ``load``; the other
    methods have the behaviour of in-memory arrays and are overridden where a kind
    differs. A source object is made per pipeline by ``source_for``; ``load`` may keep
    what tf.data needs later (the CSV reader) on it.
    """

    kind: ClassVar[str] = ""
    # How messages call its examples when a step cannot apply to them ("CSV columns").
    examples_are: ClassVar[str] = "arrays"
    # Whether shuffling shuffles the example indices before reading (image files: one
    # int64 per example instead of a buffer of decoded examples).
    shuffles_files: ClassVar[bool] = False
    # The option that names its file or folder, which a split file replaces (``for_file``).
    path_key: ClassVar[str] = "path"

    def __init__(self, spec: PipelineSpec, base_dir: str | os.PathLike = ".") -> None:
        self.spec = spec
        self.base_dir = os.fspath(base_dir)
        # The sources of the splits read from their own files (``for_file``): they read
        # by what this one learns from the training split (``learn``).
        self.split_sources: list[Source] = []

    @property
    def options(self) -> Any:
        """This kind's part of the spec (``spec.data.source.<kind>``)."""
        return getattr(self.spec.data.source, self.kind)

    # --- training -----------------------------------------------------------------------

    def load(self) -> RawData:
        """Read (or, for streamed kinds, check) the examples, with one id per example."""
        raise NotImplementedError

    def prepare_features(self, x: Any, name: str, raw: RawData, pad_steps: list) -> Any:
        """Features ready to split: ``x`` as loaded, after the ``pad_sequences`` steps.

        Streamed kinds hold row numbers or paths, checked by the first pass; only arrays
        are sequences a step can pad.

        Raises:
            DataError: a ``pad_sequences`` step on examples that are no sequences.
        """
        if pad_steps:
            raise DataError(f"{raw.where}: pad_sequences applies to sequences, not "
                            f"{self.examples_are}. Remove the `pad_sequences` step from "
                            "data.preprocess.")
        return x

    def for_file(self, path: str) -> Source:
        """A source of this kind over another file or folder (a split file): the same
        options with ``path`` (relative to the pipeline's folder) in place of this one's,
        read whole (no split of its own)."""
        from kerapipe.spec.splits import SplitSpec

        options = dataclasses.replace(self.options, **{self.path_key: path})
        data = dataclasses.replace(self.spec.data, split=SplitSpec(), source=dataclasses.replace(
            self.spec.data.source, **{self.kind: options}))
        other = type(self)(dataclasses.replace(self.spec, data=data), self.base_dir)
        self.split_sources.append(other)
        return other

    def source_order(self, ids: np.ndarray) -> np.ndarray:
        """The examples' positions in the source's own order, which ``order: ordered``
        splits keep: as loaded (file rows, array positions) unless a kind says otherwise."""
        return np.arange(len(ids), dtype=np.int64)

    def arrange(self, indices: np.ndarray) -> np.ndarray:
        """A split's example indices in the order the source reads them best (shuffled as
        drawn; a streamed CSV reads its rows in file order)."""
        return indices

    def learn(self, train: Split) -> None:
        """Learn what reading the examples needs from the training split, once the splits
        are drawn (a CSV's ``mean``/``mode`` fills of missing values); nothing by default."""

    def sample_weights(self, raw: RawData) -> Optional[np.ndarray]:
        """One weight per example of ``raw`` (``data.source.<kind>.sample_weight``), or
        ``None`` when the examples are not weighted: the default, for kinds without one.

        Raises:
            DataError: a weight that is missing, negative or not finite.
        """
        return None

    def record(self) -> dict:
        """What ``run.json`` records for ``predict`` to read inputs alike (a CSV's fills and
        dropped rows); nothing by default."""
        return {}

    def features(self, split: Split):
        """One split's raw features in tf.data, unbatched (numbers not yet cast)."""
        from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices(split.x)

    def examples(self, split: Split, shuffle_files: bool = False, seed: Optional[int] = None):
        """One split's raw ``(x, y)`` examples in tf.data, unbatched; ``shuffle_files``
        applies to kinds that ``shuffles_files``."""
        from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices((split.x, split.targets))

    def explain_decode_failure(self, data: LoadedData, message: str,
                               stage: str) -> Optional[DataError]:
        """The ``DataError`` naming what tf.data could not decode (``message`` is
        TensorFlow's), or ``None`` when the failure is not the data's."""
        return None

    # --- predict ------------------------------------------------------------------------

    def read_inputs(self, path: str | os.PathLike, record: Optional[dict] = None
                    ) -> tuple[Any, list[str]]:
        """Raw model inputs from an .npz file, a .csv file or a folder of images, read by
        the training side's rules; and one id per row (an array position, a CSV line
        number or id column value, an image's path in the folder). A model of several
        inputs (``model.inputs``) reads them from an .npz file's arrays of their names,
        as a dict by name.

        Args:
            path: the input file or folder.
            record: the run's ``run.json`` (what training recorded about the data, e.g.
                the CSV feature columns). Defaults to none.

        Raises:
            DataError: the input is missing, not a regular file, or cannot be read.
        """
        from kerapipe.compiler.files import check_regular_file

        source = Path(path)
        try:
            is_folder = source.is_dir()
        except (OSError, ValueError) as err:  # a name too long for the file system, a NUL
            raise DataError(f"{source}: cannot be read "
                            f"({getattr(err, 'strerror', None) or err}). Give an .npz file, "
                            "a .csv file or a folder of images.") from err
        # typed features: the model's raw inputs are the CSV's columns, whatever its inputs
        inputs = list(self.spec.model.inputs or ()) if self.spec.data.features is None else []
        if len(inputs) > 1 and (is_folder or source.suffix != ".npz"):
            raise DataError(f"{source}: this run's model takes {len(inputs)} inputs "
                            f"({', '.join(inputs)}); give an .npz file with one array of "
                            "each, by those names.")
        if is_folder:
            return self.read_folder_inputs(source)
        if not os.path.exists(source):
            raise DataError(f"{source}: no such file or folder.")
        check_regular_file(str(source), str(source))
        if source.suffix == ".npz":
            from kerapipe.compiler.sources.npz_file import read_npz_inputs

            if len(inputs) > 1:
                from kerapipe.compiler.sources.npz_file import read_npz_named_inputs

                x = read_npz_named_inputs(source, inputs)
                return x, [str(i) for i in range(len(x[inputs[0]]))]
            x = self.prepare_inputs(read_npz_inputs(source, inputs[:1]), str(source))
            return x, [str(i) for i in range(len(x))]
        if source.suffix == ".csv":
            return self.read_csv_inputs(source, record or {})
        raise DataError(f"{source}: expected an .npz file, a .csv file or a folder of images.")

    def prepare_inputs(self, x: np.ndarray, where: str) -> np.ndarray:
        """``predict``'s arrays as the model takes them (arrays: padded as in training)."""
        return x

    def read_csv_inputs(self, path: Path, record: dict) -> tuple[np.ndarray, list[str]]:
        """A CSV of inputs for a model not trained on a CSV: every column a feature, in
        file order; each row's id is its line number."""
        from kerapipe.compiler.sources.csv_file import read_csv_rows

        return read_csv_rows(path, ",", None)

    def read_folder_inputs(self, folder: Path) -> tuple[np.ndarray, list[str]]:
        """A folder of inputs: only a model trained on images reads one."""
        raise DataError(f"{folder}: a folder, but this run was not trained on images; give "
                        "an .npz or .csv file.")
