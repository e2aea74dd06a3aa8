"""Preprocessing steps, registered once: what each ``data.preprocess`` step takes and does.

A step kind is one ``StepKind`` in ``STEPS``: the dataclass of its options (keys, types,
defaults, bounds and docs, declared like every key of the format), its stage (when it
runs), its effect on the shape of one example (what validation traces without data) and
how it is written. Whatever lists or reads steps reads ``STEPS``: parsing and the
``unknown-step`` message (``model.PreprocessStep``), the JSON Schema and the README (key
reference and step table, ``schema.py``), the shape checks (``trace_shape``, used by
``checks.trace_example_shape`` and ``validate --deep``) and, on the compile side, the
Keras layer of each ``layer`` step (``compiler/preprocess.LAYER_BUILDERS``: the same
names, kept so by a test).

Adding a step takes two files: its options and its ``StepKind`` here, and (for a
``layer`` step) its layer builder in ``compiler/preprocess.py``.

Keras's random preprocessing layers (``RandomFlip``, ...) are steps too, written as the
layer itself; ``AUGMENTATION`` describes them all. So are its preprocessing layers that
learn from data (``TextVectorization``, ``StringLookup``, ...: ``ADAPTABLE``). No
TensorFlow here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional

from kerapipe.spec.applications import (PREFIX as APPLICATIONS_PREFIX, application,
                                        application_names, preprocess_channels_issue)
from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.issues import Issue, Path, did_you_mean, safe_repr
from kerapipe.spec.typed import spec_field

# Upper bounds of the steps' integer keys (see the bounds in spec/model.py): far above
# any real use, low enough that no value overflows what it feeds or costs more than a
# machine has. Each bound is in the doc of its key (README, JSON Schema).
MAX_SEQUENCE = 100_000          # pad_sequences length; the longest imdb review is 2,494
MAX_CLASSES = 100_000           # one_hot classes; ImageNet-21k has 21,841
MAX_IMAGE_SIDE = 8192           # pixels a side (resize, images.image_size); one 8192x8192
                                # RGB float image is 768 MiB
MAX_RANK = 16                   # axes of one example (reshape, normalize axis)
MAX_DIM = 2**31 - 1             # one reshape size: TensorFlow's int32 shape limit

Shape = Optional[tuple[int, ...]]  # one example's shape; None where it depends on the data
Stage = Literal["load", "label", "layer"]

# When a step runs, in the words of the README's step table.
STAGES: dict[str, str] = {
    "load": "when the data is loaded (and by `predict` on its input)",
    "label": "on the labels, in tf.data",
    "layer": "as a Keras layer, in tf.data and in the saved model",
}


def check_items(values: dict, key: str, low: int, high: int, path: Path,
                issues: list[Issue], allowed: tuple = ()) -> None:
    """Each integer item of list ``key`` lies in ``[low, high]`` (or is in ``allowed``)."""
    items = values.get(key)
    for index, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, int) and item not in allowed and not low <= item <= high:
            extra = f" or {', '.join(map(str, allowed))}" if allowed else ""
            issues.append(Issue("out-of-range", path + (key, index), f"each entry must be "
                                f"from {low} to {high}{extra}. Received: {key}[{index}]="
                                f"{safe_repr(item)}"))


_FRACTION = re.compile(r"\s*([0-9.eE+-]+)\s*/\s*([0-9.eE+-]+)\s*\Z")
_FRACTION_JSON_PATTERN = r"^\s*[0-9.eE+-]+\s*/\s*[0-9.eE+-]+\s*$"


def parse_fraction(value: Any) -> Any:
    """Accept ``1/255`` (a string in YAML) as the number it means."""
    if isinstance(value, str):
        match = _FRACTION.match(value)
        if not match:
            raise ValueError("expected a number or a fraction such as 1/255.")
        try:
            numerator, denominator = float(match.group(1)), float(match.group(2))
        except ValueError:
            raise ValueError("expected a number or a fraction such as 1/255.") from None
        if denominator == 0:
            raise ValueError("the fraction divides by zero.")
        return numerator / denominator
    return value


# --- the options of each step ------------------------------------------------------

@dataclass(frozen=True)
class RescaleStep:
    """Multiply inputs by `scale` and add `offset` (keras.layers.Rescaling)."""

    scale: float = spec_field(doc="Factor; a fraction such as 1/255 is fine.",
                              coerce=parse_fraction, json_schema={"anyOf": [
                                  {"type": "number"},
                                  {"type": "string", "pattern": _FRACTION_JSON_PATTERN}]})
    offset: float = spec_field(0.0, "Added after scaling.")
    shorthand = "scale"


@dataclass(frozen=True)
class NormalizeStep:
    """Standardise inputs with mean and variance learned from the training split only."""

    axis: Optional[int] = spec_field(-1, "Axis that keeps separate statistics (-1: per "
                                     "channel/feature; null: one mean and variance); an axis "
                                     "of the example, counted from 1 (0 is the batch axis) "
                                     "or from the end (-1).", ge=-MAX_RANK, le=MAX_RANK)

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        if values.get("axis") == 0:
            issues.append(Issue("out-of-range", path + ("axis",), "axis 0 is the batch axis, "
                                "whose size changes from batch to batch; use an axis of the "
                                "example (1 is its first, -1 its last) or null. Received: "
                                "axis=0"))


@dataclass(frozen=True)
class ReshapeStep:
    """Reshape each example (keras.layers.Reshape); one entry may be -1."""

    target_shape: list[int] = spec_field(doc="Shape of one example, without the batch axis "
                                         f"(at most {MAX_RANK} sizes).", min_items=1,
                                         max_items=MAX_RANK)
    shorthand = "target_shape"

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        # 0 and sizes below -1 are reported with the example shape (_reshape_shape)
        check_items(values, "target_shape", -MAX_DIM, MAX_DIM, path, issues)


@dataclass(frozen=True)
class ResizeStep:
    """Resize images to [height, width] (keras.layers.Resizing)."""

    size: list[int] = spec_field(doc=f"[height, width] in pixels (1 to {MAX_IMAGE_SIDE} "
                                 "each).", min_items=2, max_items=2)
    interpolation: Literal["bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5",
                           "gaussian", "mitchellcubic"] = spec_field("bilinear",
                                                                     "Interpolation method.")
    shorthand = "size"

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        check_items(values, "size", 1, MAX_IMAGE_SIDE, path, issues)


@dataclass(frozen=True)
class OneHotStep:
    """Turn integer labels into one-hot vectors (for categorical_crossentropy)."""

    num_classes: Optional[int] = spec_field(None, "Number of classes. Defaults to the number "
                                            "found in the data.", ge=2, le=MAX_CLASSES)
    shorthand = "num_classes"  # `one_hot: 10` means `one_hot: {num_classes: 10}`


@dataclass(frozen=True)
class PadSequencesStep:
    """Pad or cut integer sequences to one length (keras.utils.pad_sequences)."""

    maxlen: int = spec_field(doc="Length of every sequence.", ge=1, le=MAX_SEQUENCE)
    padding: Literal["pre", "post"] = spec_field("pre", "Where padding goes.")
    truncating: Literal["pre", "post"] = spec_field("pre", "Where long sequences are cut.")
    shorthand = "maxlen"


def _application_name(value: Any) -> Any:
    """``applications.VGG16`` (as the layer is written) means ``VGG16``."""
    return value.removeprefix(APPLICATIONS_PREFIX) if isinstance(value, str) else value


@dataclass(frozen=True)
class PreprocessInputStep:
    """Prepare RGB pixels in [0, 255] as a keras.applications model expects.

    Its module's ``preprocess_input`` (caffe, tf or torch mode, or nothing for the models
    that include their preprocessing), built from plain Keras layers, so the saved model
    needs no kerapipe to load.
    """

    model: str = spec_field(doc="The application: its function name (`MobileNetV3Small`, "
                            "`ResNet50`), with or without `applications.`.",
                            coerce=_application_name,
                            json_schema={"enum": application_names() + [
                                APPLICATIONS_PREFIX + n for n in application_names()]})
    shorthand = "model"

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        model = values.get("model")
        if isinstance(model, str) and application(model) is None:
            names = application_names()
            issues.append(Issue("unknown-value", path + ("model",), f"'{model}' is not a "
                                f"keras.applications model.{did_you_mean(model, names)} "
                                "Write the function's name, as in the backbone layer "
                                "(`MobileNetV3Small` for applications.MobileNetV3Small)."))


# --- the effect of each step on the shape of one example ---------------------------
# ``(shape in, options, key path of the step, issues) -> shape out``; a step that cannot
# take the shape it receives adds an issue at its key.

ShapeEffect = Callable[[Shape, Any, Path, list], Shape]


def same_shape(shape: Shape, options: Any, path: Path, issues: list[Issue]) -> Shape:
    """The step keeps the example's shape (or touches the labels only)."""
    return shape


