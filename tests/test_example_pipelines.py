"""Every example pipeline trains briefly: on its shipped data, or (for an example whose
data Keras downloads) on a shipped stand-in of the same form."""

from pathlib import Path

import pytest

from kerapipe.spec.validate import load_spec

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = sorted((ROOT / "pipelines").glob("*.yaml"))
SHIPPED = [p for p in PIPELINES
           if load_spec(p).data.source.kind in ("sample", "csv", "npz", "images", "text")]
DOWNLOADED = [p for p in PIPELINES if p not in SHIPPED]
# Downloaded examples that train in the tests on shipped data of the same form.
STAND_INS = {"transformer_imdb.yaml": ["data.source={npz: data/token_sequences.npz}",
                                       "data.preprocess[0].pad_sequences.maxlen=64"]}
# Examples that need more than one epoch to beat chance: the transformer (5 epochs), and
# a backbone trained from scratch (`weights: null`) whose BatchNormalization statistics
# lag its weights for its first hundreds of steps (hand-written Keras alike), so that its
# held-out accuracy stays at chance for a test's epochs: it must learn on the training
# data (`None`: no held-out check).
EPOCHS = {"transformer_imdb.yaml": 5, "mobilenet_digits.yaml": 2,
          "text_topics.yaml": 2}  # one epoch: 44% (chance 33%), two: 76%
NO_HELD_OUT_CHECK = {"mobilenet_digits.yaml",
                     # no accuracy to compare with chance: their held-out checks (mae
                     # against the mean's, per-label accuracy against the majority's) are
                     # in tests/test_label_kinds.py
                     "multi_label.yaml", "regression.yaml"}
TRAINED = SHIPPED + [p for p in DOWNLOADED if p.name in STAND_INS]


def test_examples_cover_shipped_and_downloaded_data():
    assert {p.name for p in SHIPPED} >= {"mnist.yaml", "iris.yaml", "penguins.yaml",
                                         "text_topics.yaml"}
    assert {p.name for p in DOWNLOADED} >= {"mnist-full.yaml", "fashion_mnist.yaml",
                                            "cifar10.yaml", "imdb.yaml"}


@pytest.mark.parametrize("path", TRAINED, ids=[p.name for p in TRAINED])
def test_example_trains_briefly_and_predicts(path):
    from kerapipe import compile_pipeline

    epochs = EPOCHS.get(path.name, 1)
    # A multi-worker example trains here as one process (its cluster: tests/test_distribute.py).
    compiled = compile_pipeline(path, overrides=[f"train.epochs={epochs}",
                                                 *STAND_INS.get(path.name, [])],
                                distribute=False)
    history = compiled.fit(verbose=0)
    losses = history.history["loss"]
    assert len(losses) == epochs
    assert losses[-1] < losses[0] or epochs == 1
    if path.name not in NO_HELD_OUT_CHECK:
        metrics = compiled.evaluate()
        assert metrics["accuracy"] > 1.5 / compiled.data.num_classes  # better than chance
    predicted = compiled.predict()
    assert predicted.shape == compiled.data.test.y.shape


def test_every_downloaded_example_with_a_stand_in_is_listed():
    assert set(STAND_INS) <= {p.name for p in DOWNLOADED}
    assert set(EPOCHS) | NO_HELD_OUT_CHECK <= {p.name for p in TRAINED}
