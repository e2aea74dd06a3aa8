"""kerapipe runs on Keras's TensorFlow backend only: another KERAS_BACKEND is refused at
once with what to do (exit 2), not with a failure deep inside a layer or an import."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_another_keras_backend_is_refused_before_keras_imports_it(backend, tmp_path):
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run([sys.executable, "-m", "kerapipe", "run",
                           str(ROOT / "pipelines" / "iris.yaml"), "-o", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"Keras is set to '{backend}' (KERAS_BACKEND)" in done.stderr
    assert "Unset KERAS_BACKEND or set it to tensorflow" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was written


@pytest.mark.slow
def test_validate_needs_no_backend_at_all(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, "-m", "kerapipe", "validate",
                           str(ROOT / "pipelines" / "iris.yaml")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
