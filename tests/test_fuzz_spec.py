"""Property-based fuzzing of the spec side (hypothesis), within a small CI budget.

Properties, for every input under the size bound (``MAX_TEXT`` characters):
- ``validate_text`` (and ``validate_source`` for dicts) never raises and answers in
  under a second;
- every issue has a code listed in ``kerapipe/spec/codes.py``, a message, and a position
  (line >= 1) unless it is documented as having none: an issue located at a ``--set``
  (line 0, the ``--set`` is its place), ``unreadable-file`` and ``no-such-file`` (a whole
  file or path), and every issue of data given as a dict (it has no lines);
- at most ``MAX_ISSUES`` issues and one summary per file, and every renderer prints them;
- a spec that validates means the same in its resolved form (``to_plain``), e.g. no
  source left empty by ``csv:`` alone (found by a long campaign of this file's inputs).

Inputs: random text, random bytes decoded, and grammar-aware mutations of the shipped
``pipelines/*.yaml``: a value replaced with a hostile one (huge integers and floats,
NUL, long strings, wrong kinds), a key deleted or duplicated, lines cut, copied or
swapped, and random ``--set`` overrides. Runs are derandomized and keep no example
database, so CI is reproducible; ``FUZZ_EXAMPLES`` sets the examples per property.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kerapipe.spec.codes import ISSUE_CODES
from kerapipe.spec.issues import MAX_ISSUES, format_path, render
from kerapipe.spec.typed import to_plain
from kerapipe.spec.validate import validate_data, validate_source, validate_text
from kerapipe.spec.yaml_loader import load_document

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = {path.name: path.read_text("utf-8") for path in sorted((ROOT / "pipelines").glob("*.yaml"))}
MAX_TEXT = 20_000  # characters: pipeline files are ~1 kB; the loader's own bound is 1 MB
NO_POSITION = {"unreadable-file", "no-such-file"}  # documented: about a whole file or path

FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "100")), deadline=1000,
                derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Scalars as YAML text: each is written into the file as it stands.
HOSTILE_SCALARS = [
    "9" * 5000, "-" + "9" * 4301, "1" + "0" * 400, "2" + "0" * 308, "0x" + "f" * 3000,
    "0o" + "7" * 5000, "0" * 6000 + "1", "1e400", "-1e400", "1e-400", ".nan", "-.inf", ".inf",
    "1" * 400, "18446744073709551616", "9223372036854775808", "-9223372036854775809",
    "4294967296", "0", "-1", "-0", "1.5", "1/255", "1/0", "1e308/1e-308", "0/0", "~", "null",
    "yes", "no", "on", "true", "false", '""', "''", '"\\0"', '"a\\0b"', '"\\u0000"', '"\\x01"',
    '"' + "x" * 5000 + '"', "x" * 5000, '"\\n"', '"é"', '"../../x"', '"/etc/passwd"',
    '"~/.ssh/id_rsa"', "[]", "{}", "[1, 2]", "[-1, -1]", "[0, 0]", "[" + "1, " * 300 + "1]",
    "{a: 1}", "[[[[[[1]]]]]]", "Dense", "Flatten", "Lambda", "accuracy", "adam", "mnist",
    '"' + "Qz" * 60 + '"', "&a 1", "*a", "!!python/object:os.system x", "[*a]",
]
KEYS = ["kerapipe", "name", "seed", "imports", "data", "source", "sample", "keras", "npz", "csv",
        "images", "split", "validation", "test", "preprocess", "rescale", "normalize", "reshape",
        "resize", "one_hot", "pad_sequences", "batch_size", "shuffle", "cache", "model", "layers",
        "loss", "optimizer", "learning_rate", "metrics", "train", "epochs", "early_stopping",
        "patience", "min_delta", "output", "dir", "top_k", "units", "layer", "vocabulary",
        "<<", "from_logits", "x" * 300]


class Raw(str):
    """A scalar already written as YAML text (placed as it stands)."""


def emit(value) -> str:
    """Plain data as one line of flow-style YAML; ``Raw`` scalars verbatim."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{emit_key(k)}: {emit(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(emit(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a YAML double-quoted scalar
    return repr(value)  # int, float: the loader bounded them already


def emit_key(key) -> str:
    return key if isinstance(key, Raw) else json.dumps(str(key))


