"""The types of Keras keyword arguments, derived from Keras for the catalogue.

Each typed argument gets a *fragment*: a small JSON Schema (draft 2020-12) subset
(``type``, ``enum``, bounds, ``items``/``minItems``/``maxItems``, ``anyOf``, and
``$ref`` to a shared type of ``arg_defs``), which ``validate`` checks and the JSON
Schema embeds verbatim. An argument left without a fragment accepts any value, so every
rule here errs on the side of no type: a wrong type refuses a valid file.

Where a type comes from, first rule that applies:
1. values Keras keeps in a constant (``catalog_keras_values.read_from_keras``), then
   ``EXPLICIT``: a small table for what Keras's docstrings do not say (commented why);
2. the argument's name: ``*activation`` (the catalogue's activations), ``*_initializer``,
   ``*_regularizer``, ``*_constraint`` and ``dtype`` take the shared ``arg_defs``
   (``catalog_keras_values.build_arg_defs``: the names ``keras.<module>.get`` accepts);
3. the rank-dependent windows of a ``1D``/``2D``/``3D`` layer (``kernel_size``,
   ``strides``, ``pool_size``, ``dilation_rate``): an int >= 1 or a list of exactly N;
4. the ``Args:`` text: its first clause (``Positive integer, ...``, ``Float between 0
   and 1.``, ``Boolean, ...``, ``string, either "valid" or "same"``);
5. the default's type (bool, int, float), when the text names no other kind of value.
A default of ``None`` (or a text that mentions ``None``) adds ``null``.

``check_defaults`` is the generator's guard against wrong parses: every plain default
must satisfy its argument's fragment.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

# Bounds of counts kerapipe itself uses for epochs and batches (spec/model.py MAX_EPOCHS).
MAX_COUNT = 1_000_000
UNTYPED = "untyped"  # an EXPLICIT value: leave the argument without a type

# Rank-dependent windows and steps of 1D/2D/3D layers (Keras's standardize_tuple: an
# int, or a tuple/list of exactly `rank` ints, each >= 1).
RANK_ARGS = ("kernel_size", "strides", "pool_size", "dilation_rate")

_COUNT = {"type": "integer", "minimum": 0, "maximum": MAX_COUNT}

# Family -> class ("*": any class of the family) -> argument -> fragment or UNTYPED.
EXPLICIT: dict[str, dict[str, dict[str, Any]]] = {
    "layers": {
        "*": {
            # "int, the dimension of the output space": Keras refuses filters <= 0.
            "filters": {"type": "integer", "minimum": 1},
            # The random image layers' strength: "a float" in some texts, yet a (min,
            # max) pair is accepted too (RandAugment, AugMix turn a float into one).
            "factor": UNTYPED,
        },
        # "Float", yet Keras casts a list as well (a scale and offset per channel).
        "Rescaling": {"scale": UNTYPED, "offset": UNTYPED},
        # "int", yet Keras's own tests normalize over a list of axes.
        "RMSNormalization": {"axis": UNTYPED},
    },
    "metrics": {
        # None with explicit `thresholds` (Keras's own tests write it).
        "AUC": {"num_thresholds": {"type": ["integer", "null"]}},
    },
    "optimizers": {
        "*": {
            # A number or a schedule mapping; OptimizerSpec types it itself (spec/model.py).
            "learning_rate": UNTYPED,
            # "A float value or a constant float tensor, or a callable": a file can write
            # only the float.
            **{name: {"type": "number"} for name in ("beta_1", "beta_2", "adam_beta_1",
                                                     "adam_beta_2")},
        },
        "SGD": {"momentum": {"type": "number", "minimum": 0}},  # "float hyperparameter >= 0"
    },
    "hub_layers": {
        # Its text lists six box formats; Keras's converters take more (rel_xywh, ...).
        "ImageConverter": {"bounding_box_format": UNTYPED},
    },
    # A schedule's step counts may be written in epochs, `decay_steps: {epochs: 10}`
    # (spec/keras_objects.py STEP_ARGUMENTS): kerapipe accepts that mapping too.
    "schedules": {
        "*": {name: {"anyOf": [{"type": "integer"}, {"type": "object"}]}
              for name in ("decay_steps", "first_decay_steps", "warmup_steps")},
        "PiecewiseConstantDecay": {"boundaries": {"type": "array", "items": {
            "anyOf": [{"type": "number"}, {"type": "object"}]}}},
    },
    # The offered callbacks: Keras's docstrings say "Integer"/"Float" but not the bounds
    # Keras (or kerapipe's run) needs; these were spec/callbacks.py's ARGUMENTS table.
    "callbacks": {
        "ReduceLROnPlateau": {
            "monitor": {"type": "string"},
            "factor": {"type": "number", "exclusiveMinimum": 0,
                       "exclusiveMaximum": 1},  # Keras refuses factor >= 1
            "patience": _COUNT,
            "verbose": {"type": "integer", "minimum": 0, "maximum": 2},
            "mode": {"enum": ["auto", "min", "max"]},
            "min_delta": {"type": "number", "minimum": 0},
            "cooldown": _COUNT,
            "min_lr": {"type": "number", "minimum": 0},
        },
        "TerminateOnNaN": {"raise_error": {"type": "boolean"}},
        "TensorBoard": {
            "log_dir": {"type": "string"},
            "histogram_freq": _COUNT,
            "write_graph": {"type": "boolean"},
            "write_images": {"type": "boolean"},
            "write_steps_per_second": {"type": "boolean"},
            "update_freq": {"anyOf": [{"enum": ["batch", "epoch"]},
                                      {"type": "integer", "minimum": 1,
                                       "maximum": MAX_COUNT}]},
            # kerapipe offers the int and list forms (Keras also parses "10,20").
            "profile_batch": {"anyOf": [_COUNT, {"type": "array", "items": _COUNT}]},
            "embeddings_freq": _COUNT,
            "embeddings_metadata": UNTYPED,  # refused by spec/callbacks.py: a file it reads
        },
        "CSVLogger": {
            "filename": {"type": "string"},
            "separator": {"type": "string"},
            "append": {"type": "boolean"},
        },
        "SwapEMAWeights": {"swap_on_epoch": {"type": "boolean"}},
    },
}

# Words in an argument's text that name another kind of value than its default's: the
# default's type is then not the argument's (`axis=-1`, "Integer or list of integers").
_OTHER_KINDS = re.compile(r"\b(list|lists|tuple|tuples|string|str|dict|mapping|sequence|"
                          r"array|shape|float|floats|int|integer|integers|tensor|none|or)\b")


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/$defs/{name}"}


def shared_def_for(arg: str) -> str | None:
    """The ``arg_defs`` name an argument takes by its name, or None."""
    if arg == "activation" or arg.endswith("_activation"):
        return "activation"
    for suffix in ("initializer", "regularizer", "constraint"):
        if arg.endswith("_" + suffix):
            return suffix
    if arg == "dtype":
        return "dtype"
    return None


def layer_rank(name: str) -> int | None:
    """N of a ``ND`` layer (``Conv2D``, ``MaxPooling3D``, ``Conv1DTranspose``)."""
    match = re.search(r"([123])D(Transpose)?$", name)
    return int(match.group(1)) if match else None


def _window(rank: int) -> dict[str, Any]:
    positive = {"type": "integer", "minimum": 1}
    return {"anyOf": [positive, {"type": "array", "items": positive,
                                 "minItems": rank, "maxItems": rank}]}


def _first_clause(text: str) -> str:
    return re.split(r"[.,;:(]", text.strip().lower(), maxsplit=1)[0].strip()


def _choices(text: str) -> list[str]:
    """The values a string argument's text lists: the quoted words of its first sentence
    that quotes any (not the "Defaults to" one: a default is no list of choices)."""
    for sentence in re.split(r"(?<=[.:])\s+", text):
        if re.match(r"(defaults? (to|is)|default:)", sentence.strip().lower()):
            continue
        # Keras writes `"valid"`, and sometimes `"valid`" (the backtick inside the quotes).
        words = re.findall(r"""["']([A-Za-z0-9_]+)`?["']""", sentence)
        if words:
            return list(dict.fromkeys(words))
    return []


# Words after the kind in a first clause that make it more than one kind of value
# ("int or tuple", "integer tensor", "float list").
_NOT_ONE_KIND = re.compile(r"\b(or|and|tuple|tuples|list|lists|tensor|tensors|array|arrays|"
                           r"dict|string|str|float|floats|int|ints|integer|integers|none|"
                           r"shape)\b")


def _is_clause(clause: str, kinds: str) -> bool:
    """Whether the clause names one kind of value at its start (``Positive integer``,
    ``A positive int specifying the number of groups``, ``String name of the layer``),
    and no other kind after it."""
    pattern = (r"^(a |an |optional |the )?(python |single |small |strictly )?"
               rf"({kinds})(\s+(?P<rest>.*))?$")
    match = re.match(pattern, clause)
    return match is not None and not _NOT_ONE_KIND.search(match.group("rest") or "")


# "Integer, or list of Integers": a second kind of value after the first clause.
_ALTERNATIVE = re.compile(r"\bor\b[^.]*?\b(list|lists|tuple|tuples|none|string|str|float|"
                          r"floats|int|ints|integer|integers|dict|array|tensor|callable|"
                          r"instance|object|bool|boolean)\b")


_MORE_KINDS = re.compile(r"\b(tuple|tuples|list|lists|array|arrays|dict|tensor|tensors|"
                         r"sequence)\b")


def from_text(text: str, default: Any) -> dict[str, Any] | None:
    """A fragment read from an argument's ``Args:`` text, or None when it says no type."""
    text = re.sub(r"^\(optional\)\s*", "", text.strip(), flags=re.I)  # metrics' texts
    # "Int or `None`.": the kind, and null (added for any text that mentions None).
    without_none = re.sub(r",?\s*\bor\s+`?None`?", "", text)
    clause = _first_clause(without_none)
    if _is_clause(clause, r"string|str"):
        return _string(text, default)
    sentence = without_none.split(". ", 1)[0].lower()
    # "Integer, or list of Integers", "Integer, tuple of integers, or None": more kinds
    # than the first clause names.
    if _ALTERNATIVE.search(sentence) or _MORE_KINDS.search(sentence[len(clause):]):
        return None
    if re.match(r"^(the )?(possible |maximum |total )?number of ", sentence):
        return {"type": "integer"}  # a count: "Number of attention heads."
    if _is_clause(clause, r"positive (integer|int)"):
        return {"type": "integer", "minimum": 1}
    if _is_clause(clause, r"(non-negative|nonnegative) (integer|int)"):
        return {"type": "integer", "minimum": 0}
    if _is_clause(clause, r"integer|int"):
        return {"type": "integer"}
    if re.match(r"^(a )?(float|scalar value) (between 0 and 1|in (range )?`?\[0, 1\])",
                sentence):
        return {"type": "number", "minimum": 0, "maximum": 1}
    listed = re.match(r"^(a )?list of (python )?(numbers|floats|integers|ints|strings)$", clause)
    if listed:
        kind = {"numbers": "number", "floats": "number", "integers": "integer",
                "ints": "integer", "strings": "string"}[listed.group(3)]
        return {"type": "array", "items": {"type": kind}}
    if _is_clause(clause, r"positive (float|number)"):
        return {"type": "number", "exclusiveMinimum": 0}
    # ("Number of attention heads" is a count above, not the kind "number".)
    if _is_clause(clause, r"float|floating point|floating point number|python number"):
        return {"type": "number"}
    if _is_clause(clause, r"boolean|bool"):
        return {"type": "boolean"}
    return None


def _string(text: str, default: Any) -> dict[str, Any] | None:
    """A string argument: its quoted values when the text lists two or more, else any
    string; nothing when the text also offers what a file writes otherwise (a tensor, a
    weights file's path, a callable)."""
    if re.search(r"\b(tensor|tensors|path|callable|instance)\b", text.lower()):
        return None
    choices = _choices(text)
    if len(choices) >= 2 and (default in choices or not isinstance(default, str)):
        return {"enum": choices}  # a default of None adds null
    if len(choices) <= 1:
        return {"type": "string"}
    return None


def from_default(text: str, default: Any) -> dict[str, Any] | None:
    """A fragment from the default's type, when the text names no other kind of value
    (a flag's text only in its first sentence: "If `True`, add offset of `beta` to
    normalized tensor" is still a flag)."""
    if isinstance(default, bool):
        sentence = text.split(". ", 1)[0].lower()
        if re.search(r"\b(list|tuple|string|str|int|integer|float|dict|none)\b", sentence):
            return None
        return {"type": "boolean"}
    if text and _OTHER_KINDS.search(text.lower()):
        return None
    if isinstance(default, int):
        return {"type": "integer"}
    if isinstance(default, float):
        return {"type": "number"}
    return None


def allow_null(fragment: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in fragment:
        return fragment  # the shared types say themselves whether null is one
    if "enum" in fragment:
        return {"enum": fragment["enum"] + [None]} if None not in fragment["enum"] else fragment
    if set(fragment) == {"type"}:
        kinds = fragment["type"] if isinstance(fragment["type"], list) else [fragment["type"]]
        return {"type": kinds + ["null"]} if "null" not in kinds else fragment
    if "anyOf" in fragment:
        return {"anyOf": fragment["anyOf"] + [{"type": "null"}]}
    return {"anyOf": [fragment, {"type": "null"}]}


def argument_fragment(family: str, class_name: str, arg: str, default: Any, text: str,
                      rank: int | None, from_keras: dict | None = None
                      ) -> dict[str, Any] | None:
    """The fragment of one argument, or None to leave it untyped (see the module doc).
    ``from_keras``: ``catalog_keras_values.read_from_keras``'s types, which come first."""
    tables = EXPLICIT.get(family, {})
    read = (from_keras or {}).get(family, {})
    for table in (read.get(class_name, {}), read.get("*", {}), tables.get(class_name, {}),
                  tables.get("*", {})):
        if arg in table:
            return None if table[arg] == UNTYPED else table[arg]
    shared = shared_def_for(arg)
    if shared is not None:
        return ref(shared)
    fragment = None
    if rank is not None and arg in RANK_ARGS:
        fragment = _window(rank)
    if fragment is None and text:
        fragment = from_text(text, default)
    if fragment is None:
        fragment = from_default(text, default)
    if fragment is None:
        return None
    if default is None or re.search(r"\bNone\b", text or ""):
        fragment = allow_null(fragment)
    return fragment


def signature_defaults(fn: Any) -> dict[str, Any]:
    """Each named parameter's default (``inspect.Parameter.empty`` when required)."""
    return {p.name: p.default for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def class_defaults(cls: type) -> dict[str, Any]:
    """The defaults of every ``__init__`` along the class chain (the nearest wins)."""
    defaults: dict[str, Any] = {}
    for klass in inspect.getmro(cls):
        init = klass.__dict__.get("__init__")
        if init is not None and inspect.isfunction(init):
            for name, value in signature_defaults(init).items():
                defaults.setdefault(name, value)
    return defaults


def typed_args(family: str, name: str, params: list[str], defaults: dict[str, Any],
               texts: dict[str, str], rank: int | None = None,
               from_keras: dict | None = None) -> dict[str, Any]:
    """The ``args`` of one catalogue entry: only the arguments whose type is known."""
    args = {}
    for arg in params:
        fragment = argument_fragment(family, name, arg, defaults.get(arg, inspect.Parameter.empty),
                                     texts.get(arg, ""), rank, from_keras)
        if fragment is not None:
            args[arg] = fragment
    return args


# --- the guard -------------------------------------------------------------------------

def satisfies(value: Any, fragment: dict[str, Any], defs: dict[str, Any]) -> bool:
    """Whether a plain value satisfies a fragment (kerapipe's reading: integer = an int,
    never a bool; number = int or float, never a bool)."""
    if "$ref" in fragment:
        return satisfies(value, defs[fragment["$ref"].rsplit("/", 1)[1]], defs)
    if "anyOf" in fragment and not any(satisfies(value, f, defs) for f in fragment["anyOf"]):
        return False
    if "enum" in fragment and value not in fragment["enum"]:
        return False
    if "type" in fragment:
        kinds = fragment["type"] if isinstance(fragment["type"], list) else [fragment["type"]]
        if not any(_is_kind(value, kind) for kind in kinds):
            return False
    if _is_kind(value, "number"):
        for key, ok in (("minimum", lambda b: value >= b), ("maximum", lambda b: value <= b),
                        ("exclusiveMinimum", lambda b: value > b),
                        ("exclusiveMaximum", lambda b: value < b)):
            if key in fragment and not ok(fragment[key]):
                return False
    if isinstance(value, (list, tuple)):
        if len(value) < fragment.get("minItems", 0) or len(value) > fragment.get("maxItems",
                                                                                 len(value)):
            return False
        if "items" in fragment and not all(satisfies(v, fragment["items"], defs) for v in value):
            return False
    return True


def _is_kind(value: Any, kind: str) -> bool:
    return {
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "null": value is None,
        "array": isinstance(value, (list, tuple)),
        "object": isinstance(value, dict),
    }[kind]


def is_plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(is_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def check_defaults(family: str, name: str, args: dict[str, Any], defaults: dict[str, Any],
                   defs: dict[str, Any]) -> list[str]:
    """One line per typed argument whose plain Keras default its fragment refuses."""
    problems = []
    for arg, fragment in args.items():
        default = defaults.get(arg, inspect.Parameter.empty)
        if default is inspect.Parameter.empty or not is_plain(default):
            continue
        if not satisfies(default, fragment, defs):
            problems.append(f"{family}.{name}.{arg}: default {default!r} does not satisfy "
                            f"{fragment}")
    return problems
