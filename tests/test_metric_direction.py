"""Early stopping on a metric (`val_accuracy`) with `mode: auto`: Keras reads which way
is better from the metric, which kerapipe wraps (compiler/metrics.MetricInputsAdapter)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("monitor", ["val_accuracy", "accuracy"])
def test_early_stopping_on_accuracy_resolves_mode_auto(tmp_path, npz_workspace, call_main,
                                                       monitor):
    text = ("kerapipe: 1\nname: es\nseed: 1\ndata:\n  source: {npz: data.npz}\n"
            "  split: {validation: 0.2, test: 0.2}\n  batch_size: 8\nmodel:\n"
            "  layers: [{Dense: {units: 3}}]\ntrain:\n  epochs: 2\n"
            f"  early_stopping: {{monitor: {monitor}, patience: 1}}\n")
    pipeline = npz_workspace(tmp_path, text=text)
    code, out, err = call_main("run", str(pipeline), "--output", str(tmp_path / "runs"))
    assert code == 0, err


def test_the_wrapped_metric_keeps_the_direction_of_keras_metric():
    from kerapipe.compiler import backend  # noqa: F401
    import keras

    from kerapipe.compiler.metrics import MetricInputsAdapter

    assert MetricInputsAdapter(keras.metrics.SparseCategoricalAccuracy())._direction == "up"
    assert MetricInputsAdapter(keras.metrics.MeanAbsoluteError())._direction == "down"
