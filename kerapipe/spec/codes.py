"""Every issue code kerapipe reports, with its meaning: the one list the README shows.

``tests/test_codes.py`` checks that each code used in the source is listed here.
"""

from __future__ import annotations

ISSUE_CODES: dict[str, str] = {
    # reading the file
    "unreadable-file": "the file cannot be read (missing, not a regular file, not UTF-8); "
                       "reported at the file, with no line or column (there is no text to "
                       "point into)",
    "no-such-file": "a path given to `validate` matches no file",
    "too-large": "the file (or its values) exceeds the size bound",
    "empty-file": "the file holds no YAML document",
    "yaml-syntax": "the text is not valid YAML",
    "bad-indentation": "a line indented where YAML or the format does not expect it: a tab, a "
                       "key in no open mapping's column, or a section's key indented too "
                       "little (a sibling of its empty section)",
    "multiple-documents": "a second YAML document (a `---` after the first); a pipeline file "
                          "is one document",
    "document-end-marker": "`...` (YAML's end-of-document marker) where the pipeline should "
                           "begin",
    "forbidden-tag": "an explicit YAML tag such as `!!python/object` (never allowed)",
    "too-deep": "nesting deeper than the bound (e.g. a run of `[`)",
    "alias-bomb": "YAML aliases expand to more values than the bound",
    "duplicate-key": "the same key twice in one mapping",
    "bad-key": "a key that is no name: a list or mapping, or a plain `true`, `null`, `1.5` or "
               "empty key (YAML reads it as another type; quote it if the name is meant)",
    "bad-merge-key": "a `<<` merge key whose value is not a mapping or a list of mappings",
    "bad-override": "a `--set` that is not KEY.PATH=VALUE or names no place in the file",
    # keys and types
    "missing-key": "a required key is absent",
    "unknown-key": "a key the format does not have (with a did-you-mean)",
    "wrong-type": "a value of the wrong type (strict: `yes` is not true, `\"3\"` is not 3)",
    "unknown-value": "a value outside the allowed choices",
    "out-of-range": "a number or list length outside its bounds",
    "one-of": "a source that names none or several kinds",
    "bad-name": "a run name that is not one safe folder name Keras accepts",
    "bad-path": "a path that holds a NUL byte or another control character",
    "bad-delimiter": "a CSV delimiter that is not one printable ASCII character or a tab",
    # Keras names
    "unknown-layer": "a layer name that keras.layers does not have",
    "refused-layer": "a layer that runs code or loads external models (Lambda, TFSMLayer, ...)",
    "unknown-argument": "a keyword argument the Keras class does not accept",
    "missing-argument": "a Keras class argument without a default is not given",
    "unknown-activation": "an activation name keras.activations does not have",
    "unknown-loss": "a loss name keras.losses does not have",
    "unknown-optimizer": "an optimizer name keras.optimizers does not have",
    "unknown-metric": "a metric name keras.metrics does not have",
    "unknown-schedule": "a learning-rate schedule keras.optimizers.schedules does not have",
    "unknown-callback": "a callback name keras.callbacks does not have",
    "refused-callback": "a callback kerapipe does the job of, or that needs Python code "
                        "(EarlyStopping, ModelCheckpoint, LearningRateScheduler, ...)",
    "unknown-step": "a preprocessing step kerapipe does not have",
    "unknown-feature": "a name in data.crosses or model.inputs that data.features does not "
                       "declare",
    # the model's graph and blocks
    "unknown-input": "an `inputs:` name that is no layer above and no model input (with a "
                     "did-you-mean over the names in reach)",
    "graph-cycle": "an `inputs:` name of a layer below (or of itself): layers take only "
                   "what is above them, so the graph has no cycle",
    "duplicate-name": "two layers (or a layer and a model input) with one `name:`",
    "merge-inputs": "a merge layer (`Add`, `Concatenate`, ...) given fewer than two inputs "
                    "(`Subtract` and `Dot`: other than two)",
    "unknown-output": "a `model.outputs` name that names no layer or block use",
    "ambiguous-input": "a first layer without `inputs:` in a model of several inputs "
                       "(`model.inputs`): it must say which it takes",
    "bad-block": "a block whose name is not snake_case or is a Keras layer's, or a "
                 "parameter named `name` or not an identifier",
    "block-cycle": "a block used inside itself (or blocks nested deeper than the bound)",
    "block-inputs": "a block use that gives another number of inputs than the block takes",
    "unknown-parameter": "a `$name` a block does not declare, or a value given to a use "
                         "for a parameter the block does not have",
    "unused-parameter": "a block parameter that none of the block's layers uses",
    # checks across keys
    "bad-callback-path": "a callback's file (TensorBoard's log_dir, CSVLogger's filename) "
                         "that is absolute, leaves the run folder or names one of its files",
    "callback-path-shared": "a callback's file where the run's report goes (plots/, "
                            "report.html, ...): a warning; the report is then not written",
    "outside-path": "a layer argument or an `imports:` file points outside the pipeline's "
                    "folder",
    "bad-import": "an `imports:` entry that is not a `.py` file or module name, or a repeat",
    "unknown-import": "a `module.Name` layer or loss whose module is not in `imports:`",
    "missing-import": "an `imports:` file that does not exist",
    "missing-data": "a warning: a data file, folder or glob the pipeline names (a source's "
                    "path, a split file, a layer's vocabulary file or a backbone's weights file) is not there, relative "
                    "to the pipeline file's folder",
    "imports-not-allowed": "a pipeline with `imports:` run without `--allow-imports`",
    "no-training-data": "split fractions leave no training examples",
    "not-applicable": "an option that does not apply to this source",
    "reshape-size": "a reshape whose size cannot match the example",
    "crop-size": "a RandomCrop larger than the image it receives",
    "backbone-input-size": "a backbone (`applications.*`) given examples that are not images "
                           "or are smaller than its minimum side (e.g. 75 for InceptionV3)",
    "backbone-channels": "ImageNet weights, or a caffe/torch `preprocess_input`, on images "
                         "that do not have 3 channels",
    "class-count-mismatch": "output units differ from the number of classes (a named data "
                            "set's before any data, every other source's once its labels are "
                            "read)",
    "logits-conflict": "a softmax/sigmoid output with `from_logits: true`",
    "loss-label-mismatch": "one-hot labels with a sparse loss, or the reverse",
    "label-kind-conflict": "a loss or last activation that does not fit the kind written in "
                           "`data.labels` (e.g. softmax on multi_label labels)",
    "metric-label-mismatch": "a metric that cannot measure the labels (a class metric on a "
                             "continuous target, an IoU over another class count)",
    "unknown-monitor": "early stopping watches a metric the run does not log",
    "class-weight-labels": "`train.class_weight` on labels that are not one class per "
                           "example (regression, raw, multi_label, several outputs)",
    # warnings (fail only under --strict)
    "patience-ge-epochs": "warning: early stopping can never trigger",
    "probabilities-expected": "warning: a linear output with `from_logits: false`",
    "regression-target": "warning: a classification loss on a continuous target",
    "large-learning-rate": "warning: a learning rate above 1",
    "batch-larger-than-data": "warning: a batch larger than the training data",
    "dropout-last": "warning: dropout as the last layer",
    "jit-ignored": "warning: `jit_compile: true` with deterministic ops (Keras ignores it)",
    "unused-layer": "warning: a layer whose output nothing takes and that is no model output",
    "redundant-inputs": "warning: `inputs:` naming the model's input on the first layer, "
                        "which takes it anyway",
    "unused-block": "warning: a block that no layer list uses",
    "input-shape-ignored": "warning: `input_shape`/`input_dim` on a layer (the input is inferred)",
    # building the model with Keras (validate --deep; plan and run too)
    "layer-arguments": "Keras refused a layer's or preprocessing step's arguments "
                       "(`validate --deep`, `plan`, `run`)",
    "shape-error": "--deep: a layer cannot take the shape it receives",
    "keras-arguments": "Keras refused the loss, optimizer, schedule or metric arguments, "
                       "or they fail on a dummy input (`validate --deep`, `plan`, `run`)",
    "deep-skipped": "note: --deep needs the example shape, which depends on the data",
    "output-shape": "--deep/plan/run: the model's output shape does not fit the labels for the "
                    "loss (e.g. no Flatten before Dense, mse on class labels)",
    "one-hot-classes": "--deep: a one_hot step with fewer classes than the labels have",
    "augmentation-shape": "--deep/plan/run: a Random* step changes the example shape (it runs "
                          "on training batches only)",
    "model-too-large": "--deep: the model's weights exceed the memory bound (plan/run: exit 4)",
    "training-refused": "run: Keras refused the step function when it traced it (shapes or "
                        "dtypes of the model, loss, metrics and labels)",
    # fine-tuning stages (train.stages)
    "stage-epochs": "train.epochs differs from the sum of the stages' epochs",
    "unknown-stage-layer": "a stage's trainable names no layer, block use or backbone",
    "stage-trains-nothing": "a stage whose trainable leaves every layer frozen",
    # the hyperparameter search (tune:, kerapipe tune)
    "unknown-tune-key": "a `tune.space` key that is no `--set` key path, names no key the "
                        "file has or `--set` could add, or names `kerapipe`/`tune`",
    "bad-tune-range": "a `tune.space` value that is neither a list of choices nor one "
                      "range (`uniform`, `log_uniform`, `int` with `step`), or ends out of "
                      "order; or a space over its bounds",
    "bad-tune-value": "a choice or a range end of `tune.space` that the file refuses once "
                      "it is set there (the key's own error, quoted)",
    "unknown-objective": "`tune.objective` names no validation value the run logs",
    # reuse (extends:, ${env:NAME})
    "bad-extends": "an `extends:` that is no relative path of a .yaml/.yml file, names a "
                   "base that cannot be read or holds no mapping, closes a cycle or makes "
                   "a chain over 8 bases; or `extends` in data that is not read for it "
                   "(a dict, a run's spec.yaml)",
    "unset-variable": "an `${env:NAME}` whose variable is not set and that gives no default",
    "bad-reference": "a `${` in a string value that is no `${env:NAME}` or "
                     "`${env:NAME:default}` (write `$${` for a literal `${`)",
}
