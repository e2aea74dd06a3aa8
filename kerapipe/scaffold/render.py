"""The pipeline file ``kerapipe init`` writes for an ``Inspection``: YAML written line by
line, every data value quoted so that it reads back as itself, each choice with its reason
as a comment, the data path relative to the folder the file goes in."""

from __future__ import annotations

import math
import os
import re
from typing import Optional, Sequence

from kerapipe.scaffold.facts import ColumnGuess, Inspection, number, shown

COMMENT_COLUMN = 40  # where a comment beside a value starts
WIDTH = 100  # the longest line written (a longer comment goes above its line)
SCHEMA_FILE = os.path.join("schema", "pipeline.schema.json")
SCHEMA_LOOKS_UP = 8  # parent folders searched for schema/pipeline.schema.json
MAX_KEY_CHARS = 1024  # YAML's longest implicit key, quotes included (a feature's name)
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_./-]*")
_YAML_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def quoted(text: str, path: bool = False) -> str:
    """``text`` as a YAML scalar that reads back as that string: plain when it is a
    simple name (or path), else double-quoted with escapes (a column name may hold any
    character, and a comment sign, colon or line break must not change the file)."""
    rule = _PLAIN_PATH if path else _PLAIN
    if rule.fullmatch(text) and text.lower() not in _YAML_WORDS and number(text) is None \
            and "//" not in text:
        return text
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\t":
            out.append("\\t")
        elif char.isprintable() and char not in "\u2028\u2029\x85":
            out.append(char)
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


class _Lines:
    """The file's lines, each value with its comment beside it (or above, when long)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, indent: int, text: str, comment: str = "",
            column: int = COMMENT_COLUMN) -> None:
        line = " " * indent + text
        if comment:
            column = max(column, len(line) + 2)
            if column + 2 + len(comment) <= WIDTH:
                line = line.ljust(column) + "# " + comment
            else:
                self.note(indent, comment)
        self.lines.append(line)

    def note(self, indent: int, text: str) -> None:
        """A comment on lines of its own, wrapped."""
        import textwrap

        prefix = " " * indent + "# "
        self.lines.extend(textwrap.wrap(text, WIDTH, initial_indent=prefix,
                                        subsequent_indent=prefix, break_long_words=False,
                                        break_on_hyphens=False))

    def blank(self) -> None:
        self.lines.append("")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _flow(value) -> str:
    """A small value (numbers, names, lists, mappings) in YAML flow style."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{quoted(str(k))}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return quoted(str(value))


def _counted(names: Sequence[str], counts: Sequence[int], most: int = 6) -> str:
    parts = [f"{shown(n, 24)} {c:,}" for n, c in zip(names, counts)][:most]
    return ", ".join(parts) + (f", ... ({len(names)} in all)" if len(names) > most else "")


def find_schema(folder: str) -> Optional[str]:
    """The path of ``schema/pipeline.schema.json`` relative to ``folder``, looked for in
    ``folder`` and its parents (a kerapipe checkout), or ``None``."""
    current = os.path.realpath(folder)
    for _ in range(SCHEMA_LOOKS_UP):
        candidate = os.path.join(current, SCHEMA_FILE)
        if os.path.isfile(candidate):
            return os.path.relpath(candidate, os.path.realpath(folder)).replace(os.sep, "/")
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return None


def data_path_from(folder: str, data: str) -> str:
    """``data`` relative to ``folder``, as ``run`` resolves it: from the pipeline file's
    folder with links followed (``spec.data_paths.data_folder``), then lexically."""
    from kerapipe.spec.data_paths import data_path_from as named_from

    return named_from(os.path.realpath(folder), data)


