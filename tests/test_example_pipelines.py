"""Every example pipeline whose data ships with kerapipe trains for one short epoch."""

from pathlib import Path

import pytest

from kerapipe.spec.validate import load_spec

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = sorted((ROOT / "pipelines").glob("*.yaml"))
SHIPPED = [p for p in PIPELINES
           if load_spec(p).data.source.kind in ("sample", "csv", "npz", "images")]
DOWNLOADED = [p for p in PIPELINES if p not in SHIPPED]


def test_examples_cover_shipped_and_downloaded_data():
    assert {p.name for p in SHIPPED} >= {"mnist.yaml", "iris.yaml"}
    assert {p.name for p in DOWNLOADED} >= {"mnist-full.yaml", "fashion_mnist.yaml",
                                            "cifar10.yaml", "imdb.yaml"}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_example_trains_one_epoch_and_predicts(path):
    from kerapipe import compile_pipeline

    compiled = compile_pipeline(path, overrides=["train.epochs=1"])
    history = compiled.fit(verbose=0)
    assert len(history.history["loss"]) == 1
    metrics = compiled.evaluate()
    assert metrics["accuracy"] > 1.5 / compiled.data.num_classes  # better than chance
    predicted = compiled.predict()
    assert predicted.shape == compiled.data.test.y.shape