def paths_of(value, path=()):
    """Every key path in plain data, the root first."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_of(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths_of(item, path + (index,))


def mutate_data(rng: random.Random, data, rounds: int):
    """Replace, delete or duplicate values of loaded data in place; return it."""
    for _ in range(rounds):
        paths = [p for p in paths_of(data) if p]
        if not paths:
            return data
        path = rng.choice(paths)
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        action = rng.random()
        if action < 0.6:
            parent[last] = Raw(rng.choice(HOSTILE_SCALARS))
        elif action < 0.75:
            del parent[last]
        elif action < 0.85 and isinstance(parent, dict):
            parent[Raw(rng.choice(KEYS))] = parent[last]  # an extra or repeated key
        elif action < 0.95:
            parent[last] = {Raw(rng.choice(KEYS)): parent[last]}  # one level deeper
        else:
            parent[last] = [parent[last]] * rng.randint(0, 3)
    return data


def mutate_lines(rng: random.Random, text: str, rounds: int) -> str:
    """Cut, copy, swap or splice lines, or insert characters: YAML structure breaks."""
    lines = text.split("\n")
    for _ in range(rounds):
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        action = rng.random()
        if action < 0.25:
            lines.insert(j, lines[i])  # a duplicated key, or a line out of place
        elif action < 0.45 and len(lines) > 1:
            del lines[i]
        elif action < 0.6:
            lines[i], lines[j] = lines[j], lines[i]
        elif action < 0.8:
            pos = rng.randint(0, len(lines[i]))
            lines[i] = lines[i][:pos] + rng.choice(
                ["{", "[", "]", "}", ":", ": ", "- ", "&a ", "*a", "!", "#", "'", '"', "\t", "\x00",
                 "\ufeff", "\r", "<<: ", "? ", "|", ">", "%YAML 1.1\n---\n", "---\n", "...\n",
                 "\\", "\u2028", rng.choice(HOSTILE_SCALARS)]) + lines[i][pos:]
        else:
            pos = rng.randint(0, len(lines[i]))
            lines[i] = lines[i][:pos] + " " + rng.choice(HOSTILE_SCALARS)
    return "\n".join(lines)


def random_override(rng: random.Random, data) -> str:
    """``KEY.PATH=VALUE``: a path of the file (or a near miss) and a hostile value."""
    paths = [p for p in paths_of(data) if p] or [("train", "epochs")]
    path = format_path(rng.choice(paths))
    action = rng.random()
    if action < 0.2:
        path += rng.choice([".name", ".units", "[0]", "[9999999999]", "[" + "9" * 5000 + "]",
                            ".from_logits", ".learning_rate", "..x", "[-1]", " ", ".x" * 100])
    elif action < 0.3:
        path = rng.choice(["", "=", "[0]", "a b", "é", "a.b[", "loss", "optimizer", "x" * 10_000])
    return f"{path}={rng.choice(HOSTILE_SCALARS + ['', '=', 'a=b', '{', '[', ': x'])}"


def check(result, positioned: bool = True) -> None:
    """The properties every validation result keeps (data given as a dict has no lines)."""
    issues = result.issues
    assert len(issues) <= MAX_ISSUES + 1
    for issue in issues:
        assert issue.code in ISSUE_CODES, issue.code
        assert issue.severity in ("error", "warning", "note")
        assert isinstance(issue.message, str) and issue.message
        if positioned and issue.code not in NO_POSITION and not issue.file.startswith("--set "):
            assert issue.line >= 1 and issue.column >= 1, issue.format()
        issue.format()
    for fmt in ("text", "json", "github"):
        render(issues, fmt, 1)
    if result.spec is not None:
        assert not result.errors
        assert validate_data(to_plain(result.spec), "p.yaml").spec == result.spec


def validate_timed(text: str, overrides=()):
    start = time.perf_counter()
    result = validate_text(text, "p.yaml", list(overrides))
    assert time.perf_counter() - start < 1.0, f"{len(text)} characters took over 1 s"
    check(result)
    return result


@FUZZ
@given(st.text(max_size=MAX_TEXT // 4))
def test_random_text_is_validated_without_raising(text):
    validate_timed(text)


@FUZZ
@given(st.binary(max_size=MAX_TEXT // 4), st.sampled_from(["utf-8", "latin-1", "utf-16"]))
def test_random_bytes_decoded_are_validated_without_raising(data, encoding):
    validate_timed(data.decode(encoding, "replace"))


@FUZZ
@given(st.sampled_from(sorted(PIPELINES)), st.randoms(use_true_random=False),
       st.integers(1, 6))
def test_mutated_values_of_shipped_pipelines_are_validated_without_raising(name, rng, rounds):
    data = mutate_data(rng, load_document(PIPELINES[name]).data, rounds)
    validate_timed(emit(data)[:MAX_TEXT])


@FUZZ
@given(st.sampled_from(sorted(PIPELINES)), st.randoms(use_true_random=False),
       st.integers(1, 8))
def test_mutated_lines_of_shipped_pipelines_are_validated_without_raising(name, rng, rounds):
    validate_timed(mutate_lines(rng, PIPELINES[name], rounds)[:MAX_TEXT])


@FUZZ
@given(st.sampled_from(sorted(PIPELINES)), st.randoms(use_true_random=False),
       st.integers(1, 4))
def test_random_overrides_are_validated_without_raising(name, rng, count):
    text = PIPELINES[name]
    data = load_document(text).data
    validate_timed(text, [random_override(rng, data) for _ in range(count)])


PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(10 ** 300, 10 ** 5000)
    | st.floats() | st.text(max_size=30) | st.sampled_from(KEYS),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=4),
    max_leaves=30)


@FUZZ
@given(st.sampled_from(sorted(PIPELINES)), st.randoms(use_true_random=False),
       st.lists(st.tuples(st.integers(0, 10 ** 6), PLAIN), max_size=4))
def test_dicts_with_hostile_values_are_validated_without_raising(name, rng, replacements):
    data = load_document(PIPELINES[name]).data
    paths = [p for p in paths_of(data) if p]
    for index, value in replacements:
        path = paths[index % len(paths)]
        parent = data
        try:
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier replacement removed that place
    start = time.perf_counter()
    result, _ = validate_source(data)
    assert time.perf_counter() - start < 1.0
    check(result, positioned=False)
