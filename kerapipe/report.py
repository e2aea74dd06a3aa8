"""Plain-text reports: the final metrics table and the plan for the terminal, the
model summary a run keeps, and the classification report (classification_report.csv)."""

from __future__ import annotations

import io
from contextlib import redirect_stdout


def format_metrics(metrics: dict, title: str = "test metrics") -> str:
    if not metrics:
        return f"{title}: none (no test split)"
    width = max(len(name) for name in metrics)
    lines = [f"{title}:", f"  {'metric':<{width}}  value"]
    lines += [f"  {name:<{width}}  {value:.4f}" for name, value in metrics.items()]
    return "\n".join(lines)


def format_run_summary(result) -> str:
    """Final table, predictions summary and the run folder, for `kerapipe run`."""
    lines = [format_metrics(result.test_metrics),
             f"epochs: {result.epochs_run} ({result.seconds.get('fit', 0):.1f} s training)"]
    if result.accuracy is not None:
        correct = int(round(result.accuracy * len(result.true)))
        confused = ", ".join(f"{t} -> {p} ({n})" for t, p, n in result.most_confused())
        lines.append(f"predictions: {correct}/{len(result.true)} correct "
                     f"({result.accuracy:.2%}); most confused: {confused or 'none'}")
    lines += [f"note: {note}" for note in getattr(result, "notes", [])]
    lines.append(f"run folder: {result.run_dir}")
    if getattr(result, "mlflow", None) is not None:  # where MLflow has the run
        lines.append(result.mlflow.describe())
    return "\n".join(lines)


def split_origin(split) -> str:
    """Where ``plan``'s splits come from when it is not a shuffled draw: `` (ordered)``,
    `` (by column 'fold')``, `` (validation from v.csv)``; empty for the default."""
    origin = ([f"by column '{split.column}'"] if split.column is not None else
              ["ordered"] if split.order == "ordered" else [])
    origin += [f"{part} from {path}" for part, path in split.files.items()]
    return f" ({', '.join(origin)})" if origin else ""


def format_plan(compiled) -> str:
    """Data pipeline stages with shapes, split sizes, and the Keras model summary."""
    spec, data = compiled.spec, compiled.data
    lines = [f"pipeline {spec.name}", f"data: {data.description}"]
    sizes = {name: (0 if getattr(data, name) is None else len(getattr(data, name).y))
             for name in ("train", "validation", "test")}
    lines.append("splits: " + ", ".join(f"{k} {v}" for k, v in sizes.items())
                 + split_origin(spec.data.split))
    facts = getattr(data, "labels", None)
    if facts is not None:  # one output: the kind of its labels, and whether it was inferred
        from kerapipe.spec.label_kinds import stratification

        split = spec.data.split
        rule = (f"by column '{split.column}'" if split.column is not None else
                "in the source's order (not stratified)" if split.order == "ordered" else
                stratification(facts.kind, split.stratify))
        lines.append(facts.describe(rule, data.num_classes))
    lines += format_features(compiled.preprocessing.encoding, data.source.record())
    lines += format_weights(data)
    lines.append("stages (shape of one example):")
    stages = compiled.preprocessing.stages
    width = max([16] + [len(name) for name, _ in stages])  # `RandomTranslation` is 17
    for name, shape in stages:
        lines.append(f"  {name:<{width}} {tuple(shape)}")
    from kerapipe.compiler.datasets import use_cache

    cache = "cache, " if use_cache(spec, data.train, compiled.preprocessing) else ""
    lines.append(f"  tf.data: {cache}shuffle {spec.data.shuffle}, batch {spec.data.batch_size}, "
                 "prefetch (parallel map, AUTOTUNE)")
    lines += format_graph(compiled.model)
    lines.append(model_summary(compiled.model))
    optimizer = spec.optimizer
    lines.append(f"loss {spec.loss.name}; optimizer {optimizer.name} (learning rate "
                 f"{optimizer.learning_rate if not hasattr(optimizer.learning_rate, 'name') else optimizer.learning_rate.name}); "
                 f"epochs {spec.train.epochs}" + (f"; early stopping on "
                                                  f"{spec.train.early_stopping.monitor}"
                                                  if spec.train.early_stopping else ""))
    lines += format_training(spec)
    lines += format_stages(compiled)
    from kerapipe.compiler.distribute import plan_lines

    lines += plan_lines(spec.train.distribute, spec.data.batch_size, compiled.model)
    return "\n".join(lines)


