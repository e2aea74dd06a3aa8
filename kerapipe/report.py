"""Plain-text reports for the terminal: the final metrics table, the plan."""

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
    return "\n".join(lines)


def format_plan(compiled) -> str:
    """Data pipeline stages with shapes, split sizes, and the Keras model summary."""
    spec, data = compiled.spec, compiled.data
    lines = [f"pipeline {spec.name}", f"data: {data.description}"]
    sizes = {name: (0 if getattr(data, name) is None else len(getattr(data, name).y))
             for name in ("train", "validation", "test")}
    lines.append("splits: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    lines.append("stages (shape of one example):")
    for name, shape in compiled.preprocessing.stages:
        lines.append(f"  {name:<16} {tuple(shape)}")
    from kerapipe.compiler.datasets import use_cache

    cache = "cache, " if use_cache(spec, data.train, compiled.preprocessing) else ""
    lines.append(f"  tf.data: {cache}shuffle {spec.data.shuffle}, batch {spec.data.batch_size}, "
                 "prefetch (parallel map, AUTOTUNE)")
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        compiled.model.summary(print_fn=lambda text, **_: print(text))
    lines.append(buffer.getvalue().rstrip())
    optimizer = spec.optimizer
    lines.append(f"loss {spec.loss.name}; optimizer {optimizer.name} (learning rate "
                 f"{optimizer.learning_rate if not hasattr(optimizer.learning_rate, 'name') else optimizer.learning_rate.name}); "
                 f"epochs {spec.train.epochs}" + (f"; early stopping on "
                                                  f"{spec.train.early_stopping.monitor}"
                                                  if spec.train.early_stopping else ""))
    return "\n".join(lines)
