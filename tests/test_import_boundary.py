"""The spec side never imports TensorFlow or Keras (click's tests/test_imports.py style)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

_PROBE = """
import json, sys
from kerapipe.cli import main
try:
    main(["validate", "--format", "json", {paths}])
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "jax", "torch"))
print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""


def _run_probe(code: str, *paths: str) -> dict:
    source = code.format(paths=", ".join(repr(p) for p in paths))
    done = subprocess.run([sys.executable, "-c", source], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.slow
def test_validate_imports_neither_tensorflow_nor_keras():
    outcome = _run_probe(_PROBE, "pipelines")
    assert outcome == {"code": 0, "heavy": []}


@pytest.mark.slow
def test_validate_imports_none_of_what_only_writing_files_needs():
    # tempfile and importlib.resources bring random, shutil, bz2, lzma, zipfile: ~25 ms of
    # every `kerapipe validate`, which reads the pipeline files and never writes one;
    # difflib and traceback serve only an unknown name and a --debug traceback.
    probe = _PROBE.replace('("tensorflow", "keras", "jax", "torch")',
                           '("tempfile", "importlib.resources", "zipfile", "shutil", '
                           '"difflib", "traceback")')
    assert probe != _PROBE
    assert _run_probe(probe.replace('m.split(".")[0] in', "m in"), "pipelines") == {
        "code": 0, "heavy": []}


@pytest.mark.slow
def test_validate_loads_nothing_outside_the_standard_library_but_pyyaml_and_click():
    # The light install (README "In CI and editors") has kerapipe, PyYAML and click only:
    # numpy, matplotlib or any other package that `validate` (or a command module it
    # loads) imports would be missing there. What Python's start-up loaded is left out.
    probe = _PROBE.replace(
        "import json, sys\n", "import json, sys\nstarted = set(sys.modules)\n").replace(
        'heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", '
        '"jax", "torch"))',
        "heavy = sorted(m for m in {{m.split('.')[0] for m in set(sys.modules) - started}} "
        "- set(sys.stdlib_module_names) - {{'kerapipe', 'yaml', '_yaml', 'click'}} "
        "if not m.startswith(('cython_runtime', '_cython_')))")  # PyYAML's C (Cython) loader
    assert "started" in probe and "stdlib_module_names" in probe
    assert _run_probe(probe, "pipelines") == {"code": 0, "heavy": []}


@pytest.mark.slow
def test_validate_works_when_tensorflow_cannot_be_imported():
    # A None entry in sys.modules makes any `import tensorflow` raise ImportError.
    blocked = "import sys\nsys.modules['tensorflow'] = None\nsys.modules['keras'] = None\n" + _PROBE
    outcome = _run_probe(blocked, "pipelines")
    assert outcome["code"] == 0


@pytest.mark.slow
def test_import_kerapipe_stays_light():
    code = ("import sys, kerapipe, kerapipe.spec, kerapipe.cli\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'pydantic')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"


# TensorFlow's C++ start-up log: absl's pre-initialisation notice, glog-style lines
# (`I0000 00:00:...`, `W0000`, `E0000`), CUDA probes and the CPU-feature/oneDNN notices.
_TENSORFLOW_NOISE = re.compile(r"absl::InitializeLog|^[IWEF]\d{4} \d\d:\d\d:|cuda|cuInit|"
                               r"oneDNN|cpu_feature_guard|TF_ENABLE_ONEDNN_OPTS", re.I | re.M)


@pytest.mark.slow
def test_run_prints_no_tensorflow_start_up_log(tmp_path):
    (tmp_path / "p.yaml").write_text(
        "kerapipe: 1\nseed: 1\ndata:\n  source: {sample: mnist}\n  preprocess: [rescale: 1/255]\n"
        "  batch_size: 500\nmodel:\n  layers: [Flatten, {Dense: {units: 10}}]\n"
        "train: {epochs: 1}\n")
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_CPP_MIN_LOG_LEVEL", "KERAPIPE_DEBUG")}
    done = subprocess.run([sys.executable, "-m", "kerapipe", "run", "p.yaml", "--output", "runs"],
                          cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not _TENSORFLOW_NOISE.search(done.stdout + done.stderr), done.stdout + done.stderr


def test_the_noise_pattern_matches_tensorflow_start_up_lines():
    for line in ("WARNING: All log messages before absl::InitializeLog() is called are written "
                 "to STDERR",
                 "I0000 00:00:1796131333.630482   30743 cudart_stub.cc:31] Could not find cuda "
                 "drivers on your machine, GPU will not be used.",
                 "E0000 00:00:1796131337.416427   30743 cuda_platform.cc:52] failed call to "
                 "cuInit"):
        assert _TENSORFLOW_NOISE.search("Epoch 1/1\n" + line + "\n")
    assert not _TENSORFLOW_NOISE.search("Epoch 1/1\nrun folder: runs/pipeline-20260101\n")
