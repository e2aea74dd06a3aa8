"""Bad pipeline files: every one is reported with the right code, key path and position.

Covers, through ``validate_text`` (and ``load_document`` for scalar typing):
- a table of bad inputs, each the valid ``BASE`` file with one visible change: YAML
  syntax, strict types, unknown names with did-you-mean, cross-key semantics, hostile
  input (tags, alias bombs, deep nesting, huge files, duplicate keys, refused layers);
- warnings, which keep the spec usable;
- the golden ``Issue.format()`` text of one case per code, so wording changes are deliberate;
- time and memory bounds for hostile input, and that all problems are reported at once.
"""

from __future__ import annotations

import time
import tracemalloc

import pytest

from kerapipe.spec.codes import ISSUE_CODES
from kerapipe.spec.validate import validate_file, validate_text
from kerapipe.spec.yaml_loader import LoadProblem, load_document

BASE = "\n".join((
    "kerapipe: 1",                                                   # 1
    "name: mnist-cnn",                                               # 2
    "seed: 42",                                                      # 3
    "data:",                                                         # 4
    "  source: {sample: mnist}",                                     # 5
    "  split: {validation: 0.1, test: 0.1, stratify: true}",         # 6
    "  preprocess:",                                                 # 7
    "    - rescale: 1/255",                                          # 8
    "    - reshape: [28, 28, 1]",                                    # 9
    "  batch_size: 64",                                              # 10
    "  shuffle: 5000",                                               # 11
    "model:",                                                        # 12
    "  layers:",                                                     # 13
    "    - Conv2D: {filters: 32, kernel_size: 3, activation: relu}",  # 14
    "    - MaxPooling2D: {pool_size: 2}",                            # 15
    "    - Flatten: {}",                                             # 16
    "    - Dense: {units: 10}",                                      # 17
    "loss: sparse_categorical_crossentropy",                         # 18
    "optimizer: {name: adam, learning_rate: 0.001}",                 # 19
    "metrics: [accuracy]",                                           # 20
    "train:",                                                        # 21
    "  epochs: 15",                                                  # 22
    "  early_stopping: {monitor: val_loss, patience: 3}",            # 23
    "output:",                                                       # 24
    "  dir: runs",                                                   # 25
)) + "\n"

# Billion laughs: 10 levels of 10 aliases each would expand to 10**10 values.
ALIAS_BOMB = "kerapipe: 1\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10))
DEEP_BRACKETS = "[" * 100_000  # 100 kB of '['
OVER_1MB = BASE + "#" * (1_000_001 - len(BASE))  # one byte over the limit, as a comment


def change(old: str, new: str, *more: str) -> str:
    """``BASE`` with ``old`` replaced by ``new`` (more old/new pairs may follow)."""
    text, pairs = BASE, (old, new) + more
    for before, after in zip(pairs[::2], pairs[1::2]):
        assert text.count(before) == 1, f"{before!r} must occur exactly once in BASE"
        text = text.replace(before, after)
    return text


def bad(text, code, path, line, column=None, hint=None, *, id, marks=()):
    return pytest.param(text, code, path, line, column, hint, id=id, marks=marks)


SOFTMAX_AND_LOGITS = change("Dense: {units: 10}", "Dense: {units: 10, activation: softmax}",
                            "loss: sparse_categorical_crossentropy",
                            "loss: {name: sparse_categorical_crossentropy, from_logits: true}")

