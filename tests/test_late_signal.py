"""A signal that arrives after the last epoch (during evaluation) still stops cleanly."""

import json
import os
import signal

import pytest

from kerapipe import compile_pipeline
from kerapipe.errors import EXIT_SIGINT, Interrupted
from kerapipe.runner import resume_run

pytestmark = pytest.mark.slow  # a real SIGINT during evaluation

PIPELINE = """\
kerapipe: 1
seed: 3
data:
  source: {sample: mnist}
  preprocess: [rescale: 1/255]
  batch_size: 500
model:
  layers: [Flatten, {Dense: {units: 10}}]
train: {epochs: 1}
"""


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_sigint_during_evaluation_marks_the_run_interrupted_and_resume_finishes_it(
        tmp_path, monkeypatch):
    path = tmp_path / "late.yaml"
    path.write_text(PIPELINE)
    compiled = compile_pipeline(path)
    real_evaluate = compiled.evaluate

    def evaluate_then_get_interrupted():
        metrics = real_evaluate()
        os.kill(os.getpid(), signal.SIGINT)  # handled by kerapipe's handler, not Python's
        return metrics

    monkeypatch.setattr(compiled, "evaluate", evaluate_then_get_interrupted)
    with pytest.raises(Interrupted) as stopped:
        compiled.run(output_dir=str(tmp_path / "runs"), verbose=0)
    assert stopped.value.exit_code == EXIT_SIGINT
    [run_dir] = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    assert "interrupted by SIGINT" in json.loads((run_dir / "metrics.json").read_text())["stopped"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler removed

    result = resume_run(run_dir, verbose=0)  # the epoch is done: only evaluation reruns
    assert result.epochs_run == 1
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
    assert (run_dir / "model.keras").exists()