def _normalize_shape(shape: Shape, options: NormalizeStep, path: Path,
                     issues: list[Issue]) -> Shape:
    """``normalize.axis`` names an axis of the example: 1..rank, or -rank..-1."""
    axis = options.axis
    if shape is None or axis is None or axis == 0:  # 0 is refused by NormalizeStep
        return shape
    rank = len(shape)
    if not (1 <= axis <= rank or -rank <= axis <= -1):
        issues.append(Issue("out-of-range", path + ("axis",), f"an example here has shape "
                            f"{list(shape)} ({rank} axes), so axis must be from 1 to {rank} "
                            f"or from -{rank} to -1 (or null for one mean and variance). "
                            f"Received: axis={axis}"))
    return shape


def _reshape_shape(shape: Shape, options: ReshapeStep, path: Path,
                   issues: list[Issue]) -> Shape:
    target = list(options.target_shape)
    path = path + ("target_shape",)
    unknown = [d for d in target if d == -1]
    if len(unknown) > 1 or any(d == 0 or d < -1 for d in target):
        issues.append(Issue("reshape-size", path, "a target shape holds positive sizes and at "
                            f"most one -1. Received: target_shape={target}"))
        return None
    if shape is None:
        return None
    size = math.prod(shape)
    known_part = math.prod(d for d in target if d != -1)
    fits = size % known_part == 0 if unknown else size == known_part
    if not fits:
        issues.append(Issue("reshape-size", path, f"cannot reshape an example of shape "
                            f"{list(shape)} ({size} values) to {target} ({known_part} values). "
                            f"Use sizes whose product is {size}."))
        return None
    return tuple(size // known_part if d == -1 else d for d in target)


def _resize_shape(shape: Shape, options: ResizeStep, path: Path, issues: list[Issue]) -> Shape:
    return (*options.size, *shape[2:]) if shape and len(shape) >= 2 else None


def _pad_shape(shape: Shape, options: PadSequencesStep, path: Path,
               issues: list[Issue]) -> Shape:
    return (options.maxlen,)


def _preprocess_input_shape(shape: Shape, options: PreprocessInputStep, path: Path,
                            issues: list[Issue]) -> Shape:
    """The shape stays; the caffe and torch modes need 3 channels last."""
    app = application(options.model)
    issue = preprocess_channels_issue(app, shape, path) if app is not None else None
    if issue is not None:
        issues.append(issue)
    return shape


def _augmentation_shape(shape: Shape, layer: Any, path: Path, issues: list[Issue]) -> Shape:
    """A ``RandomCrop`` fits in the image it crops.

    The shape stays as it is: augmentation runs on training batches only, so the model
    sees the uncropped shape (the compile side refuses a step that changes it).
    """
    if layer.name != "RandomCrop":
        return shape
    height, width = layer.kwargs.get("height"), layer.kwargs.get("width")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (height, width)):
        return shape  # a wrong type is reported already (or Keras reports it)
    first = 1 if layer.kwargs.get("data_format") == "channels_first" else 0
    image = shape[first:first + 2] if shape is not None and len(shape) == 3 else None
    if min(height, width) < 1 or (image and (height > image[0] or width > image[1])):
        within = f"the {image[0]}x{image[1]} image" if image else "an image"
        size = f"{safe_repr(height)}x{safe_repr(width)}"
        issues.append(Issue("crop-size", path, f"a crop of {size} does not fit in "
                            f"{within} it receives: height and width are from 1 up to the "
                            "image's (Keras would enlarge the image instead of cropping it). "
                            "Lower them, or resize first. Received: "
                            f"height={safe_repr(height)}, width={safe_repr(width)}",
                            at_key=True))
    return shape