def render_pipeline(found: Inspection, folder: str, file_name: str = "pipeline.yaml") -> str:
    """The pipeline file's text for an inspection.

    Args:
        found: what ``inspect_data`` found.
        folder: the folder the file will be in (its data path is relative to it).
        file_name: the file's name, for the commands its header suggests. Defaults to
            ``pipeline.yaml``.
    """
    from kerapipe.spec.model import default_run_name

    out = _Lines()
    schema = find_schema(folder)
    if schema is not None:
        out.add(0, f"# yaml-language-server: $schema={schema}")
    data_name = os.path.basename(found.path.rstrip(os.sep)) or found.path
    what = {"csv": "rows", "images": "images", "text": "texts", "npz": "examples"}[found.kind]
    read = (f"{found.examples:,} {what}, all read" if found.complete else
            f"the first {found.examples:,} {what} read; the file has more")
    out.note(0, f"A first pipeline for {shown(data_name, 60)} ({read}), written by "
                f"`kerapipe init`. Each choice is a guess from the data, "
                "and its comment says why: check them, then run "
                f"`kerapipe validate --strict {shown(file_name, 60)}` and `kerapipe run "
                f"{shown(file_name, 60)}`.")
    if schema is None:
        out.note(0, "For completion in an editor: `kerapipe schema -o pipeline.schema.json`, "
                    "then make this the first line:")
        out.add(0, "#   # yaml-language-server: $schema=pipeline.schema.json")
    for note in found.notes:
        if found.kind != "images":
            out.note(0, f"Note: {note}.")
    name = default_run_name(data_name)
    if name in {c.name for c in found.features}:
        name = f"{name}-pipeline"
    out.add(0, "kerapipe: 1")
    out.add(0, f"name: {quoted(name)}")
    out.add(0, "seed: 42", "the same split and initial weights on every run")
    out.blank()
    out.add(0, "data:")
    path = quoted(data_path_from(folder, found.path), path=True)
    {"csv": _csv_source, "images": _image_source, "text": _text_source,
     "npz": _npz_source}[found.kind](out, found, path)
    _labels(out, found)
    if found.kind == "csv" and found.typed:
        _features(out, found)
    _split(out, found)
    _preprocess(out, found)
    out.add(2, f"batch_size: {32}")
    out.blank()
    _model(out, found)
    out.blank()
    _training(out, found)
    return out.text()


def _csv_source(out: _Lines, found: Inspection, path: str) -> None:
    out.add(2, "source:")
    out.add(4, "csv:")
    out.add(6, f"path: {path}", "relative to this file's folder")
    label = found.label
    out.note(6, f"The label: {label.picked}. To predict another column: `kerapipe init DATA "
                "--label COLUMN`.")
    out.add(6, f"label: {quoted(label.name)}")
    if found.delimiter != ",":
        out.add(6, f"delimiter: {quoted(found.delimiter)}", "the separator of the header row")
    if found.missing_values:
        out.add(6, f"missing_values: {_flow(list(found.missing_values))}",
                "cells read as a missing value")
    if found.id_column is not None:
        reason = next(c.reason for c in found.columns if c.type == "id")
        out.add(6, f"id_column: {quoted(found.id_column)}", f"{reason}: an id, not a "
                "feature; it names each row in predictions.csv")


def _image_source(out: _Lines, found: Inspection, path: str) -> None:
    out.add(2, "source:")
    out.add(4, "images:")
    out.add(6, f"dir: {path}", "one sub-folder per class; relative to this file's folder")
    for note in found.notes:
        out.note(6, f"{note[0].upper()}{note[1:]}.")
    height, width = found.image_size
    out.add(6, f"image_size: [{height}, {width}]", "[height, width]: every image is resized "
            "to it when read")
    out.add(6, f"color_mode: {found.color_mode}", "every image read is grayscale" if
            found.color_mode == "grayscale" else "colour images (3 channels)")


def _text_source(out: _Lines, found: Inspection, path: str) -> None:
    out.add(2, "source:")
    out.add(4, "text:")
    out.add(6, f"dir: {path}", "one sub-folder of .txt files per class; relative to this "
            "file's folder")


def _npz_source(out: _Lines, found: Inspection, path: str) -> None:
    out.add(2, "source:")
    out.add(4, f"npz: {path}", "arrays x and y (or x_train, y_train); relative to this "
            "file's folder")


