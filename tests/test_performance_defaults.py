"""The performance knobs: cache policy, steps_per_execution, jit_compile, determinism."""

import subprocess
import sys

import pytest

from kerapipe import compile_pipeline
from kerapipe.compiler import datasets

TINY = {"kerapipe": 1, "seed": 3,
        "data": {"source": {"sample": "mnist"}, "preprocess": [{"rescale": "1/255"}]},
        "model": {"layers": ["Flatten", {"Dense": {"units": 10}}]}}


def with_keys(**sections):
    spec = {k: dict(v) if isinstance(v, dict) else v for k, v in TINY.items()}
    for section, values in sections.items():
        spec[section] = {**spec.get(section, {}), **values}
    return spec


def test_auto_cache_keeps_what_fits_the_memory_budget(monkeypatch):
    compiled = compile_pipeline(TINY)
    size = datasets.cached_bytes(compiled.data.train, compiled.preprocessing)
    assert datasets.caches_rows(compiled.preprocessing)  # 3 KiB examples: one by one
    assert size == 4000 * (28 * 28 * 4 + datasets._ELEMENT_OVERHEAD)
    assert datasets.use_cache(compiled.spec, compiled.data.train, compiled.preprocessing)
    monkeypatch.setattr(datasets, "memory_budget", lambda: size - 1)
    assert not datasets.use_cache(compiled.spec, compiled.data.train, compiled.preprocessing)


@pytest.mark.parametrize("cache, expected", [(True, True), (False, False)],
                         ids=["forced-on", "forced-off"])
def test_explicit_cache_setting_wins_over_the_budget(monkeypatch, cache, expected):
    monkeypatch.setattr(datasets, "memory_budget", lambda: 0)
    compiled = compile_pipeline(with_keys(data={"cache": cache}))
    assert datasets.use_cache(compiled.spec, compiled.data.train,
                              compiled.preprocessing) is expected


def test_uncached_pipeline_yields_the_same_examples_as_the_cached_one():
    import numpy as np

    cached = compile_pipeline(with_keys(data={"cache": True}))
    uncached = compile_pipeline(with_keys(data={"cache": False}))
    first = np.concatenate([x for x, _ in cached.datasets.test])
    second = np.concatenate([x for x, _ in uncached.datasets.test])
    np.testing.assert_allclose(first, second)


def test_steps_per_execution_and_jit_compile_reach_keras():
    compiled = compile_pipeline(with_keys(train={"steps_per_execution": 8,
                                                 "jit_compile": False}))
    assert compiled.model.steps_per_execution == 8
    assert compiled.model.jit_compile is False


@pytest.mark.slow
@pytest.mark.parametrize("deterministic", [True, False])
def test_op_determinism_follows_the_spec(deterministic):
    code = (
        "from kerapipe import compile_pipeline\n"
        "from tensorflow.python.framework.config import is_op_determinism_enabled\n"
        f"spec = {TINY!r}\n"
        f"spec['train'] = {{'deterministic': {deterministic}}}\n"
        "compile_pipeline(spec)\n"
        "print(is_op_determinism_enabled())\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip().splitlines()[-1] == str(deterministic)


def test_uncached_image_folder_shuffles_files_fully_every_epoch(tmp_path):
    import numpy as np
    import tensorflow as tf

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(8):
            value = (1 if label == "a" else 100) + i  # every image has its own grey level
            pixels = tf.fill((4, 4, 1), tf.constant(value, tf.uint8))
            tf.io.write_file(str(tmp_path / label / f"{i}.png"), tf.io.encode_png(pixels))
    compiled = compile_pipeline({
        "kerapipe": 1, "seed": 5,
        "data": {"source": {"images": {"dir": str(tmp_path), "image_size": [4, 4],
                                       "color_mode": "grayscale"}},
                 "split": {"validation": 0, "test": 0}, "cache": False, "batch_size": 4},
        "model": {"layers": ["Flatten", {"Dense": {"units": 2}}]}})
    epochs = [[int(x[i, 0, 0, 0]) for x, _ in compiled.datasets.train for i in range(len(x))]
              for _ in range(2)]
    assert sorted(epochs[0]) == sorted(epochs[1]) == sorted(list(range(1, 9)) +
                                                            list(range(100, 108)))
    assert epochs[0] != epochs[1]  # reshuffled each epoch
    assert np.abs(np.diff(epochs[0][:8])).max() > 50  # not label-grouped: both classes early


@pytest.mark.slow
def test_the_in_memory_cache_costs_about_its_payload_not_per_row_overhead(tmp_path):
    # tf.data keeps a few hundred bytes per cached element: caching 200,000 rows of 4
    # floats one by one would take ~80 MB for a 3 MB payload, far beyond cached_bytes().
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "rows.npz", x=rng.normal(size=(200_000, 4)).astype("float32"),
             y=rng.integers(0, 2, 200_000))
    spec = {"kerapipe": 1, "seed": 1,
            "data": {"source": {"npz": str(tmp_path / "rows.npz")}, "cache": True,
                     "split": {"validation": 0.05, "test": 0.9}},
            "model": {"layers": [{"Dense": {"units": 2}}]}}
    code = (
        "from kerapipe import compile_pipeline\n"
        "from kerapipe.compiler.datasets import cached_bytes\n"
        "def rss():\n"
        "    line = [l for l in open('/proc/self/status') if l.startswith('VmRSS')][0]\n"
        "    return int(line.split()[1]) * 1024\n"
        f"compiled = compile_pipeline({spec!r})\n"
        "test = compiled.datasets.test\n"
        "for _ in test.take(1): pass\n"
        "before = rss()\n"
        "for _ in range(2):\n"
        "    for _ in test: pass\n"
        "print(rss() - before, cached_bytes(compiled.data.test, compiled.preprocessing))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    grown, budgeted = map(int, done.stdout.split()[-2:])
    payload = 180_000 * 4 * 4
    assert payload <= budgeted < 1.1 * payload  # small rows: cached in batches
    assert grown < 3 * payload + (8 << 20), (grown, payload)


def test_file_permutation_is_full_new_every_epoch_and_reproducible_from_the_seed():
    from kerapipe.compiler.datasets import permutation

    def epochs(seed, count=3):
        ds = permutation(50, seed)
        return [[int(i) for i in ds] for _ in range(count)]

    first, again = epochs(7), epochs(7)
    assert first == again  # the same seed, the same orders, epoch by epoch
    assert all(sorted(order) == list(range(50)) for order in first)
    assert len({tuple(order) for order in first}) == 3  # a new order every epoch
    assert epochs(8)[0] != first[0]
