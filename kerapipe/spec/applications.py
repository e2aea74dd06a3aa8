"""Backbones: ``keras.applications`` models used as one layer, and what ``validate``
checks about them without TensorFlow.

A backbone is written like any layer, with the function's name behind ``applications.``
(``applications.MobileNetV3Small: {include_top: false, weights: null, pooling: avg}``);
its arguments are the function's, less ``input_shape``/``input_tensor``, which kerapipe
gives from the data. The facts here come from the shipped catalogue (generated from
Keras by ``scripts/gen_keras_catalog.py``): the smallest image side each model accepts
(Keras's ``min_size``), the module whose ``preprocess_input`` fits it and that module's
preprocessing mode, and the defaults of ``weights`` and ``include_top``.

Keras's rules that ``backbone_issues`` checks: the input is an image (height, width,
channels, channels last), each side at least the model's smallest, and 3 channels when
the ImageNet weights are loaded (``weights: imagenet``, Keras's default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.issues import Issue, Path, did_you_mean, safe_repr

PREFIX = "applications."

# A backbone's `weights`: null, `imagenet` (Keras downloads it into its cache from its own
# address) or a weights file that Keras opens with Model.load_weights, which is a file
# argument (``validate.is_file_argument``): inside the pipeline's folder, resolved there.
# Only an HDF5 file (``.h5``, ``.weights.h5``) is taken: a sharded ``.weights.json`` names
# other files, a ``.keras`` archive holds a whole model, and an Orbax checkpoint is a
# folder. The compile side refuses an HDF5 file that reads other files too
# (``compiler.layer_classes.check_weights_file``).
WEIGHTS = "weights"
WEIGHT_NAMES = (None, "imagenet")
WEIGHTS_FILE_SUFFIX = ".h5"

# What each preprocessing mode does to RGB pixels in [0, 255] (Keras's
# applications.imagenet_utils.preprocess_input; the compile side builds it as layers).
PREPROCESS_MODES: dict[str, str] = {
    "caffe": "flipped to BGR, minus the ImageNet mean of each channel",
    "tf": "scaled to [-1, 1]",
    "torch": "scaled to [0, 1], then standardised per channel with ImageNet's mean and "
             "deviation",
    "none": "unchanged: the model includes its preprocessing",
}
# The modes that work channel by channel on exactly 3 (RGB) channels.
RGB_MODES = ("caffe", "torch")


@dataclass(frozen=True)
class Application:
    """One ``keras.applications`` model function, as the catalogue knows it.

    Args:
        function: its name in ``keras.applications`` (``MobileNetV3Small``).
        module: its module there (``mobilenet_v3``), whose ``preprocess_input`` fits it.
        min_size: the smallest height and width (pixels) it accepts.
        preprocess: that module's preprocessing mode (``PREPROCESS_MODES``).
        default_weights: ``weights`` when the file does not say (``imagenet``).
        default_include_top: ``include_top`` when the file does not say.
    """

    function: str
    module: str
    min_size: int
    preprocess: str
    default_weights: Any
    default_include_top: bool

    @property
    def layer_name(self) -> str:
        """How a file writes it as a layer: ``applications.MobileNetV3Small``."""
        return PREFIX + self.function


def application(name: str) -> Optional[Application]:
    """The application a layer name (``applications.VGG16``) or function name (``VGG16``)
    names, or ``None``."""
    if not isinstance(name, str):
        return None
    function = name.removeprefix(PREFIX)
    facts = load_catalog().applications.get(function)
    if facts is None:
        return None
    return Application(function, facts["module"], facts["min_size"], facts["preprocess"],
                       facts["defaults"]["weights"], facts["defaults"]["include_top"])


def application_names() -> list[str]:
    """Every application function name, sorted (``ConvNeXtBase``, ...)."""
    return sorted(load_catalog().applications)


def is_backbone(name: str) -> bool:
    """Whether a layer name names a ``keras.applications`` model."""
    return isinstance(name, str) and name.startswith(PREFIX) and application(name) is not None


def backbone_issues(layer: Any, path: Path, example_shape: Optional[tuple]) -> list[Issue]:
    """What Keras would refuse about the input of a backbone layer, found without it.

    Args:
        layer: a ``LayerSpec``; anything but a backbone gives no issue.
        path: the key path of its entry (``("model", "layers", 0)``): its arguments sit
            at ``path + (layer.name, argument)``.
        example_shape: the shape of one example reaching it (no batch axis), when known
            without data (``checks.trace_example_shape`` for a layer that takes the model
            input); ``None`` checks nothing.
    """
    app = application(getattr(layer, "name", None))
    if app is None or example_shape is None:
        return []
    shape = list(example_shape)
    at = path + (layer.name,)
    if len(shape) != 3:
        return [Issue("backbone-input-size", at, f"{app.layer_name} takes images: one example "
                      f"must have the shape [height, width, channels], but an example here has "
                      f"shape {shape}. Reshape or resize it in data.preprocess (e.g. "
                      f"`- reshape: [28, 28, 1]`).", at_key=True)]
    issues = []
    height, width, channels = shape
    if min(height, width) < app.min_size:
        side = app.min_size
        issues.append(Issue("backbone-input-size", at, f"{app.layer_name} takes images of at "
                            f"least {side}x{side} pixels, but an example here is {height}x"
                            f"{width} (shape {shape}). Resize first: add `- resize: "
                            f"[{max(height, side)}, {max(width, side)}]` to data.preprocess.",
                            at_key=True))
    weights = layer.kwargs.get(WEIGHTS, app.default_weights)
    if weights == "imagenet" and channels != 3:
        given = "weights" in layer.kwargs
        where = at + ("weights",) if given else at
        said = "weights: imagenet" if given else "weights: imagenet (Keras's default)"
        issues.append(Issue("backbone-channels", where, f"{app.layer_name} with {said} takes "
                            f"RGB images (3 channels), but an example here has {channels} "
                            f"(shape {shape}). Use `weights: null` (trained from scratch), or "
                            "give the data 3 channels.", at_key=not given))
    return issues


def weights_issues(layer: Any, path: Path) -> list[Issue]:
    """A backbone's ``weights`` that is none of null, ``imagenet`` and an HDF5 file's name
    (``WEIGHTS_FILE_SUFFIX``): Keras takes any other string for a path.

    Args:
        layer: a ``LayerSpec``; anything but a backbone gives no issue.
        path: the key path of its entry (see ``backbone_issues``).
    """
    app = application(getattr(layer, "name", None))
    if app is None or WEIGHTS not in layer.kwargs or layer.kwargs[WEIGHTS] in WEIGHT_NAMES:
        return []
    value = layer.kwargs[WEIGHTS]
    at = path + (layer.name, WEIGHTS)
    expected = (f"{app.layer_name} takes as weights null (random weights), imagenet (Keras "
                "downloads them into its cache) or the name of a .h5 weights file "
                "(`.weights.h5`, saved by Keras's save_weights) inside the pipeline's folder.")
    if not isinstance(value, str):
        return [Issue("wrong-type", at, f"{expected} Received: weights={safe_repr(value)}")]
    if value.endswith(WEIGHTS_FILE_SUFFIX):
        return []
    hint = did_you_mean(value.strip(), ("imagenet",))  # ImageNet, imagenett
    return [Issue("unknown-value", at, f"{expected}{hint} Received: weights="
                  f"{safe_repr(value)}")]


def preprocess_channels_issue(app: Application, shape: Optional[tuple],
                              path: Path) -> Optional[Issue]:
    """The ``preprocess_input`` step of ``app`` on examples of ``shape``: its caffe and
    torch modes work on the 3 channels of RGB images."""
    if app.preprocess not in RGB_MODES or not shape or shape[-1] == 3:
        return None
    return Issue("backbone-channels", path + ("model",), f"preprocess_input of "
                 f"{app.function} works on the 3 channels of RGB images ({app.preprocess} "
                 f"mode: {PREPROCESS_MODES[app.preprocess]}), but an example here has shape "
                 f"{list(shape)}. Give the data 3 channels, or leave the step out (a "
                 "backbone with `weights: null` needs no ImageNet preprocessing).")