def format_training(spec) -> list[str]:
    """``plan``'s lines on the file's callbacks (as written; a path is inside the run
    folder) and a mixed precision; nothing when the file has neither."""
    lines = []
    train = spec.train
    if train.callbacks:
        shown = [callback.name + ("(" + ", ".join(f"{k}={v!r}" for k, v in
                                                 callback.kwargs.items()) + ")"
                                  if callback.kwargs else "") for callback in train.callbacks]
        lines.append("callbacks (after kerapipe's own; paths inside the run folder): "
                     + ", ".join(shown))
    if train.precision != "float32":
        lines.append(f"precision {train.precision} (Keras dtype policy; the output layers "
                     "compute in float32" + ("; the loss is scaled)" if
                                            train.precision == "mixed_float16" else ")"))
    return lines


def format_stages(compiled) -> list[str]:
    """``plan``'s table of ``train.stages``: each stage's epochs, what it trains, the
    parameters that leaves trainable (counted on the built model), its optimizer and
    early stopping; nothing without stages."""
    from kerapipe.spec.stages import stage_early_stopping, stage_optimizer

    train = compiled.spec.train
    if not train.stages:
        return []
    rows = [("stage", "epochs", "trainable", "trainable params", "optimizer", "early stopping")]
    for index, (stage, count) in enumerate(zip(train.stages, compiled.stage_trainable_counts())):
        trainable = stage.trainable
        names = ("all" if trainable.everything else ("all except " if trainable.exclude else "")
                 + ", ".join(trainable.names))
        optimizer = stage_optimizer(compiled.spec, stage)
        rate = optimizer.learning_rate
        rate = f"{rate:g}" if isinstance(rate, float) else getattr(rate, "name", str(rate))
        early = stage_early_stopping(train, stage)
        rows.append((str(index + 1), str(stage.epochs), names, f"{count:,}",
                     f"{optimizer.name} (learning rate {rate})",
                     f"{early.monitor}, patience {early.patience}" if early else "off"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"stages (fine-tuning, {train.epochs} epochs in all; each compiles the model "
             "again):"]
    lines += ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
              for row in rows]
    return lines


def format_weights(data) -> list[str]:
    """``plan``'s lines on example weights: the class weights as resolved on the training
    split, and the sample weight column or array; nothing without weights."""
    lines = []
    if data.class_weights is not None:
        lines.append(data.class_weights.describe())
    weight = getattr(getattr(data.source, "options", None), "sample_weight", None)
    if weight is not None:
        lines.append(f"sample weights: '{weight}' (training loss only"
                     + ("; times the class weights)" if data.class_weights is not None
                        else ")"))
    return lines


def format_features(encoding, record: dict) -> list[str]:
    """``plan``'s table of typed features (``data.features``): each column, its type, how
    many values it gives the model, and what its missing values become (with the fill
    learned from the training split); nothing without typed features."""
    if encoding is None:
        return []
    encoded = dict(encoding.space.get_encoded_features()) if encoding.space is not None else {}
    fills = record.get("fill_values", {})
    rows = [("feature", "type", "values", "missing")]
    for feature in encoding.features:
        tensor = encoded.get(feature.name)
        if feature.is_text:
            tensor = encoding.texts[feature.name].compute_output_spec(
                _string_input()) if tensor is None else tensor
        width = tensor.shape[-1] if tensor is not None else "?"
        missing = feature.missing
        if missing in ("mean", "mode") and feature.name in fills:
            missing = f"{missing} ({_shown(fills[feature.name])})"
        elif missing == "fill":
            missing = f"fill ({_shown(feature.fill)})"
        rows.append((feature.name, feature.type, str(width), missing))
    for name, tensor in encoded.items():
        if encoding.features and all(f.name != name for f in encoding.features):
            rows.append((name, "cross", str(tensor.shape[-1]), "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["features:"]
    for row in rows:
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths))
                     + "  " + row[3])
    return lines