# --- the registry ------------------------------------------------------------------

@dataclass(frozen=True)
class StepKind:
    """One kind of preprocessing step.

    Args:
        name: the key it is written with in ``data.preprocess`` (``rescale``).
        options: the dataclass of its options; ``None`` for Keras layers, whose
            arguments are Keras's (``AUGMENTATION``).
        stage: when it runs (``STAGES``): ``load`` when the data is loaded (ragged
            lists are not tensors), ``label`` on the labels, ``layer`` as a Keras layer
            built by ``compiler/preprocess.LAYER_BUILDERS``.
        example_shape: its effect on the shape of one example (``ShapeEffect``).
        example: how it is written, for the README (``rescale: 1/255``).
        training_only: it runs on training batches only (augmentation).
        description: the README line when the options' docstring does not give it.
    """

    name: str
    options: Optional[type]
    stage: Stage
    example_shape: ShapeEffect
    example: str
    training_only: bool = False
    description: str = ""

    @property
    def doc(self) -> str:
        """One line on what the step does (README, JSON Schema)."""
        return self.description or (self.options.__doc__ or "").strip().split("\n")[0]


STEPS: dict[str, StepKind] = {kind.name: kind for kind in (
    StepKind("rescale", RescaleStep, "layer", same_shape, "rescale: 1/255"),
    StepKind("normalize", NormalizeStep, "layer", _normalize_shape, "normalize: {}"),
    StepKind("reshape", ReshapeStep, "layer", _reshape_shape, "reshape: [28, 28, 1]"),
    StepKind("resize", ResizeStep, "layer", _resize_shape, "resize: [64, 64]"),
    StepKind("one_hot", OneHotStep, "label", same_shape, "one_hot: {}"),
    StepKind("pad_sequences", PadSequencesStep, "load", _pad_shape, "pad_sequences: 200"),
    StepKind("preprocess_input", PreprocessInputStep, "layer", _preprocess_input_shape,
             "preprocess_input: ResNet50"),
)}

