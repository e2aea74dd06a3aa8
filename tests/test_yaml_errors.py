"""YAML a person can fix: the parser's refusals and misplaced keys, said in kerapipe's words.

Each broken file is ``BASE`` (tests/test_bad_inputs.py) with one visible change. A refusal
is reported where the author must fix it (the `[` or quote that was opened, the line
indented wrong) with what happened and the fix, never PyYAML's grammar words; a key in
the wrong section names the section it belongs in; a key indented too little is
indentation, not an unknown key.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from kerapipe.spec import key_hints
from kerapipe.spec.schema import iter_keys
from kerapipe.spec.validate import validate_text
from test_bad_inputs import BASE, change


def broken(text, code, line, column, words, *, id):
    return pytest.param(text, code, line, column, words, id=id)


REFUSALS = [
    broken(change("  epochs: 15", "\tepochs: 15"), "bad-indentation", 22, 1,
           "indented with a tab, but YAML indents with spaces only", id="tab-indents-a-key"),
    broken(change("    - Flatten: {}", "  \t  - Flatten: {}"), "bad-indentation", 16, 1,
           "spaces only", id="tab-inside-the-indentation"),
    broken(change("    - Flatten: {}", "    -\tFlatten: {}"), "yaml-syntax", 16, 6,
           "a tab stands here, where YAML allows only spaces", id="tab-after-a-dash"),
    broken(change("epochs: 15", "epochs: [15"), "yaml-syntax", 22, 11,
           "this `[` opens a list that is never closed with `]` (YAML reached line 23",
           id="unclosed-bracket-points-at-the-bracket"),
    broken(BASE.replace("  dir: runs", "  dir: {a: 1"), "yaml-syntax", 25, 8,
           "this `{` opens a mapping that is never closed with `}` (YAML reached the end of "
           "the file", id="unclosed-brace-at-the-end"),
    broken(change("metrics: [accuracy]", "metrics: [accuracy,\n  loss"), "yaml-syntax", 20, 10,
           "never closed with `]`", id="unclosed-bracket-over-lines"),
    broken(change("{filters: 32, kernel_size: 3", "{filters: 32 kernel_size: 3"), "yaml-syntax",
           14, 39, "Add the missing comma (`32, kernel_size`)", id="missing-comma-in-braces"),
    broken(change("name: mnist-cnn", 'name: "mnist-cnn'), "yaml-syntax", 2, 7,
           'this `"` opens a quoted value that is never closed', id="unclosed-double-quote"),
    broken(change("name: mnist-cnn", "name: 'mnist-cnn"), "yaml-syntax", 2, 7,
           "Add the closing `'`", id="unclosed-single-quote"),
    broken(change("name: mnist-cnn", 'name: "mnist" cnn'), "yaml-syntax", 2, 15,
           'text follows the closing `"`', id="text-after-a-quote"),
    broken(change("[accuracy]", "[accuracy]]"), "yaml-syntax", 20, 20,
           "this `]` closes nothing", id="stray-closing-bracket"),
    broken(change("epochs: 15", "epochs: 15: 3"), "yaml-syntax", 22, 13,
           '(`epochs: "15: 3"`)', id="colon-in-a-value"),
    broken(change("seed: 42", "seed:42"), "yaml-syntax", 3, 1,
           "YAML needs a space after the colon: `seed: 42`", id="no-space-after-colon"),
    broken(change("seed: 42", "seed 42"), "yaml-syntax", 3, 1,
           "`seed 42` stands where a key is expected, but no `: ` follows it",
           id="no-colon-after-a-key"),
    broken(change("  batch_size: 64", "    batch_size: 64"), "bad-indentation", 10, 5,
           "`batch_size:` is indented to column 5, which lines it up with none of the "
           "mappings open above it (the keys above start at column 7, 3 or 1)",
           id="key-indented-too-deep"),
    broken(change("  early_stopping", " early_stopping"), "bad-indentation", 23, 2,
           "(the keys above start at column 3 or 1)", id="key-between-two-columns"),
    broken(change("  epochs: 15", " epochs: 15"), "bad-indentation", 23, 3,
           "indented deeper than line 22, whose key already has a value",
           id="key-deeper-than-the-key-above"),
    broken(change("    - Flatten: {}", "   - Flatten: {}"), "bad-indentation", 16, 4,
           "(the items above start at column 5)", id="list-item-out-of-line"),
    broken(change("  epochs: 15", "  epochs:\n  15"), "bad-indentation", 23, 3,
           "`15` is not indented under `epochs:` (line 22)", id="value-not-under-its-key"),
    broken(change("epochs: 15", "epochs: *nope"), "yaml-syntax", 22, 11,
           "`*nope` refers to an anchor `&nope` that is not defined before it",
           id="undefined-alias"),
    broken(change("epochs: 15", "epochs: &"), "yaml-syntax", 22, 11,
           "`&` starts an anchor but no name follows it", id="anchor-without-a-name"),
    broken(change("name: mnist-cnn", "name: @mnist"), "yaml-syntax", 2, 7,
           '`@` cannot start a plain YAML value (YAML reserves it). Put the value in quotes '
           '(`"@mnist"`)', id="reserved-character"),
    broken(change("name: mnist-cnn", 'name: "a\\qb"'), "yaml-syntax", 2, 10,
           "`\\q` is not an escape YAML knows inside double quotes", id="unknown-escape"),
    broken(change("[accuracy]", "[- accuracy]"), "yaml-syntax", 20, 11,
           "a `- ` list item cannot stand inside `[ ]`", id="dash-inside-brackets"),
    broken(change("name: mnist-cnn", "name: |x\n  a"), "yaml-syntax", 2, 7,
           "`|` starts a block of text", id="text-after-a-block-indicator"),
    broken(change("name: mnist-cnn", "%name: x"), "yaml-syntax", 2, 1,
           "begins a YAML directive", id="percent-at-line-start"),
    broken(change("stratify: true}", "stratify: tru]e}"), "yaml-syntax", 6, 52,
           "this `]` does not close the `{` opened at column 10", id="closer-of-the-other-kind"),
    broken(change("{name: adam", "{]name: adam"), "yaml-syntax", 19, 13,
           "YAML expected a value here, but `]` stands in its place", id="stray-bracket-for-a-value"),
    broken(change("  epochs: 15", "  epochs: - 15"), "yaml-syntax", 22, 11,
           "a `- ` list item cannot start here, after other text on its line",
           id="list-item-on-a-key-line"),
    broken(change("[28, 28, 1]", "[28, 28, 1] ?"), "yaml-syntax", 9, 28,
           "`? ` (YAML's marker of a complex key) cannot stand here", id="question-mark"),
    broken(change("    - rescale: 1/255", "    - rescale: !}"), "yaml-syntax", 8, 16,
           "`!` starts a YAML tag", id="tag-without-a-name"),
    broken("[a]\n" + BASE, "yaml-syntax", 2, 1,
           "YAML read the whole file as the one value that begins on line 1",
           id="text-after-a-top-level-value"),
    broken(change("name: mnist-cnn", 'name: "mnist\x01cnn"'), "yaml-syntax", 2, 13,
           "the character U+0001 stands here, and YAML allows no control characters",
           id="control-character-at-its-place"),
    broken(change("  dir: runs", "  dir: runs\ufffe"), "yaml-syntax", 25, 12,
           "the character U+FFFE stands here, and YAML does not allow it", id="non-character"),
]


@pytest.mark.parametrize("text, code, line, column, words", REFUSALS)
def test_yaml_refusal_is_explained_where_it_must_be_fixed(text, code, line, column, words):
    issues = validate_text(text, "p.yaml").issues
    assert [(i.code, i.line, i.column) for i in issues] == [(code, line, column)]
    assert words in issues[0].message
    # PyYAML's grammar words never reach the author, nor its own places
    for raw in ("while parsing", "while scanning", "<block end>", "expected <", "line 0",
                "<unicode string>", "position "):
        assert raw not in issues[0].message


def test_every_refusal_of_a_mutated_file_is_explained_at_a_place_in_it():
    # seeded mutations of BASE with the characters YAML gives meaning to
    rng = random.Random(15)
    for _ in range(300):
        text = BASE
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(text))
            text = text[:at] + rng.choice("[]{}:'\"\t-#&*!|>%@`,? \n\\") + text[at + rng.randint(0, 1):]
        lines = text.split("\n")
        for issue in validate_text(text, "p.yaml").issues:
            if issue.code in ("yaml-syntax", "bad-indentation"):
                assert 1 <= issue.line <= len(lines) and 1 <= issue.column <= len(
                    lines[issue.line - 1]) + 1, (text, issue)
                assert "while parsing" not in issue.message, (text, issue)


@pytest.mark.parametrize("text, code, line, column, words", REFUSALS[3:6] + REFUSALS[14:17])
def test_a_file_of_windows_line_ends_is_explained_alike(text, code, line, column, words):
    issues = validate_text(text.replace("\n", "\r\n"), "p.yaml").issues
    assert [(i.code, i.line, i.column) for i in issues] == [(code, line, column)]
    assert words in issues[0].message


def test_unrecognised_refusal_keeps_pyyaml_words():
    issues = validate_text(BASE + "%YAML 1.2\n", "p.yaml").issues
    assert [(i.code, i.line) for i in issues] == [("yaml-syntax", 27)]
    assert issues[0].message.startswith("invalid YAML: expected '<document start>'")


MISPLACED = [
    (change("  shuffle: 5000", "  epochs: 3"), "data.epochs",
     " `epochs` belongs in `train:` (train.epochs); move it there."),
    (change("seed: 42", "learning_rate: 0.1"), "learning_rate",
     " `learning_rate` belongs in `optimizer:` (optimizer.learning_rate); move it there."),
    (change("  epochs: 15", "  optimizer: sgd"), "train.optimizer",
     " `optimizer` is a top-level key, not a key of `train`; move it to the top level of the "
     "file."),
    (change("model:", "model:\n  loss: mse"), "model.loss",
     " `loss` is a top-level key, not a key of `model`; move it to the top level of the file."),
    (change("  shuffle: 5000", "  normalize: {}"), "data.normalize",
     " `normalize` belongs in `data.preprocess:` (data.preprocess[].normalize); move it there."),
    (change("  shuffle: 5000", "  path: t.csv"), "data.path",
     " `path` belongs in `data.source.npz:` or `data.source.csv:` (data.source.npz.path); move "
     "it there."),
]


@pytest.mark.parametrize("text, path, hint", MISPLACED, ids=[m[1] for m in MISPLACED])
def test_key_of_another_section_names_where_it_belongs(text, path, hint):
    issues = validate_text(text, "p.yaml").issues
    assert [(i.code, i.key_path) for i in issues] == [("unknown-key", path)]
    assert hint + " Expected one of: " in issues[0].message


def test_close_key_of_the_section_wins_over_another_section():
    # `epoch` is a typo of train's `epochs`, though `epoch` is nowhere else either;
    # `patience` exists elsewhere but a typo here is closer to what was meant
    issues = validate_text(change("  epochs: 15", "  epoch: 15"), "p.yaml").issues
    assert "Did you mean 'epochs'?" in issues[0].message and "belongs" not in issues[0].message
    issues = validate_text(change("patience: 3", "patience: 3, pateince: 1"), "p.yaml").issues
    assert "Did you mean 'patience'?" in issues[0].message


def test_key_no_section_has_gets_no_section_hint():
    issues = validate_text(change("  epochs: 15", "  epochs: 15\n  zorglub: 1"), "p.yaml").issues
    assert [(i.code, i.key_path) for i in issues] == [("unknown-key", "train.zorglub")]
    assert issues[0].message == ("unknown key 'zorglub'. Expected one of: epochs, early_stopping, "
                                 "callbacks, steps_per_execution, jit_compile, deterministic, "
                                 "class_weight, precision, stages, distribute.")


UNDER_INDENTED = [
    (change("model:\n  layers:", "model:\nlayers:"), [("bad-indentation", "layers", 13)]),
    (change("train:\n  epochs: 15\n  early_stopping", "train:\nepochs: 15\nearly_stopping"),
     [("bad-indentation", "epochs", 22), ("bad-indentation", "early_stopping", 23)]),
    (change("  early_stopping: {monitor: val_loss, patience: 3}",
            "  early_stopping:\n  patience: 3"),
     [("bad-indentation", "train.patience", 24)]),
    (change("optimizer: {name: adam, learning_rate: 0.001}",
            "optimizer:\nlearning_rate: 0.001"), [("bad-indentation", "learning_rate", 20)]),
]


@pytest.mark.parametrize("text, expected", UNDER_INDENTED,
                         ids=["model-layers", "train-keys", "nested-section", "optimizer"])
def test_key_indented_too_little_is_indentation_not_an_unknown_key(text, expected):
    # the empty section it was meant to be under is not reported as well
    issues = validate_text(text, "p.yaml").issues
    assert [(i.code, i.key_path, i.line) for i in issues] == expected
    assert all(i.column == (3 if "." in i.key_path else 1) for i in issues)


def test_under_indented_message_names_the_section_and_the_fix():
    issue, = validate_text(change("  early_stopping: {monitor: val_loss, patience: 3}",
                                  "  early_stopping:\n  patience: 3"), "p.yaml").issues
    assert issue.message == ("`patience` is a key of `train.early_stopping`, but it is not "
                             "indented under `early_stopping:`, so YAML reads it as a key of "
                             "`train` (and `early_stopping:` as empty). Indent it under "
                             "`early_stopping:`.")


def test_key_beside_a_section_with_a_value_is_an_unknown_key():
    # `model:` has its layers: a top-level `inputs:` is misplaced, not under-indented
    issues = validate_text(change("loss: sparse", "inputs: [x]\nloss: sparse"), "p.yaml").issues
    assert [(i.code, i.key_path) for i in issues] == [("unknown-key", "inputs")]
    assert "`inputs` belongs in `model:` (model.inputs)" in issues[0].message


def test_where_keys_live_is_read_from_the_spec_classes():
    homes = key_hints._homes()
    for dotted, *_ in iter_keys():
        parts = key_hints._pattern(dotted)
        if not parts[-1].startswith("<"):
            assert parts[:-1] in homes[parts[-1]], dotted
    assert homes["epochs"][0] == ("train",)  # shallowest first: before train.stages[]


def test_where_keys_live_is_not_computed_for_a_good_file():
    code = ("from kerapipe.spec import key_hints; from kerapipe.spec.validate import "
            "validate_text; import sys; sys.path.insert(0, 'tests'); "
            "from test_bad_inputs import BASE; assert validate_text(BASE, 'p.yaml').issues == []; "
            "print(key_hints._homes.cache_info().currsize)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parent.parent)
    assert done.stdout.strip() == "0"


def test_many_unknown_keys_are_read_in_one_pass_over_their_section(monkeypatch):
    # a hostile file of many keys below an empty section: one pass, not one per key
    calls = []
    real = key_hints.under_indented_keys
    monkeypatch.setattr("kerapipe.spec.typed.under_indented_keys",
                        lambda *args: calls.append(args[0]) or real(*args))
    text = BASE + "".join(f"k{i}: 1\n" for i in range(3000))
    issues = validate_text(text, "p.yaml").issues
    assert calls == [()]  # the top level, once
    assert [(i.code, i.key_path) for i in issues[:2]] == [("unknown-key", "k0"),
                                                           ("unknown-key", "k1")]

    class CountingDict(dict):
        reads = 0

        def __getitem__(self, key):
            CountingDict.reads += 1
            return super().__getitem__(key)

    mapping = CountingDict({"model": None, **{f"k{i}": 1 for i in range(3000)}, "layers": []})
    assert key_hints.under_indented_keys((), mapping, ["model"]) == {"layers": "model"}
    assert CountingDict.reads <= len(mapping)