BAD_INPUTS = [
    # --- YAML syntax ---------------------------------------------------------------
    bad(change("epochs: 15", "epochs: 15: 3"), "yaml-syntax", "<file>", 22, 13, id="colon-in-value"),
    bad(change("  epochs: 15", "\tepochs: 15"), "bad-indentation", "<file>", 22, 1,
        "spaces only", id="tab-indent"),
    bad(change("epochs: 15", "epochs: *nope"), "yaml-syntax", "<file>", 22, 11,
        "`*nope` refers to an anchor `&nope`", id="undefined-alias"),
    bad(change("epochs: 15", "epochs: [15"), "yaml-syntax", "<file>", 22, 11, "never closed",
        id="unclosed-bracket"),
    bad(change("model:\n  layers:", "model:\nlayers:"), "bad-indentation", "layers", 13, 1,
        "Indent it under `model:`", id="under-indented-layers"),
    bad(change("  shuffle: 5000", "  epochs: 3"), "unknown-key", "data.epochs", 11, 3,
        "`epochs` belongs in `train:` (train.epochs)", id="key-of-another-section"),
    bad("", "empty-file", "<file>", 1, 1, id="empty-file"),
    bad("- kerapipe: 1\n", "wrong-type", "<file>", 1, 1, "Received: list", id="root-is-a-list"),
    bad(change("kerapipe: 1", "? [a]\n: 1\nkerapipe: 1"), "bad-key", "<file>", 1, 3, id="list-as-key"),
    # --- strict types ----------------------------------------------------------------
    bad(change("epochs: 15", "epochs: yes"), "wrong-type", "train.epochs", 22, 11, id="epochs-yes"),
    bad(change("epochs: 15", 'epochs: "3"'), "wrong-type", "train.epochs", 22, 11,
        "Write the number without quotes.", id="epochs-quoted"),
    bad(change("epochs: 15", "epochs: 1e3"), "wrong-type", "train.epochs", 22, 11, id="epochs-float"),
    bad(change("batch_size: 64", "batch_size: 1.5"), "wrong-type", "data.batch_size", 10, 15,
        id="batch-size-float"),
    bad(change("stratify: true", "stratify: on"), "wrong-type", "data.split.stratify", 6, 49,
        "Write true or false", id="stratify-on"),
    bad(change("seed: 42", "seed: 42.0"), "wrong-type", "seed", 3, 7, id="seed-float"),
    bad(change("name: mnist-cnn", "name: 123"), "wrong-type", "name", 2, 7, id="name-int"),
    bad(change("metrics: [accuracy]", "metrics: accuracy"), "wrong-type", "metrics", 20, 10,
        id="metrics-not-a-list"),
    bad(change("learning_rate: 0.001", "learning_rate: fast"), "wrong-type",
        "optimizer.learning_rate", 19, 40, id="learning-rate-word"),
    bad(change("rescale: 1/255", "rescale: 1/0"), "wrong-type", "data.preprocess[0].rescale.scale",
        8, 16, "the fraction divides by zero.", id="rescale-divides-by-zero"),
    bad(change("Flatten: {}", "Flatten: 3"), "wrong-type", "model.layers[2].Flatten", 16, 16,
        id="layer-args-not-a-mapping"),
    bad(change("Flatten: {}", "Flatten: {}\n      Dense: {}"), "wrong-type", "model.layers[2]",
        16, 7, id="layer-with-two-names"),
    bad(change("kerapipe: 1", "kerapipe: 2"), "unknown-value", "kerapipe", 1, 11, id="version-2"),
    # --- unknown names, with did-you-mean --------------------------------------------
    bad(change("shuffle: 5000", "shufle: 5000"), "unknown-key", "data.shufle", 11, 3,
        "Did you mean 'shuffle'?", id="key-typo"),
    bad(change("{sample: mnist}", "{sampel: mnist}"), "unknown-key", "data.source.sampel", 5, 12,
        "Did you mean 'sample'?", id="source-kind-typo"),
    bad(change("Conv2D:", "Conv2d:"), "unknown-layer", "model.layers[0].Conv2d", 14, 7,
        "Did you mean 'Conv2D'?", id="layer-wrong-case"),
    bad(change("- Flatten: {}", "- Flaten"), "unknown-layer", "model.layers[2].Flaten", 16, 7,
        "Did you mean 'Flatten'?", id="bare-layer-typo"),
    bad(change("Flatten: {}", "Bidirectional: {layer: {LSTMM: {units: 3}}}"), "unknown-layer",
        "model.layers[2].Bidirectional.layer.LSTMM", 16, 31, "Did you mean 'LSTM'?",
        id="nested-layer-typo"),
    bad(change("Dense: {units: 10}", "Dense: {unit: 10}"), "unknown-argument",
        "model.layers[3].Dense.unit", 17, 15, "Did you mean 'units'?", id="layer-argument-typo"),
    bad(change("loss: sparse_categorical_crossentropy", "loss: sparse_categorical_crossentropi"),
        "unknown-loss", "loss", 18, 7, "Did you mean 'sparse_categorical_crossentropy'?",
        id="loss-typo"),
    bad(change("loss: sparse_categorical_crossentropy",
               "loss: {name: sparse_categorical_crossentropy, from_logit: true}"),
        "unknown-argument", "loss.from_logit", 18, 47, "Did you mean 'from_logits'?",
        id="loss-argument-typo"),
    bad(change("name: adam,", "name: adamm,"), "unknown-optimizer", "optimizer.name", 19, 19,
        "Did you mean 'adam'?", id="optimizer-typo"),
    bad(change("name: adam,", "name: adam, betta_1: 0.9,"), "unknown-argument",
        "optimizer.betta_1", 19, 25, "Did you mean 'beta_1'?", id="optimizer-argument-typo"),
    bad(change("[accuracy]", "[accuracy, precison]"), "unknown-metric", "metrics[1]", 20, 21,
        "Did you mean 'precision'?", id="metric-typo"),
    bad(change("activation: relu", "activation: rellu"), "unknown-activation",
        "model.layers[0].Conv2D.activation", 14, 57, "Did you mean 'relu'?", id="activation-typo"),
    # typed Keras arguments (the catalogue's args; spec/argument_values.py)
    bad(change("Dense: {units: 10}", "Dense: {units: ten}"), "wrong-type",
        "model.layers[3].Dense.units", 17, 22, "Dense.units takes an integer >= 1",
        id="units-text"),
    bad(change("kernel_size: 3,", "kernel_size: 3, padding: smae,"), "unknown-value",
        "model.layers[0].Conv2D.padding", 14, 54, "Did you mean 'same'?", id="padding-typo"),
    bad(change("Flatten: {}", "Dropout: {rate: 1.5}"), "out-of-range",
        "model.layers[2].Dropout.rate", 16, 23, "must be at most 1", id="dropout-rate-above-one"),
    bad(change("kernel_size: 3,", "kernel_size: [3],"), "out-of-range",
        "model.layers[0].Conv2D.kernel_size", 14, 42, "an integer >= 1 or a list of 2 integers",
        id="kernel-size-one-number-on-2d"),
    bad(change("learning_rate: 0.001", "learning_rate: {ExponentialDecai: {initial_learning_rate:"
               " 0.1, decay_steps: 10, decay_rate: 0.9}}"), "unknown-schedule",
        "optimizer.learning_rate.ExponentialDecai", 19, 41, "Did you mean 'ExponentialDecay'?",
        id="schedule-typo"),
    bad(change("- rescale:", "- rescal:"), "unknown-step", "data.preprocess[0].rescal", 8, 7,
        "Did you mean 'rescale'?", id="step-typo"),
    bad(change("- rescale: 1/255", "- RandomFlipp: {mode: horizontal}"), "unknown-step",
        "data.preprocess[0].RandomFlipp", 8, 7, "Did you mean 'RandomFlip'?",
        id="augmentation-layer-typo"),
    bad(change("monitor: val_loss", "monitor: val_loss, mode: maximum"), "unknown-value",
        "train.early_stopping.mode", 23, 45, "Did you mean 'max'?", id="mode-typo"),
    bad(change("{sample: mnist}", "{sample: mnits}"), "unknown-value", "data.source.sample", 5, 20,
        "Did you mean 'mnist'?", id="sample-name-typo"),
    # --- semantics -------------------------------------------------------------------
    bad(change("seed: 42", "seed: -1"), "out-of-range", "seed", 3, 7, "must be at least 0",
        id="seed-negative"),
    bad(change("epochs: 15", "epochs: 0"), "out-of-range", "train.epochs", 22, 11, id="epochs-zero"),
    bad(change("validation: 0.1", "validation: 1.0"), "out-of-range", "data.split.validation",
        6, 23, "must be less than 1", id="validation-one"),
    bad(change("learning_rate: 0.001", "learning_rate: 0"), "out-of-range",
        "optimizer.learning_rate", 19, 40, "must be greater than 0", id="learning-rate-zero"),
    bad(change("- rescale: 1/255", "- resize: [1, 2, 3]"), "out-of-range",
        "data.preprocess[0].resize.size", 8, 15, "at most 2 item(s)", id="resize-three-sizes"),
    bad(change("validation: 0.1, test: 0.1", "validation: 0.5, test: 0.5"), "no-training-data",
        "data.split", 6, 10, id="split-leaves-no-training-data"),
    bad(change("Dense: {units: 10}", "Dense: {}"), "missing-argument", "model.layers[3].Dense",
        17, 7, "needs the argument 'units'", id="missing-layer-argument"),
    bad(change("kerapipe: 1\n", ""), "missing-key", "kerapipe", 1, 1, id="missing-version"),
    bad(change("monitor: val_loss", "monitor: val_acc"), "unknown-monitor",
        "train.early_stopping.monitor", 23, 29, "Did you mean 'val_accuracy'?",
        id="monitor-val-acc"),
    bad(change("validation: 0.1,", "validation: 0,"), "unknown-monitor",
        "train.early_stopping.monitor", 23, 29, "There is no validation split",
        id="monitor-val-loss-without-validation"),
    bad(SOFTMAX_AND_LOGITS, "logits-conflict", "loss.from_logits", 18, 60,
        id="softmax-with-from-logits"),
    bad(change("Dense: {units: 10}", "Dense: {units: 5}"), "class-count-mismatch",
        "model.layers[3].Dense.units", 17, 22, "Set units: 10.", id="units-vs-mnist"),
    bad(change("{sample: mnist}", "{keras: cifar100}"), "class-count-mismatch",
        "model.layers[3].Dense.units", 17, 22, "Set units: 100.", id="units-vs-cifar100"),
    bad(change("reshape: [28, 28, 1]", "reshape: [28, 28, 2]"), "reshape-size",
        "data.preprocess[1].reshape.target_shape", 9, 16, "product is 784", id="reshape-wrong-size"),
    bad(change("reshape: [28, 28, 1]", "reshape: [-1, -1, 1]"), "reshape-size",
        "data.preprocess[1].reshape.target_shape", 9, 16, "at most one -1", id="reshape-two-minus-1"),
    bad(change("- reshape: [28, 28, 1]", "- reshape: [28, 28, 1]\n    - one_hot: {}"),
        "loss-label-mismatch", "loss", 19, 7, id="one-hot-with-sparse-loss"),
    bad(change("loss: sparse_categorical_crossentropy", "loss: categorical_crossentropy"),
        "loss-label-mismatch", "loss", 18, 7, id="categorical-loss-without-one-hot"),
    bad(change("{sample: mnist}", "{sample: mnist, keras: mnist}"), "one-of", "data.source", 5, 11,
        "found sample, keras.", id="two-sources"),
    bad(change("{sample: mnist}", "{}"), "one-of", "data.source", 5, 11, "found none.",
        id="no-source"),
    bad(change("{sample: mnist}", "{keras: {name: mnist, num_words: 100}}"), "not-applicable",
        "data.source.keras.num_words", 5, 44, id="num-words-on-mnist"),
    # --- hostile input ---------------------------------------------------------------
    bad(change("name: mnist-cnn", 'name: !!python/object/apply:os.system ["echo hi"]'),
        "forbidden-tag", "<file>", 2, 7, "python/object/apply:os.system", id="python-object-tag"),
    bad(change("name: mnist-cnn", "name: !!binary aGk="), "forbidden-tag", "<file>", 2, 7,
        id="binary-tag"),
    bad(change("name: mnist-cnn", "name: !custom hi"), "forbidden-tag", "<file>", 2, 7,
        "tag='!custom'", id="custom-tag"),
    bad(ALIAS_BOMB, "alias-bomb", "<file>", 1, 1, id="billion-laughs"),
    bad(DEEP_BRACKETS, "too-deep", "<file>", 1, 65, id="100kB-of-brackets"),
    bad(OVER_1MB, "too-large", "<file>", 1, 1, id="over-1MB"),
    bad(change("seed: 42", "seed: 42\nseed: 7"), "duplicate-key", "seed", 4, 1,
        "first at line 3", id="duplicate-top-level-key"),
    bad(change("{units: 10}", "{units: 10, units: 5}"), "duplicate-key",
        "model.layers[3].Dense.units", 17, 26, id="duplicate-flow-key"),
    bad(change("Flatten: {}", "Lambda: {function: x}"), "refused-layer", "model.layers[2].Lambda",
        16, 7, "runs arbitrary Python code", id="lambda-layer"),
    bad(change("Flatten: {}", "TFSMLayer: {filepath: x}"), "refused-layer",
        "model.layers[2].TFSMLayer", 16, 7, id="tfsm-layer"),
]


