"""A learning-rate schedule's step counts written in epochs (`decay_steps: {epochs: 10}`),
converted with the run's steps per epoch (issue 14, item 5)."""

from __future__ import annotations

import math

import pytest

from kerapipe.spec.validate import validate_text

PIPELINE = """\
kerapipe: 1
seed: 1
data:
  source: {npz: data.npz}
  split: {validation: 0.2, test: 0.2}
  batch_size: 8
model:
  layers: [{Dense: {units: 3}}]
optimizer:
  name: adam
  learning_rate: %s
train: {epochs: 1}
"""
COSINE = ("{CosineDecay: {initial_learning_rate: 0.0, decay_steps: {epochs: 3}, "
          "warmup_target: 0.01, warmup_steps: {epochs: 0.5}}}")


def test_counts_in_epochs_become_the_runs_steps(tmp_path, npz_workspace):
    from kerapipe import compile_pipeline

    pipeline = npz_workspace(tmp_path, text=PIPELINE % COSINE)
    compiled = compile_pipeline(str(pipeline))
    steps = math.ceil(len(compiled.data.train) / 8)  # 18 training examples: 3 batches
    assert steps == 3
    schedule = compiled.model.optimizer._learning_rate  # the schedule Keras was given
    assert (schedule.decay_steps, schedule.warmup_steps) == (3 * steps, round(0.5 * steps))
    assert float(schedule(round(0.5 * steps))) == pytest.approx(0.01)  # warm-up done


def test_boundaries_in_epochs_and_a_wrong_count_point_at_their_line():
    piecewise = ("{PiecewiseConstantDecay: {boundaries: [{epochs: 1}, 40], "
                 "values: [0.1, 0.01, 0.001]}}")
    assert validate_text(PIPELINE % piecewise, "p.yaml").ok()
    from kerapipe.spec.keras_objects import ScheduleSpec

    spec = validate_text(PIPELINE % piecewise, "p.yaml").spec
    assert isinstance(spec.optimizer.learning_rate, ScheduleSpec)
    assert spec.optimizer.learning_rate.in_steps(7)["boundaries"] == [7, 40]
    bad = COSINE.replace("{epochs: 3}", "{epochs: -1}").replace("warmup_target: 0.01",
                                                                   "warmup_target: {epochs: 1}")
    messages = [i.format() for i in validate_text(PIPELINE % bad, "p.yaml").errors]
    assert messages[0].startswith("p.yaml:11:74: error[wrong-type]: optimizer.learning_rate."
                                  "CosineDecay.decay_steps: a step count in epochs is")
    assert messages[1].startswith("p.yaml:11:103: error[not-applicable]: optimizer."
                                  "learning_rate.CosineDecay.warmup_target: `{epochs: N}` "
                                  "stands for a count of optimizer steps"), messages