AUGMENTATION = StepKind(
    "Random*", None, "layer", _augmentation_shape, "RandomFlip: {mode: horizontal}",
    training_only=True, description="Any Keras random preprocessing layer (`RandomFlip`, "
    "`RandomRotation`, `RandomCrop`, ...), with its Keras arguments; it keeps the shape of "
    "the example.")


# Keras preprocessing layers that learn from data (``adapt``) or map values to indices,
# written as steps by their Keras names and arguments; the compile side adapts each on the
# training split unless its arguments give what adapting would learn (``ADAPTED_BY``).
ADAPTABLE_LAYERS = ("Normalization", "StringLookup", "IntegerLookup", "TextVectorization",
                    "Discretization", "Hashing")
# The arguments that make adapting needless: the layer is then used as given.
ADAPTED_BY = {"Normalization": ("mean", "variance"), "StringLookup": ("vocabulary",),
              "IntegerLookup": ("vocabulary",), "TextVectorization": ("vocabulary",),
              "Discretization": ("bin_boundaries",), "Hashing": ()}
# Those that take strings: a source of text (a text folder, string arrays) needs one of
# these first, and its raw examples are then read as strings.
STRING_LAYERS = ("TextVectorization", "StringLookup")
# What validate (a text source) and the compile side (arrays found to hold strings) say
# when no such step comes first.
STRINGS_NEED_A_STEP = ("the examples are text (strings), which a model cannot take as they "
                       "are. Add a step that takes strings first in data.preprocess, e.g. "
                       "`- TextVectorization: {max_tokens: 20000, output_sequence_length: "
                       "200}` (token ids for an Embedding) or `- StringLookup: {}`.")
_INDEX_MODES = (None, "int")


def _adaptable_shape(shape: Shape, layer: Any, path: Path, issues: list[Issue]) -> Shape:
    """The shape after an adaptable layer, where its arguments fix it without data: an
    index per value (``output_mode: int``) keeps it, TextVectorization with
    ``output_sequence_length`` makes ``(length,)``, a vector mode with ``max_tokens`` or
    ``num_tokens`` makes that many; ``None`` (known only once adapted) otherwise."""
    kwargs, name = layer.kwargs, layer.name
    mode = kwargs.get("output_mode")
    if name in ("Normalization", "Hashing", "Discretization") and mode in _INDEX_MODES:
        return shape
    if name == "TextVectorization":
        length = kwargs.get("output_sequence_length")
        if mode in _INDEX_MODES:
            return (length,) if isinstance(length, int) and not isinstance(length, bool) \
                else None
        tokens = kwargs.get("max_tokens")
        return (tokens,) if isinstance(tokens, int) and not isinstance(tokens, bool) else None
    if mode in _INDEX_MODES:
        return shape
    return None