@pytest.mark.parametrize("text, code, path, line, column, hint", BAD_INPUTS)
def test_bad_input_is_reported_with_code_path_and_position(text, code, path, line, column, hint):
    result = validate_text(text, "p.yaml")
    assert result.spec is None
    assert (code, path, line) in [(i.code, i.key_path, i.line) for i in result.issues]
    first = next(i for i in result.issues if i.code == code)
    assert (first.key_path, first.line, first.severity) == (path, line, "error")
    if column is not None:
        assert first.column == column
    if hint is not None:
        assert hint in first.message


WARNINGS = [
    pytest.param(change("patience: 3", "patience: 15"), "patience-ge-epochs",
                 "train.early_stopping.patience", 23, id="patience-equals-epochs"),
    pytest.param(change("learning_rate: 0.001", "learning_rate: 5"), "large-learning-rate",
                 "optimizer.learning_rate", 19, id="learning-rate-above-1"),
    pytest.param(change("- Dense: {units: 10}", "- Dense: {units: 10}\n    - Dropout: {rate: 0.5}"),
                 "dropout-last", "model.layers[4].Dropout", 18, id="dropout-last"),
    pytest.param(change("batch_size: 64", "batch_size: 6000"), "batch-larger-than-data",
                 "data.batch_size", 10, id="batch-larger-than-mnist-sample"),
    pytest.param(change("loss: sparse_categorical_crossentropy",
                        "loss: {name: sparse_categorical_crossentropy, from_logits: false}"),
                 "probabilities-expected", "loss.from_logits", 18, id="logits-but-from-logits-false"),
    pytest.param(change("{filters: 32,", "{input_shape: [28, 28, 1], filters: 32,"),
                 "input-shape-ignored", "model.layers[0].Conv2D.input_shape", 14,
                 id="input-shape-on-a-layer"),
]


@pytest.mark.parametrize("text, code, path, line", WARNINGS)
def test_warning_is_reported_and_spec_is_still_built(text, code, path, line):
    result = validate_text(text, "p.yaml")
    assert [(i.code, i.key_path, i.line, i.severity) for i in result.issues] == [
        (code, path, line, "warning")]
    assert result.spec is not None
    assert result.ok() and not result.ok(strict=True)


def test_base_file_is_valid():
    result = validate_text(BASE, "p.yaml")
    assert result.issues == [] and result.spec is not None


# A block of one parameterised layer, placed before model.layers.
BLOCK = ("model:\n  blocks:\n    conv_block:\n      params: {filters: int}\n      layers:\n"
         "        - Conv2D: {filters: $filters, kernel_size: 3, padding: same}\n  layers:")


def with_block(*pairs: str, block: str = BLOCK) -> str:
    """BASE with ``block`` before model.layers, then ``change``'s old/new ``pairs``."""
    return change("model:\n  layers:", block, *pairs)


_EARLY = "  early_stopping: {monitor: val_loss, patience: 3}"  # train.callbacks go below it

