"""A layer argument that names a file (``vocabulary``) is read from the pipeline's folder.

The spec side checks that the path stays inside the pipeline's folder; Keras itself opens
a relative path from the current directory. So the compile side hands Keras the path
resolved against the pipeline's folder: otherwise ``vocabulary: .ssh/id_rsa`` in
``~/Downloads/evil/p.yaml``, planned from ``~``, would pass the check and read
``~/.ssh/id_rsa`` (issue 10).
"""

from __future__ import annotations

import numpy as np

PIPELINE = """\
kerapipe: 1
name: vocab
data:
  source: {npz: data.npz}
  split: {validation: 0, test: 0.2}
model:
  layers:
    - IntegerLookup: {vocabulary: v.txt, output_mode: multi_hot}
    - Dense: {units: 2}
train: {epochs: 1}
"""


def test_a_relative_vocabulary_is_read_from_the_pipeline_folder_not_the_cwd(tmp_path,
                                                                           monkeypatch):
    from kerapipe import compile_pipeline

    folder = tmp_path / "pipe"
    folder.mkdir()
    (folder / "p.yaml").write_text(PIPELINE)
    (folder / "v.txt").write_text("1\n2\n3\n")
    (tmp_path / "v.txt").write_text("7\n8\n")  # what a cwd-relative read would take
    x = np.tile(np.array([[1], [2], [3]], dtype="int64"), (10, 1))
    np.savez(folder / "data.npz", x=x, y=(x[:, 0] % 2).astype("int64"))
    monkeypatch.chdir(tmp_path)
    compiled = compile_pipeline("pipe/p.yaml")
    lookup = next(layer for layer in compiled.model.layers if type(layer).__name__ ==
                  "IntegerLookup")
    assert [int(v) for v in lookup.get_vocabulary()[1:]] == [1, 2, 3]


def test_the_compile_side_refuses_a_vocabulary_outside_the_folder_on_its_own(tmp_path):
    """Defence in depth: a spec built past validation still cannot read outside."""
    import pytest

    from kerapipe.compiler.build import build_layer
    from kerapipe.errors import SpecError
    from kerapipe.spec.model import LayerSpec

    (tmp_path / "secret.txt").write_text("1\n")
    (tmp_path / "pipe").mkdir()
    spec = LayerSpec("IntegerLookup", {"vocabulary": "../secret.txt"})
    with pytest.raises(SpecError) as caught:
        build_layer(spec, path=("model", "layers", 0, "IntegerLookup"),
                    base_dir=str(tmp_path / "pipe"))
    assert [(i.code, i.key_path) for i in caught.value.issues] == [
        ("outside-path", "model.layers[0].IntegerLookup.vocabulary")]