def vocabulary_issues(layer: Any, path: Path) -> list[Issue]:
    """A lookup's or TextVectorization's ``vocabulary`` is a list of tokens: Keras reads
    a string as the path of a vocabulary file, which would make the file read outside
    the folders the pipeline names. ``path``: the key path of the layer's arguments."""
    value = layer.kwargs.get("vocabulary")
    if layer.name not in ADAPTABLE_LAYERS or not isinstance(value, str):
        return []
    return [Issue("wrong-type", path + ("vocabulary",), f"{layer.name}'s "
                  "vocabulary is a list of tokens here, e.g. `vocabulary: [cat, dog]`; Keras "
                  "would read a string as a vocabulary file, which a pipeline file never "
                  "makes kerapipe read. Write the tokens as a list, or leave vocabulary out "
                  f"to adapt it on the training split. Received: vocabulary={safe_repr(value)}")]


def adaptable_layer(name: str) -> bool:
    """Whether ``name`` is a Keras preprocessing layer written as a step (``ADAPTABLE_LAYERS``)."""
    return name in ADAPTABLE_LAYERS


def takes_strings(steps: list) -> bool:
    """Whether the raw examples are strings: the first Keras-layer step takes strings
    (``STRING_LAYERS``; other steps take numbers)."""
    for step in steps:
        kind = step_kind(step.kind)
        if kind is not None and kind.stage == "layer":
            return step.kind in STRING_LAYERS
    return False


ADAPTABLE = StepKind(
    "adaptable Keras layer", None, "layer", _adaptable_shape,
    "TextVectorization: {max_tokens: 20000, output_sequence_length: 200}",
    description="A Keras preprocessing layer that learns from data or maps values to "
    f"indices ({', '.join(f'`{n}`' for n in ADAPTABLE_LAYERS)}), with its Keras "
    "arguments; adapted on the training split (unless its arguments give the vocabulary, "
    "mean or bin boundaries) and saved in the model. `TextVectorization` and "
    "`StringLookup` take strings: a text source needs one of them first.")


def is_augmentation_layer(name: str) -> bool:
    """Keras's random preprocessing layers run on training batches only."""
    return name.startswith("Random") and load_catalog().layers.get(name) is not None


def step_kind(name: str) -> Optional[StepKind]:
    """The kind of the step written ``name``: a kerapipe step, ``AUGMENTATION`` for a
    Keras ``Random*`` layer, ``ADAPTABLE`` for a Keras layer of ``ADAPTABLE_LAYERS``, or
    ``None`` for a name that is none of these."""
    kind = STEPS.get(name)
    if kind is None and is_augmentation_layer(name):
        return AUGMENTATION
    if kind is None and adaptable_layer(name):
        return ADAPTABLE
    return kind


def unknown_step(name: str, path: Path) -> Issue:
    """The ``unknown-step`` issue of a step written ``name`` at ``path``."""
    random_layers = [n for n in load_catalog().layers.entries if n.startswith("Random")]
    return Issue("unknown-step", path + (name,), f"unknown preprocessing step '{name}'."
                 f"{did_you_mean(name, list(STEPS) + random_layers + list(ADAPTABLE_LAYERS))}"
                 f" Steps: {', '.join(STEPS)}, a Keras Random* layer (training only), or "
                 f"one of {', '.join(ADAPTABLE_LAYERS)} (adapted on the training split).",
                 at_key=True)


def trace_shape(shape: Shape, steps: list, issues: Optional[list[Issue]] = None,
                stages: tuple[str, ...] = tuple(STAGES)) -> Shape:
    """The shape of one example after ``steps`` (``data.preprocess``, typed) of the
    given stages, from the raw example's ``shape``; what a step cannot take goes to
    ``issues`` at its key path."""
    issues = [] if issues is None else issues
    for index, step in enumerate(steps):
        kind = step_kind(step.kind)
        if kind is not None and kind.stage in stages:
            path = ("data", "preprocess", index, step.kind)
            shape = kind.example_shape(shape, step.options, path, issues)
    return shape