# One representative case per code: the whole `issue.format()` line is the contract.
GOLDEN = {
    "unknown-input": (change("    - Flatten: {}", "    - Flatten: {}\n      inputs: pool"),
                      "p.yaml:17:15: error[unknown-input]: model.layers[2].inputs: 'pool' names no "
                      "layer above this one and no input. Names in reach: features (a layer gets "
                      "a name with Keras's `name:` argument)."),
    "graph-cycle": (change("    - MaxPooling2D: {pool_size: 2}",
                           "    - MaxPooling2D: {pool_size: 2}\n      inputs: flat",
                           "    - Flatten: {}", "    - Flatten: {name: flat}"),
                    "p.yaml:16:15: error[graph-cycle]: model.layers[1].inputs: 'flat' is a layer "
                    "below this one (model.layers[2]); a layer takes only the outputs of model "
                    "inputs and layers above it, so the model has no cycle. Move the layer up, or "
                    "name another."),
    "duplicate-name": (change("    - Flatten: {}", "    - Flatten: {name: features}"),
                       "p.yaml:16:23: error[duplicate-name]: model.layers[2].Flatten.name: the "
                       "name 'features' is taken by the model's input; each layer of a model needs "
                       "a name of its own. Rename one, or remove `name:` (Keras then picks one)."),
    "merge-inputs": (change("    - Flatten: {}", "    - Flatten: {}\n    - Add: {}"),
                     "p.yaml:17:7: error[merge-inputs]: model.layers[3].Add: Add merges two or more "
                     "inputs but takes 1. Name them: `inputs: [a, b]` beside the layer."),
    "unknown-output": (change("  layers:", "  outputs: [logits]\n  layers:"),
                       "p.yaml:13:13: error[unknown-output]: model.outputs[0]: 'logits' names no "
                       "layer of the model. Name a layer (its `name:`) or a block use."),
    "ambiguous-input": (change("{sample: mnist}", "{npz: two.npz}", "  preprocess:\n    - rescale: "
                               "1/255\n    - reshape: [28, 28, 1]\n", "", "  layers:",
                               "  inputs: [image, meta]\n  layers:"),
                        "p.yaml:12:7: error[ambiguous-input]: model.layers[0]: the model has 2 "
                        "inputs (image, meta), so the first layer must say which it takes: add "
                        "`inputs: image` (or a list) beside it."),
    "bad-block": (with_block(block="model:\n  blocks:\n    Conv: {layers: [Flatten]}\n  layers:"),
                  "p.yaml:14:5: error[bad-block]: model.blocks.Conv: a block's name is snake_case "
                  "(lower-case letters, digits and `_`, starting with a letter), so it cannot be "
                  "taken for a Keras layer. Received: 'Conv'"),
    "block-cycle": (with_block(block="model:\n  blocks:\n    loop:\n      layers: [loop]\n"
                               "  layers:\n    - loop"),
                    "p.yaml:15:16: error[block-cycle]: model.blocks.loop.layers[0].loop: block "
                    "'loop' is used inside itself (loop -> loop); a block cannot hold itself. Write "
                    "its layers out, or use another block."),
    "block-inputs": (with_block("    - MaxPooling2D: {pool_size: 2}",
                                "    - MaxPooling2D: {pool_size: 2, name: pool}\n"
                                "    - conv_block: {filters: 8}\n      inputs: [pool, pool]"),
                     "p.yaml:22:15: error[block-inputs]: model.layers[2].inputs: block "
                     "'conv_block' takes 1 input(s) (input) but this use gives 2."),
    "unknown-parameter": (with_block("    - MaxPooling2D: {pool_size: 2}",
                                     "    - conv_block: {filters: 8, kernel: 3}"),
                          "p.yaml:20:32: error[unknown-parameter]: model.layers[1].conv_block."
                          "kernel: block 'conv_block' has no parameter 'kernel'. Its parameters: "
                          "filters."),
    "unused-parameter": (with_block("    - MaxPooling2D: {pool_size: 2}",
                                    "    - conv_block: {filters: 8, size: 3}",
                                    block=BLOCK.replace("{filters: int}", "{filters: int, size: int}")),
                         "p.yaml:15:30: error[unused-parameter]: model.blocks.conv_block.params."
                         "size: parameter 'size' of block 'conv_block' is declared but no layer of "
                         "the block uses it (as `$size`). Remove it, or use it."),
    "redundant-inputs": (change("    - Conv2D: {filters: 32, kernel_size: 3, activation: relu}",
                                "    - Conv2D: {filters: 32, kernel_size: 3, activation: relu}\n"
                                "      inputs: features"),
                         "p.yaml:15:15: warning[redundant-inputs]: model.layers[0].inputs: the "
                         "first layer takes the model's input ('features') anyway; remove "
                         "`inputs:`."),
    "unused-block": (with_block(), "p.yaml:14:5: warning[unused-block]: model.blocks.conv_block: "
                     "block 'conv_block' is defined but no layer list uses it. Use it in "
                     "model.layers, or remove it."),
    "unused-layer": (change("    - Dense: {units: 10}\n", "", "    - Flatten: {}",
                            "    - Flatten: {name: flat}\n    - Dense: {units: 4}\n"
                            "    - Dense: {units: 10}\n      inputs: flat"),
                     "p.yaml:17:7: warning[unused-layer]: model.layers[3].Dense: nothing takes the "
                     "output of this layer (model.layers[3]) and it is not a model output; it is "
                     "computed for nothing. Wire it with `inputs:`, list it in `model.outputs`, or "
                     "remove it."),
    "yaml-syntax": (change("epochs: 15", "epochs: 15: 3"), "p.yaml:22:13: error[yaml-syntax]: "
                    "a second `: ` on this line: a value cannot start a mapping on its key's "
                    "line. Quote the value if the colon belongs to it (`epochs: \"15: 3\"`), or "
                    "put each key on a line of its own."),
    "bad-indentation": (change("model:\n  layers:", "model:\nlayers:"), "p.yaml:13:1: "
                        "error[bad-indentation]: layers: `layers` is a key of `model`, but it is "
                        "not indented under `model:`, so YAML reads it as a top-level key (and "
                        "`model:` as empty). Indent it under `model:`."),
    "empty-file": ("# nothing here\n", "p.yaml:1:1: error[empty-file]: the file holds no "
                   "YAML document; a pipeline starts with 'kerapipe: 1'"),
    "multiple-documents": (BASE + "---\nname: second\n", "p.yaml:26:1: error[multiple-documents]: "
                           "a second YAML document starts here (`---`), but a pipeline "
                           "file is one document. Remove this `---` and what follows it, or move "
                           "that into a file of its own."),
    "document-end-marker": ("...\n" + BASE, "p.yaml:1:1: error[document-end-marker]: "
                            "`...` (YAML's end-of-document marker) stands where the pipeline "
                            "should begin; a pipeline file is one document that starts with "
                            "`kerapipe: 1`. Remove the `...` line (it may only follow the "
                            "document)."),
    "bad-override": (BASE, "--set train.epochs: error[bad-override]: "
                     "expected KEY.PATH=VALUE, e.g. `--set train.epochs=3` or "
                     "`--set model.layers[0].Dense.units=64`.", ["train.epochs"]),
    "too-large": (OVER_1MB, "p.yaml:1:1: error[too-large]: the file is 1000001 bytes; a "
                  "pipeline file may be at most 1000000 bytes."),
    "too-deep": (DEEP_BRACKETS, "p.yaml:1:65: error[too-deep]: nesting is deeper than 64 "
                 "levels; a pipeline file never needs that. Check for unbalanced '[' or '{'."),
    "alias-bomb": (ALIAS_BOMB, "p.yaml:1:1: error[alias-bomb]: alias expansion produces "
                   "more than 100000 values; a pipeline file never needs that many. Remove the "
                   "repeated aliases."),
    "forbidden-tag": (change("name: mnist-cnn", "name: !custom hi"), "p.yaml:2:7: "
                      "error[forbidden-tag]: explicit YAML tags are not allowed in a "
                      "pipeline file (it never runs code or builds objects). Remove the tag. "
                      "Received: tag='!custom'"),
    "duplicate-key": (change("seed: 42", "seed: 42\nseed: 7"), "p.yaml:4:1: error[duplicate-key]: "
                      "seed: key 'seed' appears twice in the same mapping (first at line 3); YAML "
                      "would silently keep only the last one. Remove one of them."),
    "bad-key": (change("kerapipe: 1", "? [a]\n: 1\nkerapipe: 1"), "p.yaml:1:3: error[bad-key]: "
                "a key is a name, but this one is a list (a YAML complex key). Write a "
                "plain name, such as `units`. Received: key=<a list>"),
    "bad-merge-key": (change("    - Dense: {units: 10}", "    - Dense: {<<: 10, units: 10}"),
                      "p.yaml:17:19: error[bad-merge-key]: model.layers[3].Dense.<<: a merge "
                      "key '<<' takes a mapping to copy keys from (usually an alias of one, `<<: "
                      "*defaults`) or a list of them (`<<: [*a, *b]`). Quote the key ('<<') if "
                      "a key named << is meant. Received: <<=10"),
    "wrong-type": (change("stratify: true", "stratify: on"), "p.yaml:6:49: error[wrong-type]: "
                   "data.split.stratify: expected true or false. Write true or false (YAML 1.2: "
                   "'yes'/'no'/'on'/'off' are strings). Received: stratify='on' (a string)"),
    "unknown-value": (change("monitor: val_loss", "monitor: val_loss, mode: maximum"),
                      "p.yaml:23:45: error[unknown-value]: train.early_stopping.mode: expected one "
                      "of 'auto', 'min', 'max'. Did you mean 'max'? Received: mode='maximum' "
                      "(a string)"),
    "unknown-key": (change("shuffle: 5000", "shufle: 5000"), "p.yaml:11:3: error[unknown-key]: "
                    "data.shufle: unknown key 'shufle'. Did you mean 'shuffle'? Expected one of: "
                    "source, split, preprocess, batch_size, shuffle, cache, features, crosses, "
                    "labels."),
    "missing-key": (change("kerapipe: 1\n", ""), "p.yaml:1:1: error[missing-key]: kerapipe: "
                    "required key 'kerapipe' is missing."),
    "one-of": (change("{sample: mnist}", "{}"), "p.yaml:5:11: error[one-of]: data.source: give "
               "exactly one of sample, keras, npz, csv, images, text, tfrecord, tfds; found "
               "none."),
    "out-of-range": (change("seed: 42", "seed: -1"), "p.yaml:3:7: error[out-of-range]: seed: must "
                     "be at least 0. Received: seed=-1 (an integer)"),
    "unknown-layer": (change("Conv2D:", "Conv2d:"), "p.yaml:14:7: error[unknown-layer]: "
                      "model.layers[0].Conv2d: unknown layer 'Conv2d'. Did you mean 'Conv2D'? Names "
                      "are Keras's own class names; `kerapipe schema` lists them all."),
    "refused-layer": (change("Flatten: {}", "Lambda: {function: x}"), "p.yaml:16:7: "
                      "error[refused-layer]: model.layers[2].Lambda: layer 'Lambda' is not allowed "
                      "in a pipeline file: runs arbitrary Python code."),
    "unknown-argument": (change("Dense: {units: 10}", "Dense: {units: 10, unit: 10}"),
                         "p.yaml:17:26: error[unknown-argument]: model.layers[3].Dense.unit: "
                         "unknown argument 'unit' of Dense. Did you mean 'units'?"),
    "missing-argument": (change("Dense: {units: 10}", "Dense: {}"), "p.yaml:17:7: "
                         "error[missing-argument]: model.layers[3].Dense: Dense needs the argument "
                         "'units'. Add `units: ...` under Dense."),
    "unknown-activation": (change("activation: relu", "activation: rellu"), "p.yaml:14:57: "
                           "error[unknown-activation]: model.layers[0].Conv2D.activation: unknown "
                           "activation 'rellu'. Did you mean 'relu'?"),
    "unknown-schedule": (change("learning_rate: 0.001", "learning_rate: {CosineDekay: "
                                "{initial_learning_rate: 0.1, decay_steps: 10}}"), "p.yaml:19:41: "
                         "error[unknown-schedule]: optimizer.learning_rate.CosineDekay: unknown "
                         "schedule 'CosineDekay'. Did you mean 'CosineDecay'? Names are Keras's own "
                         "class names; `kerapipe schema` lists them all."),
    "unknown-step": (change("- rescale:", "- rescal:"), "p.yaml:8:7: error[unknown-step]: "
                     "data.preprocess[0].rescal: unknown preprocessing step 'rescal'. Did you mean "
                     "'rescale'? Steps: rescale, normalize, reshape, resize, one_hot, pad_sequences, "
                     "preprocess_input, a Keras Random* layer (training only), or one of "
                     "Normalization, StringLookup, IntegerLookup, TextVectorization, "
                     "Discretization, Hashing (adapted on the training split)."),
    "unknown-feature": (change("  source: {sample: mnist}", "  source: {csv: {path: t.csv, "
                               "label: y}}\n  features: {a: string_categorical}\n  crosses: "
                               "[{feature_names: [a, b], crossing_dim: 4}]",
                               "  preprocess:\n    - rescale: 1/255\n    - reshape: [28, 28, 1]\n",
                               ""),
                        "p.yaml:7:33: error[unknown-feature]: data.crosses[0].feature_names[1]: "
                        "the cross names 'b', which data.features does not declare."),
    "unknown-loss": (change("loss: sparse_categorical_crossentropy", "loss: hubber"), "p.yaml:18:7: "
                     "error[unknown-loss]: loss: unknown loss 'hubber'. Did you mean 'huber'?"),
    "unknown-optimizer": (change("name: adam,", "name: adamm,"), "p.yaml:19:19: "
                          "error[unknown-optimizer]: optimizer.name: unknown optimizer 'adamm'. "
                          "Did you mean 'adam'?"),
    "unknown-metric": (change("[accuracy]", "[accuracy, precison]"), "p.yaml:20:21: "
                       "error[unknown-metric]: metrics[1]: unknown metric 'precison'. Did you mean "
                       "'precision'?"),
    "no-training-data": (change("validation: 0.1, test: 0.1", "validation: 0.6, test: 0.5"),
                         "p.yaml:6:10: error[no-training-data]: data.split: validation and test "
                         "fractions add up to 1.1, which leaves no training examples. Make them "
                         "sum to less than 1 (e.g. 0.1 and 0.1)."),
    "not-applicable": (change("{sample: mnist}", "{keras: {name: mnist, num_words: 100}}"),
                       "p.yaml:5:44: error[not-applicable]: data.source.keras.num_words: num_words "
                       "applies to imdb and reuters only, not 'mnist'. Remove it."),
    "reshape-size": (change("reshape: [28, 28, 1]", "reshape: [28, 28, 2]"), "p.yaml:9:16: "
                     "error[reshape-size]: data.preprocess[1].reshape.target_shape: cannot reshape "
                     "an example of shape [28, 28] (784 values) to [28, 28, 2] (1568 values). Use "
                     "sizes whose product is 784."),
    "class-count-mismatch": (change("Dense: {units: 10}", "Dense: {units: 5}"), "p.yaml:17:22: "
                             "error[class-count-mismatch]: model.layers[3].Dense.units: the output "
                             "layer has 5 units but 'mnist' has 10 classes. Set units: 10."),
    "logits-conflict": (SOFTMAX_AND_LOGITS, "p.yaml:18:60: error[logits-conflict]: "
                        "loss.from_logits: the last layer applies softmax, so it outputs "
                        "probabilities, not logits. Remove `from_logits: true` (kerapipe infers "
                        "it) or drop the activation."),
    "loss-label-mismatch": (change("loss: sparse_categorical_crossentropy",
                                   "loss: categorical_crossentropy"), "p.yaml:18:7: "
                            "error[loss-label-mismatch]: loss: categorical_crossentropy expects "
                            "one-hot labels, but labels are class indices. Use "
                            "sparse_categorical_crossentropy, or add `- one_hot: {}` to "
                            "data.preprocess."),
    "label-kind-conflict": (change("  batch_size: 64", "  labels: multi_label\n  batch_size: 64"),
                            "p.yaml:19:7: error[label-kind-conflict]: loss: "
                            "sparse_categorical_crossentropy takes exactly one class per "
                            "example, but `labels: multi_label` are sets of classes (multi-hot "
                            "vectors). Use binary_crossentropy (with a sigmoid per label)."),
    "unknown-monitor": (change("monitor: val_loss", "monitor: val_acc"), "p.yaml:23:29: "
                        "error[unknown-monitor]: train.early_stopping.monitor: 'val_acc' is not a "
                        "metric this run logs. Did you mean 'val_accuracy'? It logs: loss, "
                        "accuracy, val_loss, val_accuracy."),
    "patience-ge-epochs": (change("patience: 3", "patience: 20"), "p.yaml:23:49: "
                           "warning[patience-ge-epochs]: train.early_stopping.patience: patience "
                           "20 is not below epochs 15, so early stopping can never trigger."),
    "large-learning-rate": (change("learning_rate: 0.001", "learning_rate: 2.5"), "p.yaml:19:40: "
                            "warning[large-learning-rate]: optimizer.learning_rate: learning rate "
                            "2.5 is above 1; training will most likely diverge (typical values: "
                            "0.0001 to 0.01)."),
    "jit-ignored": (change("  epochs: 15", "  epochs: 15\n  jit_compile: true"),
                    "p.yaml:23:16: warning[jit-ignored]: train.jit_compile: Keras turns XLA off "
                    "while deterministic ops are on, so `jit_compile: true` has no effect. Set "
                    "train.deterministic: false to use XLA."),
    "dropout-last": (change("- Dense: {units: 10}", "- Dense: {units: 10}\n    - Dropout: {rate: 0.5}"),
                     "p.yaml:18:16: warning[dropout-last]: model.layers[4].Dropout: dropout as the "
                     "last layer drops output logits; put it before the output layer."),
    "batch-larger-than-data": (change("batch_size: 64", "batch_size: 6000"), "p.yaml:10:15: "
                               "warning[batch-larger-than-data]: data.batch_size: batch size 6000 "
                               "exceeds the 5000 training examples; each epoch is a single "
                               "partial batch."),
    "probabilities-expected": (change("loss: sparse_categorical_crossentropy",
                                      "loss: {name: sparse_categorical_crossentropy, from_logits: "
                                      "false}"), "p.yaml:18:60: warning[probabilities-expected]: "
                               "loss.from_logits: the last layer has no activation, so it outputs "
                               "logits, but the loss says `from_logits: false`. Remove it "
                               "(kerapipe infers it)."),
    "input-shape-ignored": (change("{filters: 32,", "{input_shape: [28, 28, 1], filters: 32,"),
                            "p.yaml:14:29: warning[input-shape-ignored]: "
                            "model.layers[0].Conv2D.input_shape: kerapipe infers the model's input "
                            "from the data; Keras ignores `input_shape` here (with a warning). "
                            "Remove it."),
    "bad-import": (change("kerapipe: 1\n", "kerapipe: 1\nimports: [my-layers.py]\n"),
                   "p.yaml:2:11: error[bad-import]: imports[0]: 'my-layers.py' is neither a `.py` "
                   "file whose name is a Python module name (letters, digits, _) nor an "
                   "installed module name such as `my_package.layers`."),
    "unknown-import": (change("- Dense: {units: 10}",
                              "- Dense: {units: 10}\n    - custom.Scale: {factor: 2}"),
                       "p.yaml:18:7: error[unknown-import]: model.layers[4].custom.Scale: "
                       "'custom.Scale' names module 'custom', but the pipeline has no "
                       "`imports:`. Keras names have no dot; a custom class needs its file in "
                       "`imports:`, e.g. `imports: [custom.py]`."),
    "bad-name": (change("name: mnist-cnn", "name: a/../../escaped"),
                 "p.yaml:2:7: error[bad-name]: name: a run name is one folder name inside the "
                 "output folder: printable characters other than '/' and '\\', at most 200 "
                 "bytes in UTF-8, starting with a letter or digit (of any script). Rename the "
                 "run, e.g. `mnist-cnn`. Received: name='a/../../escaped'"),
    "bad-path": (change("  dir: runs", '  dir: "runs\\0x"'),
                 "p.yaml:25:8: error[bad-path]: output.dir: a path cannot hold a NUL byte or "
                 "another control character (tab, newline, ...). Remove it. Received: "
                 "dir='runs\\x00x'"),
    "bad-delimiter": (change("{sample: mnist}", "{csv: {path: t.csv, label: y, delimiter: ';;'}}",
                             "    - reshape: [28, 28, 1]\n", ""),
                      "p.yaml:5:52: error[bad-delimiter]: data.source.csv.delimiter: a CSV "
                      "delimiter is exactly one printable ASCII character or a tab, other than "
                      "'\"' (both CSV readers, Python's and tf.data's, must split the file the "
                      "same way), e.g. ',', ';', '|' or '\\t'. Received: delimiter=';;'"),
    "crop-size": (change("    - reshape: [28, 28, 1]",
                         "    - reshape: [28, 28, 1]\n    - RandomCrop: {height: 32, width: 20}"),
                  "p.yaml:10:7: error[crop-size]: data.preprocess[2].RandomCrop: a crop of 32x20 "
                  "does not fit in the 28x28 image it receives: height and width are from 1 up "
                  "to the image's (Keras would enlarge the image instead of cropping it). Lower "
                  "them, or resize first. Received: height=32, width=20"),
    "backbone-input-size": (change("    - Conv2D: {filters: 32, kernel_size: 3, activation: relu}",
                                   "    - applications.MobileNetV3Small: {include_top: false, "
                                   "weights: null}"),
                            "p.yaml:14:7: error[backbone-input-size]: model.layers[0]."
                            "applications.MobileNetV3Small: applications.MobileNetV3Small takes "
                            "images of at least 32x32 pixels, but an example here is 28x28 "
                            "(shape [28, 28, 1]). Resize first: add `- resize: [32, 32]` to "
                            "data.preprocess."),
    "backbone-channels": (change("    - reshape: [28, 28, 1]",
                                 "    - reshape: [28, 28, 1]\n    - preprocess_input: VGG16"),
                          "p.yaml:10:25: error[backbone-channels]: data.preprocess[2]."
                          "preprocess_input.model: preprocess_input of VGG16 works on the 3 "
                          "channels of RGB images (caffe mode: flipped to BGR, minus the "
                          "ImageNet mean of each channel), but an example here has shape "
                          "[28, 28, 1]. Give the data 3 channels, or leave the step out (a "
                          "backbone with `weights: null` needs no ImageNet preprocessing)."),
    "regression-target": (change("{sample: mnist}", "{keras: boston_housing}",
                                 "    - reshape: [28, 28, 1]\n", ""), "p.yaml:17:7: "
                          "warning[regression-target]: loss: this data set has a continuous "
                          "target, not classes; a classification loss will not learn it. Use "
                          "mean_squared_error with `Dense: {units: 1}`."),
    "metric-label-mismatch": (change("metrics: [accuracy]", "metrics: [accuracy, {name: MeanIoU, "
                                     "num_classes: 4}]"), "p.yaml:20:50: "
                              "error[metric-label-mismatch]: metrics[1].num_classes: MeanIoU "
                              "counts 4 classes, but this run's labels have 10. Set num_classes: "
                              "10. Received: num_classes=4"),
    "class-weight-labels": (change("  epochs: 15", "  epochs: 15\n  class_weight: balanced",
                                   "loss: sparse_categorical_crossentropy", "loss: mse"),
                            "p.yaml:23:3: error[class-weight-labels]: train.class_weight: class "
                            "weights weigh each example by its class, but the loss mse fits a "
                            "continuous target, which has no classes. Remove "
                            "train.class_weight, or weigh examples with a sample weight "
                            "(data.source.csv.sample_weight or data.source.npz.sample_weight)."),
    "unknown-stage-layer": (change("    - Dense: {units: 10}", "    - Dense: {units: 10, name: head}",
                                   "  epochs: 15\n", "  stages: [{epochs: 5, trainable: [haed]}]\n"),
                            "p.yaml:22:36: error[unknown-stage-layer]: train.stages[0].trainable[0]: "
                            "'haed' names no layer, block use or backbone of the model. Did you mean "
                            "'head'? Give the layer a `name:` and use it here. Names: head, "
                            "model.layers[0], model.layers[1], model.layers[2]"),
    "stage-epochs": (change("    - Dense: {units: 10}", "    - Dense: {units: 10, name: head}",
                            "  epochs: 15\n", "  epochs: 15\n  stages: [{epochs: 5, trainable: "
                            "[head]}]\n"),
                     "p.yaml:22:11: error[stage-epochs]: train.epochs: with stages, a run trains "
                     "the sum of their epochs (5), but train.epochs says 15. Remove train.epochs, "
                     "or write 5. Received: epochs=15"),
    "stage-trains-nothing": (change("    - Dense: {units: 10}", "    - Dense: {units: 10, name: "
                                    "head}\n      trainable: false", "  epochs: 15\n",
                                    "  stages: [{epochs: 5, trainable: [head]}]\n"),
                             "p.yaml:23:35: error[stage-trains-nothing]: train.stages[0].trainable: "
                             "this stage leaves every layer frozen, so it would train nothing. Name "
                             "a layer to train (layers written `trainable: false` stay frozen in "
                             "every stage)."),
    "unknown-callback": (change(_EARLY, _EARLY + "\n  callbacks: [ReduceLRonPlateau]"),
                         "p.yaml:24:15: error[unknown-callback]: train.callbacks[0]."
                         "ReduceLRonPlateau: unknown callback 'ReduceLRonPlateau'. Did you mean "
                         "'ReduceLROnPlateau'? Names are Keras's own class names; `kerapipe "
                         "schema` lists them all."),
    "refused-callback": (change(_EARLY, _EARLY + "\n  callbacks: [EarlyStopping]"),
                         "p.yaml:24:15: error[refused-callback]: train.callbacks[0]."
                         "EarlyStopping: callback 'EarlyStopping' is not offered in a pipeline "
                         "file: kerapipe owns early stopping; use `train.early_stopping`."),
    "bad-callback-path": (change(_EARLY, _EARLY + "\n  callbacks: [{CSVLogger: {filename: "
                                 "../log.csv}}]"),
                          "p.yaml:24:38: error[bad-callback-path]: train.callbacks[0].CSVLogger."
                          "filename: CSVLogger writes here, inside the run folder, but it holds "
                          "'..'. Give a relative path of a new file or folder in the run folder, "
                          "e.g. `filename: epochs.csv`. Received: '../log.csv'"),
    "callback-path-shared": (change(_EARLY, _EARLY + "\n  callbacks: [{CSVLogger: {filename: "
                                    "report.html}}]"),
                             "p.yaml:24:38: warning[callback-path-shared]: train.callbacks[0]."
                             "CSVLogger.filename: CSVLogger writes into 'report.html', where "
                             "the run's report goes (plots/, report.html, ..., README \"Plots "
                             "and the report\"), so the run will not write its report. Give the "
                             "callback another path, e.g. `filename: epochs.csv`. Received: "
                             "'report.html'"),
    "unknown-tune-key": (change("  dir: runs", "  dir: runs\ntune:\n  space:\n"
                                "    model.layers[3].Dense.unit: [10, 20]"),
                         "p.yaml:28:5: error[unknown-tune-key]: tune.space.model.layers[3].Dense."
                         "unit: 'model.layers[3].Dense.unit' names no key the file has or can "
                         "have: unknown argument 'unit' of Dense. Did you mean 'units'?"),
    "bad-tune-range": (change("  dir: runs", "  dir: runs\ntune:\n  space: "
                              "{optimizer.learning_rate: {log_uniform: [0.01, 0.001]}}"),
                       "p.yaml:27:50: error[bad-tune-range]: tune.space.optimizer.learning_rate."
                       "log_uniform: `log_uniform` needs finite ends with low below high. "
                       "Received: log_uniform=[0.01, 0.001]"),
    "bad-tune-value": (change("  dir: runs", "  dir: runs\ntune:\n  space: {data.batch_size: "
                              "[32, 0]}"),
                       "p.yaml:27:11: error[bad-tune-value]: tune.space.data.batch_size: choice 2, "
                       "0, does not validate there: error[out-of-range] at data.batch_size: must "
                       "be at least 1. Received: batch_size=0 (an integer)"),
    "unknown-objective": (change("  dir: runs", "  dir: runs\ntune:\n  space: {data.batch_size: "
                                 "[32, 64]}\n  objective: val_acc"),
                          "p.yaml:28:14: error[unknown-objective]: tune.objective: 'val_acc' is "
                          "not a value this run logs. Did you mean 'val_accuracy'? It logs: loss, "
                          "accuracy, val_loss, val_accuracy."),
    # reuse (tests/test_compose.py has the cases that need files and variables)
    "bad-extends": (change("kerapipe: 1", "kerapipe: 1\nextends: [base.yaml]"),
                    "p.yaml:2:10: error[bad-extends]: extends: a base is named by one path, a "
                    "string (several bases are not read: let each base extend the next). "
                    "Received: extends=['base.yaml'] (a list)"),
    "unset-variable": (change("name: mnist-cnn", "name: ${env:KERAPIPE_GOLDEN_UNSET}"),
                       "p.yaml:2:7: error[unset-variable]: name: the environment variable "
                       "KERAPIPE_GOLDEN_UNSET is not set, and `${env:KERAPIPE_GOLDEN_UNSET}` "
                       "gives no default. Set it (in CI: in the job's environment), or give a "
                       "default: `${env:KERAPIPE_GOLDEN_UNSET:VALUE}`."),
    "bad-reference": (change("  dir: runs", "  dir: runs/${USER}"),
                      "p.yaml:25:8: error[bad-reference]: output.dir: '${USER}' is no reference "
                      "kerapipe reads: write `${env:NAME}` or `${env:NAME:default}` (NAME: "
                      "letters, digits and `_`, not starting with a digit; the default ends at "
                      "the first `}`), or `$${` for a literal `${`. Received: dir='runs/${USER}'"),
}