def _labels(out: _Lines, found: Inspection) -> None:
    label = found.label
    if label.kind == "regression":
        out.add(2, "labels: {kind: regression, scale: standardize}",
                "the model learns the standardized target; metrics in its own units")
        out.note(2, f"The label: {label.reason}.")
        return
    if label.kind == "multi_label":
        extra = ", separator: \"|\"" if found.kind == "csv" else ""
        out.note(2, f"{label.units} labels ({label.reason}): "
                    f"{_counted(label.classes, label.counts)}.")
        out.add(2, f"labels: {{kind: multi_label{extra}}}")
        return
    count = len(label.classes) if label.kind == "binary" else label.units
    out.note(2, f"{count} classes ({label.reason}): "
                f"{_counted(label.classes, label.counts)}.")
    out.add(2, f"labels: {label.kind}")


def _feature_value(column: ColumnGuess) -> str:
    value = f"{{{column.type}: {_flow(column.kwargs)}}}" if column.kwargs else column.type
    if column.missing is None:
        return value
    policy = "{fill: unknown}" if column.missing == "fill" else column.missing
    inner = value if column.kwargs else f"{{{column.type}: {{}}}}"
    return f"{inner[:-1]}, missing: {policy}}}"


def _features(out: _Lines, found: Inspection) -> None:
    out.add(2, "features:", "each column's type (keras.utils.FeatureSpace's names)")
    lines = [(f"{quoted(c.name)}: {_feature_value(c)}", c.reason + (
        f", {c.missing_cells:,} missing" if c.missing_cells else "")) for c in found.features]
    # One column for the block's comments: the widest line's whose comment fits beside it.
    column = max([COMMENT_COLUMN] + [6 + len(text) for text, reason in lines
                                     if 6 + len(text) + 2 + len(reason) <= WIDTH])
    for text, reason in lines:
        out.add(4, text, reason, column)
    skipped = [c for c in found.columns if c.type == "skip"]
    if skipped:
        out.note(2, "Left out (not features): " + ", ".join(
            f"{shown(c.name, 30)} ({c.reason})" for c in skipped) + ".")


def _split(out: _Lines, found: Inspection) -> None:
    share = 0.2 if found.examples < 1000 else 0.1
    stratified = found.label.kind in ("classes", "binary")
    how = "stratified by class" if stratified else "at random"
    if found.own_test_split:
        out.add(2, f"split: {{validation: {share}}}", f"the file's own x_test/y_test is the "
                f"test split; validation drawn {how}")
        return
    out.add(2, f"split: {{validation: {share}, test: {share}}}", f"of all examples, drawn "
            f"{how} with the seed")


def _preprocess(out: _Lines, found: Inspection) -> None:
    steps: list[tuple[str, str]] = []
    if found.kind == "csv" and not found.typed:
        steps.append(("normalize: {}", "each column's mean and variance, from the training "
                      "split"))
    elif found.kind == "images":
        steps.append(("rescale: 1/255", "pixels 0..255 -> 0..1"))
    elif found.kind == "text" or found.x_kind == "text":
        steps.append((f"TextVectorization: {{max_tokens: {found.max_tokens}, output_mode: "
                       f"int, output_sequence_length: {found.sequence_length}}}",
                       "token ids; most texts fit in the length"))
    elif found.kind == "npz" and found.x_kind == "image":
        if len(found.x_shape) == 2:
            steps.append((f"reshape: [{found.x_shape[0]}, {found.x_shape[1]}, 1]",
                          "one channel, as Conv2D takes images"))
        if found.pixels == "rescale":
            steps.append(("rescale: 1/255", "pixels 0..255 -> 0..1"))
        elif found.pixels == "normalize":
            steps.append(("normalize: {}", "mean and variance from the training split"))
    elif found.kind == "npz":
        if not found.x_shape:
            steps.append(("reshape: [1]", "one number an example: a vector of one"))
        elif len(found.x_shape) > 1:
            steps.append(("reshape: [-1]", "each example flattened to one vector"))
        steps.append(("normalize: {}", "each feature's mean and variance, from the training "
                      "split"))
    if not steps:
        return
    out.add(2, "preprocess:")
    for step, why in steps:
        out.add(4, f"- {step}", why)
    if found.kind == "images" or found.x_kind == "image":
        out.note(4, "Augmentation, on training batches only: - RandomFlip: {mode: horizontal}")


