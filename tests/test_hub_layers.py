"""keras-hub layers (issue 12, item 5): catalogued from keras-hub and shipped, so that
``validate`` knows them without keras-hub installed; built from ``keras_hub.layers`` by
``run``, which without keras-hub says which extra to install (exit 2); a run's
``model.keras`` with a hub layer loads again.

The tests that build a hub layer need keras-hub (the ``test`` extra installs it); the
others run without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.validate import validate_text

# 16 sequences of 12 token ids, 8 for training with batch_size 8: one training step.
HUB_PIPELINE = textwrap.dedent("""\
    kerapipe: 1
    name: hub
    seed: 1
    data:
      source: {npz: data.npz}
      split: {validation: 0.25, test: 0.25}
      batch_size: 8
      preprocess:
        - pad_sequences: 12
    model:
      layers:
        - TokenAndPositionEmbedding: {vocabulary_size: 40, sequence_length: 12, embedding_dim: 8}
        - TransformerEncoder: {intermediate_dim: 16, num_heads: 2}
        - GlobalAveragePooling1D
        - Dense: {units: 2}
    train: {epochs: 1}
    """)
BLOCK_HUB = "import sys\nsys.modules['keras_hub'] = None  # `import keras_hub` fails\n"


def write_sequences(folder: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(folder / "data.npz", x=rng.integers(1, 40, (16, 12)), y=np.arange(16) % 2)


# --- the shipped catalogue ----------------------------------------------------------------

def test_hub_layers_are_catalogued_with_their_origin():
    layers = load_catalog().layers
    for name in ("TransformerEncoder", "TransformerDecoder", "PositionEmbedding",
                 "TokenAndPositionEmbedding", "SinePositionEncoding", "RotaryEmbedding"):
        assert layers.get(name).origin == "keras_hub", name
    assert layers.get("TransformerEncoder").required == ("intermediate_dim", "num_heads")
    assert layers.get("TokenAndPositionEmbedding").required == (
        "embedding_dim", "sequence_length", "vocabulary_size")


def test_a_name_keras_also_has_means_keras_layer():
    raw = load_catalog()
    assert raw.layers.get("RMSNormalization").origin == "keras"
    assert raw.layers.get("ReversibleEmbedding").origin == "keras"


def test_hub_layers_a_file_cannot_use_are_refused_with_why():
    refused = load_catalog().refused_layers
    assert "dict" in refused["NonMaxSuppression"] and "SAM" in refused["SAMMaskDecoder"]
    assert "preset" in refused["ResNetImageConverter"]
    result = validate_text(HUB_PIPELINE.replace("GlobalAveragePooling1D", "SAMMaskDecoder"),
                           "p.yaml")
    issue, = result.errors
    assert issue.code == "refused-layer" and issue.key_path == "model.layers[2].SAMMaskDecoder"


def test_an_argument_that_takes_a_python_object_is_not_offered():
    assert "token_embedding" not in load_catalog().layers.get("MaskedLMHead").params


def test_validate_knows_hub_layers_without_keras_hub():
    code = (BLOCK_HUB + "from kerapipe.spec.validate import validate_text\n"
            f"result = validate_text({HUB_PIPELINE!r}, 'p.yaml')\n"
            f"bad = validate_text({HUB_PIPELINE.replace('num_heads: 2', 'num_head: 2')!r})\n"
            "print(len(result.issues), ','.join(sorted(i.code for i in bad.issues)),\n"
            "      'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0", "missing-argument,unknown-argument", "False"]


# --- without keras-hub: run and plan say which extra to install ---------------------------

@pytest.mark.slow
def test_run_without_keras_hub_names_the_extra_and_exits_2(tmp_path):
    write_sequences(tmp_path)
    (tmp_path / "p.yaml").write_text(HUB_PIPELINE)
    code = BLOCK_HUB + ("from kerapipe.cli import main\n"
                        "main(['run', 'p.yaml', '--output', 'runs'])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "layer 'TokenAndPositionEmbedding' comes from keras-hub" in done.stderr
    assert 'pip install "kerapipe[hub]"' in done.stderr and "Traceback" not in done.stderr


def test_compile_without_keras_hub_is_a_usage_error(tmp_path, monkeypatch):
    from kerapipe.errors import UsageError
    from kerapipe.pipeline import compile_pipeline

    write_sequences(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "keras_hub", None)
    with pytest.raises(UsageError, match=r'pip install "kerapipe\[hub\]"') as raised:
        compile_pipeline(HUB_PIPELINE)
    assert raised.value.exit_code == 2


def test_a_keras_hub_without_the_layer_says_which_version_has_it(monkeypatch):
    keras_hub = pytest.importorskip("keras_hub")
    from kerapipe.compiler.layer_classes import construct_layer
    from kerapipe.errors import UsageError

    monkeypatch.delattr(keras_hub.layers, "SinePositionEncoding")
    with pytest.raises(UsageError, match=r"not in the installed keras-hub .* "
                       r'pip install --upgrade "keras-hub>=0\.'):
        construct_layer("SinePositionEncoding", {})


# --- with keras-hub: built, trained, saved and loaded -------------------------------------

@pytest.fixture(scope="module")
def hub_run(tmp_path_factory):
    pytest.importorskip("keras_hub")
    from kerapipe.pipeline import compile_pipeline

    folder = tmp_path_factory.mktemp("hub")
    write_sequences(folder)
    previous = os.getcwd()
    os.chdir(folder)
    try:
        compiled = compile_pipeline(HUB_PIPELINE)
        result = compiled.run(output_dir=str(folder / "runs"))
    finally:
        os.chdir(previous)
    return compiled, Path(result.run_dir).resolve() if Path(result.run_dir).is_absolute() \
        else folder / result.run_dir


def test_a_transformer_of_hub_layers_trains_a_step(hub_run):
    import keras_hub

    compiled, _ = hub_run
    kinds = [type(layer) for layer in compiled.model.layers[1:3]]
    assert kinds == [keras_hub.layers.TokenAndPositionEmbedding,
                     keras_hub.layers.TransformerEncoder]
    assert int(compiled.model.optimizer.iterations) == 1


def test_a_hub_runs_model_keras_reopens_for_predict(hub_run):
    from kerapipe.saved_run import open_run

    compiled, run_dir = hub_run
    saved = open_run(run_dir)
    tokens = np.random.default_rng(1).integers(1, 40, (3, 12)).astype("int32")
    np.testing.assert_allclose(saved.model.predict(tokens, verbose=0),
                               compiled.inference_model.predict(tokens, verbose=0), rtol=1e-5,
                               atol=1e-6)


def test_reopening_a_hub_run_without_keras_hub_names_the_extra(hub_run, monkeypatch):
    from kerapipe.errors import UsageError
    from kerapipe.saved_run import open_run

    _, run_dir = hub_run
    monkeypatch.setitem(sys.modules, "keras_hub", None)
    with pytest.raises(UsageError, match=r'pip install "kerapipe\[hub\]"'):
        open_run(run_dir)


@pytest.mark.slow
def test_a_hub_runs_model_keras_loads_with_plain_keras_in_safe_mode(hub_run, in_plain_keras):
    """Keras imports keras_hub itself for a keras_hub class in the config (safe mode)."""
    _, run_dir = hub_run
    line = in_plain_keras(run_dir / "model.keras", "print(model.output_shape, "
                          "any(m.startswith('kerapipe') for m in sys.modules))")
    assert line.split()[-1] == "False"