@pytest.mark.parametrize("code", sorted(GOLDEN))
def test_message_text_of_each_code_is_golden(code):
    text, expected, *overrides = GOLDEN[code]  # overrides: the `--set` values, if any
    result = validate_text(text, "p.yaml", *overrides)
    assert [i.format() for i in result.issues if i.code == code][:1] == [expected]


def test_every_code_validation_reports_has_a_golden_message():
    not_from_text = {"unreadable-file", "no-such-file", "outside-path",  # about paths
                     "missing-import", "imports-not-allowed",  # tests/test_faults.py
                     "missing-data",  # validate_file only: tests/test_small_gaps.py
                     "layer-arguments", "shape-error", "keras-arguments", "deep-skipped",  # --deep
                     # found by building the model (tests/test_hostile_keras.py)
                     "output-shape", "one-hot-classes", "augmentation-shape", "model-too-large",
                     "training-refused"}
    assert set(GOLDEN) == set(ISSUE_CODES) - not_from_text
    tabled = {case.values[1] for case in BAD_INPUTS} | {case.values[1] for case in WARNINGS}
    assert tabled - set(GOLDEN) == set()


@pytest.mark.parametrize("text, code", [(ALIAS_BOMB, "alias-bomb"), (DEEP_BRACKETS, "too-deep")],
                         ids=["billion-laughs", "100kB-of-brackets"])
