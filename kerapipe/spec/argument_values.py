"""A Keras keyword argument's value checked against its type in the catalogue.

The catalogue (``keras_catalog.json``) gives each argument whose type is known a
*fragment*: a small subset of JSON Schema (``type``, ``enum``, ``minimum``/``maximum``
and their exclusive forms, ``items``/``minItems``/``maxItems``, ``anyOf`` and ``$ref``
into the shared ``arg_defs``), the same text the JSON Schema embeds. This module checks
one plain YAML value against one fragment and explains the first problem it finds as
one issue at the value (or at the list item) that is wrong: what happened, what the
argument takes, a did-you-mean for a mistyped choice, and ``Received: arg=...``.

JSON Schema's own rules apply: ``integer`` is a YAML int (never a bool), ``number`` an
int or a float (never a bool), and ``minimum``/``maximum`` bind numbers only. A bound
refuses NaN (it is neither above nor below anything), so ``.nan`` is refused exactly
where the fragment bounds the number.

An argument the catalogue leaves untyped is judged by its name only
(``untyped_argument_issue``): an activation argument takes an activation's name, and a
numeric one (``NUMERIC_BY_NAME``) never holds text.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from kerapipe.spec.issues import Issue, Path, did_you_mean, safe_repr
from kerapipe.spec.typed import describe_value, looks_numeric
from kerapipe.spec.yaml_loader import OversizedInteger

# Arguments Keras lower-cases before it checks them (keras.src.utils.argument_validation
# .standardize_padding, backend.standardize_data_format, ops.nn's pooling, UpSampling2D's
# `interpolation.lower()`), so `padding: SAME` works there: (owner or "*", argument).
CASE_INSENSITIVE = frozenset({("*", "padding"), ("*", "data_format"),
                              ("UpSampling2D", "interpolation")})

# A value outside one of these shared types has a code of its own (the issue codes that
# existed before arguments were typed).
DEF_CODES = {"activation": "unknown-activation"}

MAX_FRAGMENT_DEPTH = 16  # `$ref` chains and nesting; the catalogue's are a few levels
MAX_LISTED_CHOICES = 12  # a longer enum is shown by its first names and a count

_PYTHON_TYPES: dict[str, tuple] = {"integer": (int,), "number": (int, float),
                                   "string": (str,), "boolean": (bool,),
                                   "null": (type(None),), "array": (list, tuple),
                                   "object": (dict,)}
_WORDS = {"integer": ("an integer", "integers"), "number": ("a number", "numbers"),
          "string": ("a string", "strings"), "boolean": ("true or false", "booleans"),
          "null": ("null", "nulls"), "array": ("a list", "lists"),
          "object": ("a mapping", "mappings")}
_YAML_1_1_BOOLEANS = {"yes", "no", "on", "off", "y", "n"}


class _Problem:
    """The first thing wrong with a value: its code, where below the argument it is
    (``(1,)``: the list's second item), what to say, and a did-you-mean."""

    __slots__ = ("code", "where", "phrase", "hint", "value")

    def __init__(self, code: str, phrase: str, value: Any, hint: str = "",
                 where: tuple = ()) -> None:
        self.code, self.phrase, self.value, self.hint, self.where = (
            code, phrase, value, hint, where)


def argument_issue(owner: str, arg: str, value: Any, fragment: dict, defs: dict,
                   path: Path) -> Optional[Issue]:
    """The issue with ``value`` as argument ``arg`` of Keras class ``owner``, or ``None``.

    Args:
        owner: the Keras class name, for the message (``Conv2D``).
        arg: the argument's name.
        value: the plain value from the file (after block parameters are substituted).
        fragment: the argument's type (the catalogue's ``args[arg]``).
        defs: the catalogue's ``arg_defs``, which ``$ref`` names.
        path: the argument's key path; the issue's path adds a list index if an item
            is wrong.
    """
    fold = ("*", arg) in CASE_INSENSITIVE or (owner, arg) in CASE_INSENSITIVE
    problem = _first_problem(value, fragment, defs, fold, 0)
    if problem is None:
        return None
    at = f"{owner}.{arg}" if owner else arg
    at += "".join(f"[{index}]" for index in problem.where)
    if problem.code == "unknown-activation":  # worded as before arguments were typed
        return Issue("unknown-activation", path + problem.where, f"unknown activation "
                     f"{safe_repr(problem.value)}.{problem.hint}")
    received = f"Received: {arg}={safe_repr(value)}"
    if problem.code == "wrong-type" and not problem.where:
        received += f" ({describe_value(value)})"
    return Issue(problem.code, path + problem.where, f"{at} {problem.phrase}.{problem.hint} "
                 f"{received}")


def argument_issues(owner: str, kwargs: dict, fragments: dict, defs: dict, base: Path,
                    skip: Iterable[str] = ()) -> list[Issue]:
    """The issues of every argument in ``kwargs`` that ``fragments`` types (at
    ``base + (arg,)``); an argument without a fragment takes any value."""
    if not fragments:
        return []
    issues = []
    for arg, value in kwargs.items():
        fragment = fragments.get(arg)
        if fragment is not None and arg not in skip:
            issue = argument_issue(owner, arg, value, fragment, defs, base + (arg,))
            if issue is not None:
                issues.append(issue)
    return issues


# Where the catalogue leaves an argument untyped (Keras says too little: `factor` of the
# Random* layers, keras-hub's layers, the backbones), its name still tells what it never
# is: an activation argument takes an activation's name, and these arguments take
# numbers or lists of numbers in every layer that has them, never text or a mapping.
NUMERIC_BY_NAME = frozenset({
    "units", "filters", "kernel_size", "strides", "pool_size", "dilation_rate", "groups",
    "depth_multiplier", "rate", "dropout", "recurrent_dropout", "noise_shape", "output_dim",
    "input_dim", "num_heads", "key_dim", "value_dim", "epsilon", "momentum", "axis", "axes",
    "target_shape", "dims", "n", "size", "cropping", "output_padding", "output_size",
    "height", "width", "factor", "height_factor", "width_factor", "x_factor", "y_factor",
    "brightness_factor", "contrast_factor", "hue_factor", "saturation_factor", "value_range",
    "fill_value", "sigma", "seed", "stddev", "max_tokens", "num_bins", "num_oov_indices",
    "output_sequence_length", "ngrams", "max_value", "negative_slope", "threshold",
    "offset", "l1", "l2", "mean", "variance"})
_ACTIVATION = {"$ref": "#/$defs/activation"}


def untyped_argument_issue(owner: str, arg: str, value: Any, defs: dict, path: Path,
                           numeric: bool = True) -> Optional[Issue]:
    """The issue with an argument the catalogue does not type, judged by its name only
    (``numeric``: by ``NUMERIC_BY_NAME`` too, which holds for layers)."""
    if isinstance(value, str) and (arg == "activation" or arg.endswith("_activation")):
        return argument_issue(owner, arg, value, _ACTIVATION, defs, path)
    if numeric and arg in NUMERIC_BY_NAME and _holds_text(value):
        return Issue("wrong-type", path, f"{owner}.{arg} takes a number (or a list of "
                     "numbers), never text. Write the number without quotes. "
                     f"Received: {arg}={safe_repr(value)}")
    return None


def _holds_text(value: Any) -> bool:
    """Whether a value, or an item of it (at any depth), is a string or a mapping."""
    pending = [value]
    while pending:  # a loop, not recursion: a dict given to the API may nest deeply
        item = pending.pop()
        if isinstance(item, (str, dict)):
            return True
        if isinstance(item, (list, tuple)):
            pending += item
    return False


def describe(fragment: dict, defs: dict, plural: bool = False, depth: int = 0) -> str:
    """A fragment in words: ``an integer >= 1 or a list of 2 integers >= 1``."""
    if depth > MAX_FRAGMENT_DEPTH:
        return "values" if plural else "a value"
    if "$ref" in fragment:
        name = _ref_name(fragment)
        words = name.replace("_", " ")
        return words + "s" if plural else ("an " if words[:1] in "aeiou" else "a ") + words
    if "anyOf" in fragment:
        parts = [describe(branch, defs, plural, depth + 1) for branch in fragment["anyOf"]]
        return " or ".join(dict.fromkeys(parts))
    if "enum" in fragment:
        shown = [_show(choice) for choice in fragment["enum"][:MAX_LISTED_CHOICES]]
        more = len(fragment["enum"]) - len(shown)
        listed = ", ".join(shown) + (f" (and {more} more)" if more > 0 else "")
        return ("values among " if plural else "one of ") + listed
    types = fragment.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    if not types:
        return "values" if plural else "a value"
    parts = []
    for kind in types:
        if kind == "array":
            parts.append(_describe_list(fragment, defs, plural, depth))
            continue
        words = _WORDS.get(kind, (f"a {kind}", f"{kind}s"))[1 if plural else 0]
        if kind in ("integer", "number"):
            words += _bounds_in_words(fragment)
        parts.append(words)
    return " or ".join(parts)


def _describe_list(fragment: dict, defs: dict, plural: bool, depth: int) -> str:
    low, high = fragment.get("minItems"), fragment.get("maxItems")
    if low is not None and low == high:
        count = f"{low} "
    elif low is not None and high is not None:
        count = f"{low} to {high} "
    elif low:
        count = f"at least {low} "
    elif high is not None:
        count = f"at most {high} "
    else:
        count = ""
    items = fragment.get("items")
    what = describe(items, defs, True, depth + 1) if isinstance(items, dict) else "values"
    return ("lists of " if plural else "a list of ") + count + what


def _bounds_in_words(fragment: dict) -> str:
    low, high = fragment.get("minimum"), fragment.get("maximum")
    if low is not None and high is not None and not (
            "exclusiveMinimum" in fragment or "exclusiveMaximum" in fragment):
        return f" from {_number(low)} to {_number(high)}"
    rules = [("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
             ("exclusiveMaximum", "<")]
    said = [f"{sign} {_number(fragment[key])}" for key, sign in rules if key in fragment]
    return (" " + " and ".join(said)) if said else ""


def _number(bound: Any) -> str:
    if isinstance(bound, float) and bound.is_integer() and abs(bound) < 1e15:
        return str(int(bound))
    return repr(bound)


def _show(choice: Any) -> str:
    if choice is None:
        return "null"
    if isinstance(choice, bool):
        return "true" if choice else "false"
    return safe_repr(choice)


def _ref_name(fragment: dict) -> str:
    return str(fragment["$ref"]).rsplit("/", 1)[-1]


def _first_problem(value: Any, fragment: dict, defs: dict, fold: bool,
                   depth: int) -> Optional[_Problem]:
    """What is wrong with ``value`` under ``fragment`` (``None``: nothing)."""
    if depth > MAX_FRAGMENT_DEPTH or isinstance(value, OversizedInteger):
        return None  # a runaway fragment accepts; the loader reported a huge integer
    if "$ref" in fragment:
        name = _ref_name(fragment)
        target = defs.get(name)
        if not isinstance(target, dict):
            return None  # a type the catalogue does not define takes any value
        problem = _first_problem(value, target, defs, fold, depth + 1)
        if problem is not None and not problem.where:
            if problem.code == "unknown-value" and name in DEF_CODES:
                problem.code = DEF_CODES[name]
            elif problem.code == "wrong-type":
                problem.phrase = "takes " + describe(fragment, defs)
        return problem
    if "anyOf" in fragment:
        return _any_of_problem(value, fragment, defs, fold, depth)
    if "type" in fragment and not _has_type(value, fragment["type"]):
        return _Problem("wrong-type", "takes " + describe(fragment, defs), value,
                        _type_hint(value, fragment["type"]))
    if "enum" in fragment:
        problem = _enum_problem(value, fragment, defs, fold)
        if problem is not None:
            return problem
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _bounds_problem(value, fragment)
    if isinstance(value, (list, tuple)):
        return _list_problem(value, fragment, defs, fold, depth)
    return None


def _has_type(value: Any, types: Any) -> bool:
    for kind in [types] if isinstance(types, str) else types:
        if isinstance(value, _PYTHON_TYPES.get(kind, ())) and not (
                isinstance(value, bool) and kind in ("integer", "number")):
            return True
    return False


def _type_hint(value: Any, types: Any) -> str:
    kinds = [types] if isinstance(types, str) else list(types)
    if not isinstance(value, str):
        return ""
    if ("integer" in kinds or "number" in kinds) and looks_numeric(value):
        return " Write the number without quotes."
    if "boolean" in kinds and value.lower() in _YAML_1_1_BOOLEANS:
        return " Write true or false (YAML 1.2: 'yes'/'no'/'on'/'off' are strings)."
    return ""


def _same(a: Any, b: Any) -> bool:
    """Equal as YAML values: ``true`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _enum_problem(value: Any, fragment: dict, defs: dict, fold: bool) -> Optional[_Problem]:
    choices = fragment["enum"]
    if isinstance(value, str) or value is None:
        if value in choices:  # == is exact for text and null; `in` runs at C speed
            return None
    elif any(_same(value, choice) for choice in choices):
        return None
    words = [choice for choice in choices if isinstance(choice, str)]
    if isinstance(value, str):
        if fold and value.lower() in {word.lower() for word in words}:
            return None
        if words:
            return _Problem("unknown-value", "takes " + describe(fragment, defs), value,
                            did_you_mean(value, words))
    kinds = {type(c) for c in choices}
    if type(value) in kinds or (isinstance(value, (int, float)) and kinds & {int, float}
                                and not isinstance(value, bool) and bool not in kinds):
        return _Problem("unknown-value", "takes " + describe(fragment, defs), value)
    return _Problem("wrong-type", "takes " + describe(fragment, defs), value)


def _bounds_problem(value: float, fragment: dict) -> Optional[_Problem]:
    # `not (value >= bound)` rather than `value < bound`: NaN fails every bound.
    rules = [("minimum", "at least", lambda b: value >= b),
             ("exclusiveMinimum", "greater than", lambda b: value > b),
             ("maximum", "at most", lambda b: value <= b),
             ("exclusiveMaximum", "less than", lambda b: value < b)]
    for key, words, holds in rules:
        if key in fragment and not holds(fragment[key]):
            return _Problem("out-of-range", f"must be {words} {_number(fragment[key])}", value)
    return None


def _list_problem(value: Any, fragment: dict, defs: dict, fold: bool,
                  depth: int) -> Optional[_Problem]:
    low, high = fragment.get("minItems"), fragment.get("maxItems")
    if (low is not None and len(value) < low) or (high is not None and len(value) > high):
        return _Problem("out-of-range", "takes " + describe(fragment, defs), value)
    items = fragment.get("items")
    if not isinstance(items, dict):
        return None
    for index, item in enumerate(value):  # the first wrong item: one issue a list
        problem = _first_problem(item, items, defs, fold, depth + 1)
        if problem is not None:
            problem.where = (index,) + problem.where
            return problem
    return None


def _any_of_problem(value: Any, fragment: dict, defs: dict, fold: bool,
                    depth: int) -> Optional[_Problem]:
    """``None`` if a branch takes the value; else the problem of the one branch of the
    value's kind (a list for a list), or a wrong type naming every form."""
    near = []
    for branch in fragment["anyOf"]:
        problem = _first_problem(value, branch, defs, fold, depth + 1)
        if problem is None:
            return None
        if problem.code != "wrong-type" or problem.where:
            near.append(problem)
    whole = "takes " + describe(fragment, defs)
    if len(near) == 1:
        problem = near[0]
        if not problem.where and problem.code != "unknown-value":
            problem.phrase = whole  # `kernel_size: [3]`: say every form it may take
        return problem
    return _Problem("wrong-type", whole, value, _type_hint(value, _types_of(fragment, defs)))


def _types_of(fragment: dict, defs: dict) -> list:
    types: list = []
    pending, seen = [fragment], 0
    while pending and seen < 64:  # the branches' types, for the "without quotes" hint
        item, seen = pending.pop(), seen + 1
        if "$ref" in item and isinstance(defs.get(_ref_name(item)), dict):
            pending.append(defs[_ref_name(item)])
        pending += [b for b in item.get("anyOf", ()) if isinstance(b, dict)]
        kind = item.get("type")
        types += [kind] if isinstance(kind, str) else list(kind or ())
    return types