def _shown(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else repr(value)


def _string_input():
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import keras

    return keras.KerasTensor((None,), dtype="string")


def format_graph(model) -> list[str]:
    """The graph table of ``plan`` for a model that is not a plain chain: each node of
    the file (its kerapipe name, where it is written, what it takes), its Keras layer,
    output shape and parameters. A chain shows Keras's summary alone."""
    from kerapipe.compiler.build import node_layers
    from kerapipe.spec.issues import format_path

    from kerapipe.compiler.assemble import core_model

    pairs = node_layers(core_model(model))
    chain = all(node.inputs == (previous.name,) for (previous, _), (node, _)
                in zip(pairs, pairs[1:])) and not any(node.use for node, _ in pairs)
    if not pairs or chain:
        return []
    rows = [("node", "layer", "takes", "output shape", "params", "written at")]
    for node, layer in pairs:
        shape = getattr(layer, "output", None)
        shape = tuple(shape.shape) if hasattr(shape, "shape") else "?"
        frozen = " (frozen)" if node.trainable is False else ""
        rows.append((node.name, f"{node.layer.name}{frozen}", ", ".join(node.inputs),
                     str(shape), f"{layer.count_params():,}", format_path(node.path)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["graph (each layer of the file, what it takes, what it gives):"]
    lines += ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
              for row in rows]
    return lines


def model_summary(model) -> str:
    """Keras's ``model.summary()`` as text (what ``plan`` prints and a run keeps as
    model_summary.txt)."""
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        model.summary(print_fn=lambda text, **_: print(text))
    return buffer.getvalue().rstrip()


# --- the classification report (classification_report.csv), NumPy only ----------------

REPORT_COLUMNS = ("class", "precision", "recall", "f1", "support")


def confusion_matrix(true, predicted, classes: int):
    """``(classes, classes)`` counts: row the true class, column the predicted one."""
    import numpy as np

    true = np.asarray(true, dtype=np.int64).reshape(-1)
    predicted = np.asarray(predicted, dtype=np.int64).reshape(-1)
    flat = np.bincount(true * classes + predicted, minlength=classes * classes)
    return flat.reshape(classes, classes)


def classification_report(tp, fp, fn, support, names) -> list[tuple]:
    """Rows ``(class, precision, recall, f1, support)``: one per class, then ``macro
    avg`` (the mean over the classes) and ``weighted avg`` (weighted by support), as
    scikit-learn's ``classification_report`` counts them with ``zero_division=0`` (a
    ratio with nothing to count is 0).

    Args:
        tp, fp, fn, support: per class, the true positives, false positives, false
            negatives and true examples (``counts_of_classes``, ``counts_of_label_sets``).
        names: one name per class.
    """
    import numpy as np

    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    support = np.asarray(support, dtype=np.int64)

    def ratio(top, bottom):
        return np.divide(top, bottom, out=np.zeros_like(top), where=bottom > 0)

    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    f1 = ratio(2 * precision * recall, precision + recall)
    rows = [(str(name), float(p), float(r), float(f), int(s))
            for name, p, r, f, s in zip(names, precision, recall, f1, support)]
    total = int(support.sum())
    weights = support / total if total else np.zeros(len(support))
    count = max(len(support), 1)
    rows.append(("macro avg", float(precision.sum() / count), float(recall.sum() / count),
                 float(f1.sum() / count), total))
    rows.append(("weighted avg", float(precision @ weights), float(recall @ weights),
                 float(f1 @ weights), total))
    return rows


def counts_of_classes(true, predicted, classes: int) -> tuple:
    """``(tp, fp, fn, support)`` per class of single-label predictions (class indices),
    counted in O(examples + classes) (no confusion matrix: a run may have many classes)."""
    import numpy as np

    true = np.asarray(true, dtype=np.int64).reshape(-1)
    predicted = np.asarray(predicted, dtype=np.int64).reshape(-1)
    tp = np.bincount(true[true == predicted], minlength=classes)
    support = np.bincount(true, minlength=classes)
    return tp, np.bincount(predicted, minlength=classes) - tp, support - tp, support


def counts_of_label_sets(true, predicted) -> tuple:
    """``(tp, fp, fn, support)`` per label of multi-label predictions (multi-hot rows)."""
    import numpy as np

    true, predicted = np.asarray(true, dtype=bool), np.asarray(predicted, dtype=bool)
    return ((true & predicted).sum(axis=0), (~true & predicted).sum(axis=0),
            (true & ~predicted).sum(axis=0), true.sum(axis=0))


def classification_report_csv(rows: list[tuple]) -> str:
    """classification_report.csv: ``class, precision, recall, f1, support``."""
    import csv

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for name, precision, recall, f1, support in rows:
        writer.writerow([name, f"{precision:.6f}", f"{recall:.6f}", f"{f1:.6f}", support])
    return out.getvalue()