def test_hostile_input_is_refused_fast_with_bounded_memory(text, code):
    start = time.perf_counter()  # a hang guard, not a benchmark: the real cost is ~0.2 s
    assert validate_text(text).issues[0].code == code
    assert time.perf_counter() - start < 2.0
    tracemalloc.start()  # measured in a second run: tracing slows the parser several times
    try:
        assert validate_text(text).issues[0].code == code
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50_000_000


NESTED_ALIASES = "kerapipe: 1\nx0: &x0 1\n" + "".join(
    f"x{i}: &x{i} {'[' * 60}*x{i - 1}{']' * 60}\n" for i in range(1, 40))


@pytest.mark.parametrize("text, code", [
    ("kerapipe: 1\na: &a [*a]\n", "alias-bomb"),  # an alias inside its own anchor: a cycle
    (NESTED_ALIASES, "too-deep"),  # each alias adds 60 levels the composer never sees
    ("kerapipe: 1\nname: a\x00b\n", "yaml-syntax"),  # a NUL is valid UTF-8 in a file
    ("kerapipe: 1\nmetrics: [" + ",".join(["1"] * 200_000) + "]\n", "too-large"),
], ids=["self-referencing-alias", "depth-through-aliases", "nul-character", "too-many-values"])
def test_hostile_input_is_an_issue_not_an_exception(text, code):
    result = validate_text(text, "p.yaml")
    assert result.spec is None
    assert [i.code for i in result.errors] == [code]