def _output_layer(found: Inspection) -> tuple[str, str]:
    kind, units = found.label.kind, found.label.units
    if kind == "regression":
        return "Dense: {units: 1}", "the target"
    if kind == "binary":
        return "Dense: {units: 1, activation: sigmoid}", "the probability of class 1"
    if kind == "multi_label":
        return (f"Dense: {{units: {units}, activation: sigmoid}}",
                "one independent probability per label")
    return f"Dense: {{units: {units}}}", "one logit per class (from_logits is inferred)"


def _conv_blocks(found: Inspection) -> int:
    height, width = found.image_size or (32, 32)
    return max(0, min(3, int(math.log2(max(1, min(height, width)))) - 2))


def _model(out: _Lines, found: Inspection) -> None:
    out.add(0, "model:")
    image = found.kind == "images" or found.x_kind == "image"
    text = found.kind == "text" or found.x_kind == "text"
    if image:
        blocks = _conv_blocks(found)
        out.add(2, "layers:", f"a small CNN: {max(1, blocks)} convolution block"
                f"{'s' if blocks > 1 else ''}, then global pooling")
        for block in range(max(1, blocks)):
            out.add(4, f"- Conv2D: {{filters: {16 * 2 ** block}, kernel_size: 3, padding: same, "
                       "activation: relu}")
            if blocks:
                out.add(4, "- MaxPooling2D: {pool_size: 2}")
        out.add(4, "- GlobalAveragePooling2D: {}", "any image size: one value per filter")
        out.add(4, "- Dropout: {rate: 0.2}")
    elif text:
        out.add(2, "layers:", "keras.io's text classifier: embeddings, averaged")
        out.add(4, f"- Embedding: {{input_dim: {found.max_tokens}, output_dim: 32}}",
                "input_dim: TextVectorization's max_tokens")
        out.add(4, "- GlobalAveragePooling1D: {}")
        out.add(4, "- Dense: {units: 32, activation: relu}")
    else:
        out.add(2, "layers:", "a small multi-layer perceptron for a table")
        out.add(4, "- Dense: {units: 64, activation: relu}")
        out.add(4, "- Dropout: {rate: 0.2}")
        out.add(4, "- Dense: {units: 32, activation: relu}")
    layer, why = _output_layer(found)
    out.add(4, f"- {layer}", why)


def _training(out: _Lines, found: Inspection) -> None:
    kind = found.label.kind
    loss, metrics = {
        "classes": ("sparse_categorical_crossentropy", "[accuracy]"),
        "binary": ("binary_crossentropy", "[accuracy]"),
        "multi_label": ("binary_crossentropy", "[accuracy, {name: auc}]"),
        "regression": ("mean_squared_error", "[mae]"),
    }[kind]
    why = {"classes": "class indices against the logits",
           "binary": "0/1 labels against one sigmoid",
           "multi_label": "one sigmoid per label",
           "regression": "a target: squared error"}[kind]
    out.add(0, f"loss: {loss}", why)
    rate = 0.001 if found.kind == "images" or found.x_kind == "image" else 0.01 \
        if found.kind == "text" or found.x_kind == "text" else 0.003
    out.add(0, f"optimizer: {{name: adam, learning_rate: {rate}}}")
    out.add(0, f"metrics: {metrics}", "mean absolute error, in the target's units"
            if kind == "regression" else "")
    out.blank()
    out.add(0, "train:")
    epochs = 100 if found.kind == "csv" or found.x_kind == "table" else 30
    out.add(2, f"epochs: {epochs}", "at most: early stopping ends sooner")
    out.add(2, "early_stopping: {monitor: val_loss, patience: 5, restore_best_weights: true}")
    counts = [c for c in found.label.counts if c] if kind in ("classes", "binary") else []
    if counts and len(counts) == len(found.label.counts) and max(counts) >= 4 * min(counts):
        out.add(2, "class_weight: balanced", f"the classes are unbalanced "
                f"({max(counts):,} against {min(counts):,})")
