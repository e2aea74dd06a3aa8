"""The run folder's plots: learning curves, a confusion matrix, regression residuals.

Each function takes plain numbers (what the run folder's files hold) and returns the
bytes of a PNG. matplotlib is imported inside them, never at module import (`kerapipe
validate` loads none of it), and only its object API is used: a
``matplotlib.figure.Figure`` drawn on its own Agg canvas, never ``pyplot`` (no global
figure registry, no backend switch for a notebook that imported kerapipe).

Text that comes from the data or the file (class names, metric names) is drawn as it
is, never parsed as mathtext (a class named ``$x`` would otherwise be parsed, and a
malformed one would fail the whole plot), shortened to a label's width.
"""

from __future__ import annotations

import io
import math
from typing import Optional, Sequence

import numpy as np

_LABEL_CHARS = 24  # a tick label's width; longer class names are shortened with "..."
_ANNOTATED_CLASSES = 20  # a confusion matrix shows each cell's count up to this size
_LABELLED_CLASSES = 40  # ... and each class's name on the axes up to this size
_MAX_PANELS = 24  # learning curves: at most this many metrics get a panel


def _label(text) -> str:
    """A name as a plot shows it: one line, at most ``_LABEL_CHARS`` characters."""
    text = "".join(c if c.isprintable() else " " for c in str(text))
    return text if len(text) <= _LABEL_CHARS else text[:_LABEL_CHARS - 3] + "..."


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:
    """The figure as PNG bytes; a glyph the font lacks (an emoji in a class name) is drawn
    as a box, not a warning."""
    import warnings

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from")
        figure.savefig(buffer, format="png")
    figure.clear()
    return buffer.getvalue()


def _text(artist, **kwargs) -> None:
    artist.set(parse_math=False, **kwargs)


def curve_names(history: dict) -> list[str]:
    """The metrics that get a panel: each name Keras logged without its ``val_`` prefix
    (loss first), not the learning rate."""
    names = []
    for key in history:
        base = key[4:] if key.startswith("val_") else key
        if base != "learning_rate" and base not in names:
            names.append(base)
    names.sort(key=lambda name: (name != "loss", not name.endswith("loss")))
    return names[:_MAX_PANELS]


def learning_curves_png(history: dict) -> bytes:
    """One panel per metric (``curve_names``), training and validation per epoch.

    Args:
        history: name -> one value per epoch, as history.csv holds them.
    """
    names = curve_names(history) or ["loss"]
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    figure = _figure(4.2 * columns, 3.2 * rows)
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, name in enumerate(names):
        ax = axes[index // columns][index % columns]
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            values = np.asarray(history.get(key, []), dtype=float)
            if len(values) == 0:
                continue
            values[~np.isfinite(values)] = np.nan
            epochs = np.arange(1, len(values) + 1)
            ax.plot(epochs, values, marker="o" if len(values) <= 30 else None,
                    markersize=3, label=label)
        _text(ax.set_title(_label(name)))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(fontsize="small")
            ax.xaxis.get_major_locator().set_params(integer=True)
    for index in range(len(names), rows * columns):
        axes[index // columns][index % columns].set_visible(False)
    return _png(figure)


def confusion_matrix_png(matrix: np.ndarray, class_names: Sequence, title: str = "") -> bytes:
    """The confusion matrix: true classes down, predicted across, each cell's count.

    Args:
        matrix: ``(classes, classes)`` counts (``html_report.confusion_matrix``).
        class_names: one name per class.
        title: a caption above the matrix (a model of several outputs names the output).
    """
    matrix = np.asarray(matrix)
    classes = len(matrix)
    side = min(14.0, max(4.5, 0.45 * classes + 2.5))
    figure = _figure(side + 1.0, side)
    ax = figure.subplots()
    image = ax.imshow(matrix, cmap="Blues", interpolation="nearest")
    figure.colorbar(image, ax=ax, shrink=0.8)
    if classes <= _LABELLED_CLASSES:
        labels = [_label(name) for name in class_names]
        ax.set_xticks(range(classes))
        ax.set_yticks(range(classes))
        for tick in ax.set_xticklabels(labels, rotation=45, ha="right"):
            _text(tick)
        for tick in ax.set_yticklabels(labels):
            _text(tick)
    if classes <= _ANNOTATED_CLASSES:
        high = matrix.max() if matrix.size else 0
        for row in range(classes):
            for column in range(classes):
                count = int(matrix[row, column])
                ax.text(column, row, str(count), ha="center", va="center", fontsize="small",
                        color="white" if high and count > high / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    _text(ax.set_title(_label(title) if title else "confusion matrix (test split)"))
    return _png(figure)


def residuals_png(true: np.ndarray, predicted: np.ndarray, title: str = "") -> bytes:
    """A regression's test predictions: predicted against true (the diagonal is a perfect
    model), and the residuals (predicted - true) against the prediction.

    Args:
        true: the targets.
        predicted: the model's values, in the targets' units.
        title: a caption (a model of several outputs names the output).
    """
    true = np.asarray(true, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    keep = np.isfinite(true) & np.isfinite(predicted)
    true, predicted = true[keep], predicted[keep]
    figure = _figure(9.0, 4.0)
    left, right = figure.subplots(1, 2)
    left.scatter(true, predicted, s=10, alpha=0.6)
    if len(true):
        low = float(min(true.min(), predicted.min()))
        high = float(max(true.max(), predicted.max()))
        left.plot([low, high], [low, high], color="grey", linewidth=1, linestyle="--")
    left.set_xlabel("true")
    left.set_ylabel("predicted")
    _text(left.set_title(_label(title) + " predicted vs true" if title else
                         "predicted vs true (test split)"))
    right.scatter(predicted, predicted - true, s=10, alpha=0.6)
    right.axhline(0, color="grey", linewidth=1, linestyle="--")
    right.set_xlabel("predicted")
    right.set_ylabel("residual (predicted - true)")
    right.set_title("residuals")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.locator_params(axis="x", nbins=5)  # large values' labels would overlap
    return _png(figure)


def png_size(data: bytes) -> Optional[tuple[int, int]]:
    """A PNG's ``(width, height)`` from its header, or ``None`` when it is not a PNG."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