def test_all_independent_problems_are_reported_at_once():
    text = change("stratify: true", "stratify: on", "shuffle: 5000", "shufle: 5000",
                  "Conv2D:", "Conv2d:", "loss: sparse_categorical_crossentropy", "loss: hubber",
                  "[accuracy]", "[precison]")
    issues = validate_text(text, "p.yaml").issues
    assert [(i.code, i.line) for i in issues] == [
        ("wrong-type", 6), ("unknown-key", 11), ("unknown-layer", 14), ("unknown-loss", 18),
        ("unknown-metric", 20)]


def test_syntax_error_names_its_line_and_scalars_follow_yaml_1_2():
    result = validate_text(change("  epochs: 15", "  epochs: 15: 3"), "p.yaml")
    assert [(i.code, i.line, i.column) for i in result.issues] == [("yaml-syntax", 22, 13)]
    with pytest.raises(LoadProblem) as raised:
        load_document("kerapipe: 1\nseed: 4: 2\n", "x.yaml")
    assert (raised.value.issue.code, raised.value.issue.line) == ("yaml-syntax", 2)

    data = load_document("a: 1e-3\nb: 1E3\nc: .5\nd: yes\ne: on\nf: true\ng: '2'\n").data
    assert data == {"a": 0.001, "b": 1000.0, "c": 0.5, "d": "yes", "e": "on", "f": True, "g": "2"}
    assert [type(data[k]) for k in "abcdefg"] == [float, float, float, str, str, bool, str]


def test_undecodable_file_is_an_unreadable_file_issue(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_bytes(b"kerapipe: 1\nname: \xff\n")
    (issue,) = validate_file(path).issues
    assert (issue.code, issue.file) == ("unreadable-file", str(path))
    assert "can't decode byte 0xff" in issue.message


@pytest.mark.parametrize("vocabulary, refused", [
    ("/etc/passwd", True), ("../secrets.txt", True), ("~/.ssh/id_rsa", True),
    ("vocab.txt", False), ("data/vocab.txt", False),
], ids=["absolute", "parent", "home", "beside-the-file", "below-the-file"])
def test_a_layer_argument_that_reads_a_file_must_stay_in_the_pipeline_folder(
        tmp_path, vocabulary, refused):
    path = tmp_path / "p.yaml"
    path.write_text(change("    - Flatten: {}", "    - Flatten: {}\n"
                           f"    - StringLookup: {{vocabulary: '{vocabulary}'}}"))
    codes = [(i.code, i.key_path) for i in validate_file(path).issues]
    assert (("outside-path", "model.layers[3].StringLookup.vocabulary") in codes) is refused
