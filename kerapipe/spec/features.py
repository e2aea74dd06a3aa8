"""Typed features (``data.features``, ``data.crosses``): what each column of a table is.

A feature is a column and its type: one of ``keras.utils.FeatureSpace``'s constructors
(``float_normalized``, ``string_categorical``, ...) with their arguments verbatim, or
``text`` with ``TextVectorization``'s. Beside the type, ``missing:`` says what a missing
value (a cell that is one of ``data.source.csv.missing_values``) becomes::

    features:
      island: string_categorical
      bill_length_mm: {float_normalized: {}, missing: mean}
      sex: {string_categorical: {}, missing: mode}
      notes: {text: {max_tokens: 2000, output_mode: tf_idf}}

The compile side builds them with FeatureSpace itself (``compiler/features.py``); this
module only declares and checks them, without TensorFlow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Optional

from kerapipe.spec.issues import Issue, Path, did_you_mean, safe_repr
from kerapipe.spec.typed import spec_field

MAX_FEATURES = 10_000   # typed columns of one table
MAX_BINS = 1_000_000    # num_bins, crossing_dim, max_tokens of a typed feature

# The FeatureSpace constructors kerapipe writes by name, each with its arguments (name ->
# what it takes) and what the column holds: ``number`` (float32), ``integer`` (whole
# numbers, int32 as FeatureSpace's integer inputs take them) or ``string``.
_MODES = ("one_hot", "int")
_COUNT = ("integer", 1, MAX_BINS)
# A lookup's vocabulary holds its out-of-vocabulary indices and at least one value (Keras
# refuses max_tokens 1, and a vocabulary of OOV indices alone fails when adapted).
_TOKENS = ("integer", 2, MAX_BINS)
# At least one out-of-vocabulary index: with none, a value the training split never
# showed (a rare category of the validation or test split, or any new value in
# ``predict``) stops the model with an assertion instead of being encoded as unknown.
_OOV = ("integer", 1, 1000)
FEATURE_TYPES: dict[str, tuple[str, dict[str, Any]]] = {
    "float": ("number", {}),
    "float_rescaled": ("number", {"scale": "number", "offset": "number"}),
    "float_normalized": ("number", {}),
    "float_discretized": ("number", {"num_bins": _COUNT, "bin_boundaries": "numbers",
                                     "output_mode": _MODES}),
    "integer_categorical": ("integer", {"max_tokens": _TOKENS, "num_oov_indices": _OOV,
                                        "output_mode": _MODES}),
    "string_categorical": ("string", {"max_tokens": _TOKENS, "num_oov_indices": _OOV,
                                      "output_mode": _MODES}),
    "integer_hashed": ("integer", {"num_bins": _COUNT, "output_mode": _MODES}),
    "string_hashed": ("string", {"num_bins": _COUNT, "output_mode": _MODES}),
}
_REQUIRED = {"float_discretized": ("num_bins",), "integer_hashed": ("num_bins",),
             "string_hashed": ("num_bins",)}
TEXT = "text"  # TextVectorization, with its Keras arguments
# Types whose values FeatureSpace turns into category indices, so that crosses take them.
CROSSABLE = ("integer_categorical", "string_categorical", "integer_hashed", "string_hashed",
             "float_discretized")
MISSING_POLICIES = ("refuse", "drop", "mean", "mode")
# What each kind of cell becomes in the model's raw input (``FeatureSpec.holds``):
# FeatureSpace's integer features take int32 inputs.
RAW_DTYPES = {"number": "float32", "integer": "int32", "string": "string"}
# The name that stands, in ``model.inputs``, for the vector of every feature that is not
# a model input of its own.
TABULAR_INPUT = "tabular"


@dataclass(frozen=True)
class FeatureSpec:
    """One typed column: its name, its type and Keras arguments, its missing-value policy.

    Args:
        name: the column's name in the header.
        type: a ``FEATURE_TYPES`` name, or ``text``.
        kwargs: the FeatureSpace constructor's (or TextVectorization's) arguments.
        missing: ``refuse`` (the default: an error naming the row and column), ``drop``
            (the row is left out), ``mean``/``mode`` (the training split's), or ``fill``.
        fill: the value of ``missing: {fill: VALUE}``.
    """

    name: str
    type: str
    kwargs: dict
    missing: str = "refuse"
    fill: Any = None

    @property
    def holds(self) -> str:
        """What the column's cells are: ``number``, ``integer`` or ``string``."""
        return "string" if self.type == TEXT else FEATURE_TYPES[self.type][0]

    @property
    def raw_dtype(self) -> str:
        """The dtype of the raw column in the model's input (``RAW_DTYPES``)."""
        return RAW_DTYPES[self.holds]

    @property
    def is_text(self) -> bool:
        return self.type == TEXT

    @property
    def input_shape(self) -> tuple:
        """One example's shape of the raw column in the model's input: ``(1,)`` as
        FeatureSpace's inputs take it, ``()`` for text (TextVectorization takes strings)."""
        return () if self.is_text else (1,)

    @property
    def token_ids(self) -> bool:
        """A text feature whose output is a sequence of token ids (``output_mode: int``,
        TextVectorization's default), which only a model input of its own can take."""
        return self.is_text and self.kwargs.get("output_mode", "int") == "int"

    def to_yaml(self) -> Any:
        out: dict[str, Any] = {self.type: dict(self.kwargs)}
        if self.missing == "fill":
            out["missing"] = {"fill": self.fill}
        elif self.missing != "refuse":
            out["missing"] = self.missing
        return out


def _type_names() -> list[str]:
    return [*FEATURE_TYPES, TEXT]


def parse_feature(name: str, value: Any, path: Path, issues: list[Issue]
                  ) -> Optional[FeatureSpec]:
    """One entry of ``data.features``: ``TYPE``, ``{TYPE: {args}}`` or ``{TYPE: {args},
    missing: POLICY}``."""
    if isinstance(value, str):
        value = {value: {}}
    if not isinstance(value, dict) or not value:
        issues.append(Issue("wrong-type", path, "a feature is its type, e.g. "
                            "`float_normalized`, or `{float_discretized: {num_bins: 8}, "
                            f"missing: drop}}`. Received: {safe_repr(value)}"))
        return None
    types = [key for key in value if key in FEATURE_TYPES or key == TEXT]
    others = [key for key in value if key not in types and key != "missing"]
    for key in others:
        issues.append(Issue("unknown-key", path + (key,), f"unknown key '{key}' of feature "
                            f"'{name}'.{did_you_mean(str(key), [*_type_names(), 'missing'])} "
                            f"A feature is one type ({', '.join(_type_names())}) with its "
                            "arguments, and optionally `missing:`.", at_key=True))
    if len(types) != 1:
        if not others:
            issues.append(Issue("wrong-type", path, f"feature '{name}' names "
                                f"{'no type' if not types else 'several types: ' + ', '.join(types)};"
                                f" give exactly one of {', '.join(_type_names())}."))
        return None
    (kind,) = types
    kwargs = value[kind]
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(kwargs, dict):
        issues.append(Issue("wrong-type", path + (kind,), f"the arguments of {kind} are a "
                            f"mapping, e.g. `{{{kind}: {{}}}}`. Received: {safe_repr(kwargs)}"))
        return None
    before = len(issues)
    _check_arguments(kind, kwargs, path + (kind,), issues)
    missing, fill = _parse_missing(value.get("missing", "refuse"), kind, path + ("missing",),
                                   issues)
    if len(issues) > before:
        return None
    return FeatureSpec(name, kind, dict(kwargs), missing, fill)


def _check_arguments(kind: str, kwargs: dict, path: Path, issues: list[Issue]) -> None:
    """The constructor's arguments: known names, their types and bounds."""
    if kind == TEXT:
        _check_text_arguments(kwargs, path, issues)
        return
    allowed = FEATURE_TYPES[kind][1]
    for arg, value in kwargs.items():
        rule = allowed.get(arg)
        if rule is None:
            choices = ", ".join(allowed) or "none"
            issues.append(Issue("unknown-argument", path + (arg,), f"unknown argument '{arg}' "
                                f"of {kind}.{did_you_mean(arg, list(allowed))} It takes: "
                                f"{choices}.", at_key=True))
            continue
        if arg == "num_oov_indices" and value == 0:
            issues.append(Issue("out-of-range", path + (arg,), f"{kind} needs at least one "
                                "out-of-vocabulary index: with num_oov_indices 0, a value the "
                                "training split never showed (a rare category of the "
                                "validation or test split, a new one in `predict`) stops the "
                                "model instead of being encoded as unknown. Use 1 (the "
                                "default) or more. Received: num_oov_indices=0"))
            continue
        problem = _argument_problem(rule, value)
        if problem:
            issues.append(Issue("wrong-type", path + (arg,), f"{kind}'s {arg} is {problem}. "
                                f"Received: {arg}={safe_repr(value)}"))
    tokens, oov = kwargs.get("max_tokens"), kwargs.get("num_oov_indices", 1)
    if kind.endswith("_categorical") and isinstance(tokens, int) and isinstance(oov, int) \
            and not isinstance(tokens, bool) and 2 <= tokens <= oov:
        issues.append(Issue("out-of-range", path + ("max_tokens",), f"{kind}'s max_tokens "
                            f"counts its {oov} out-of-vocabulary ind{'ex' if oov == 1 else 'ices'} "
                            "too, so it must exceed num_oov_indices to hold a value. "
                            f"Received: max_tokens={tokens}, num_oov_indices={oov}"))
    if kind == "float_discretized" and "num_bins" in kwargs and "bin_boundaries" in kwargs:
        issues.append(Issue("not-applicable", path + ("bin_boundaries",), "float_discretized "
                            "takes `num_bins` (boundaries learned from the training split) or "
                            "`bin_boundaries` (given; len(bin_boundaries) + 1 bins), not both. "
                            "Remove one.", at_key=True))
    for arg in _REQUIRED.get(kind, ()):
        if arg not in kwargs and not (arg == "num_bins" and "bin_boundaries" in kwargs):
            issues.append(Issue("missing-argument", path, f"{kind} needs `{arg}`, e.g. "
                                f"`{{{kind}: {{{arg}: 16}}}}`."))


# TextVectorization's arguments a text feature takes, each with its rule (as
# ``_argument_problem`` reads them; ``None``: Keras checks it). The layer's others are
# kerapipe's to set: its name (from the feature's), its dtype, and dense outputs
# (``sparse``/``ragged`` tensors cannot join the feature vector nor cross tf.data's cache).
_TEXT_MODES = ("int", "multi_hot", "count", "tf_idf")
TEXT_ARGUMENTS: dict[str, Any] = {
    "max_tokens": ("integer", 2, MAX_BINS),
    "standardize": (None, "lower_and_strip_punctuation", "lower", "strip_punctuation"),
    "split": ("whitespace", "character"),
    "ngrams": "ngrams",
    "output_mode": _TEXT_MODES,
    "output_sequence_length": ("integer", 1, 1_000_000),
    "pad_to_max_tokens": "boolean",
    "vocabulary": "tokens",
    "idf_weights": "numbers_any",
    "encoding": ("utf-8",),
}
_TEXT_SET_BY_KERAPIPE = ("name", "dtype", "sparse", "ragged", "input_dim", "input_shape",
                         "trainable", "autocast", "activity_regularizer")


def _check_text_arguments(kwargs: dict, path: Path, issues: list[Issue]) -> None:
    """A text feature's TextVectorization arguments: known names, their types and bounds,
    and the combinations Keras would refuse only once the data is read."""
    from kerapipe.spec.keras_objects import LayerSpec
    from kerapipe.spec.steps import vocabulary_issues  # noqa: PLC0415 (no cycle at import)

    bad = len(issues)
    for arg, value in kwargs.items():
        if arg in _TEXT_SET_BY_KERAPIPE:
            issues.append(Issue("unknown-argument", path + (arg,), f"text features do not "
                                f"take '{arg}': kerapipe names the layer after the feature "
                                "and gives the model dense tensors. Remove it.", at_key=True))
            continue
        rule = TEXT_ARGUMENTS.get(arg)
        if rule is None:
            issues.append(Issue("unknown-argument", path + (arg,), f"unknown argument "
                                f"'{arg}' of text (TextVectorization)."
                                f"{did_you_mean(arg, list(TEXT_ARGUMENTS))} It takes: "
                                f"{', '.join(TEXT_ARGUMENTS)}.", at_key=True))
            continue
        if arg == "vocabulary" and isinstance(value, str):
            continue  # vocabulary_issues says why a string is refused
        if value is None and arg == "split":
            issues.append(Issue("not-applicable", path + (arg,), "a text feature is one "
                                "string per example, which TextVectorization splits into "
                                "tokens; with `split: null` the whole text would be one "
                                "token. Use string_categorical for a column whose value is "
                                "one category, or split: whitespace (the default) or "
                                "character.", at_key=True))
            continue
        if value is None and arg in ("max_tokens", "standardize", "ngrams",
                                     "output_sequence_length"):
            continue  # Keras's default: no limit, no standardizing or splitting, ...
        problem = _argument_problem(rule, value)
        if problem:
            issues.append(Issue("wrong-type", path + (arg,), f"text's {arg} is {problem}. "
                                f"Received: {arg}={safe_repr(value)}"))
    issues.extend(vocabulary_issues(LayerSpec("TextVectorization", kwargs), path))
    if len(issues) > bad:
        return
    mode = kwargs.get("output_mode", "int")
    length = kwargs.get("output_sequence_length")
    if mode == "int" and length is None:
        issues.append(Issue("missing-argument", path, "a text feature of token ids "
                            "(output_mode int) needs `output_sequence_length`, the "
                            "length every text is padded or cut to, e.g. "
                            "`{text: {max_tokens: 20000, output_sequence_length: 200}}`."))
    if mode != "int" and length is not None:
        issues.append(Issue("not-applicable", path + ("output_sequence_length",),
                            f"output_sequence_length pads token ids (output_mode int); a "
                            f"{mode} vector has one entry per token of the vocabulary. "
                            "Remove it, or set `output_mode: int`.", at_key=True))
    if mode == "int" and kwargs.get("max_tokens") == 2:
        issues.append(Issue("out-of-range", path + ("max_tokens",), "text's max_tokens counts "
                            "the padding id 0 and the out-of-vocabulary id 1 of token ids "
                            "(output_mode int), so it is at least 3 to hold a token. "
                            "Received: max_tokens=2"))
    if kwargs.get("pad_to_max_tokens") and (mode == "int" or kwargs.get("max_tokens") is None):
        issues.append(Issue("not-applicable", path + ("pad_to_max_tokens",),
                            "pad_to_max_tokens pads a multi_hot, count or tf_idf vector to "
                            "`max_tokens` entries, so it needs max_tokens and one of those "
                            "output modes.", at_key=True))
    if mode == "tf_idf" and "vocabulary" in kwargs and "idf_weights" not in kwargs:
        issues.append(Issue("missing-argument", path, "a tf_idf text feature given its "
                            "vocabulary needs `idf_weights` too, one per token (adapting "
                            "learns both); or leave both out to adapt them on the training "
                            "split."))
    if "idf_weights" in kwargs and (mode != "tf_idf" or "vocabulary" not in kwargs):
        issues.append(Issue("not-applicable", path + ("idf_weights",), "idf_weights go with "
                            "a given vocabulary and `output_mode: tf_idf` (adapting learns "
                            "them otherwise).", at_key=True))


def _argument_problem(rule: Any, value: Any) -> Optional[str]:
    """Why ``value`` does not fit an argument's rule, or ``None``."""
    if rule == "number":  # float_rescaled's scale and offset: an inf or NaN makes every
        # value of the feature inf or NaN, and the loss with it
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
            and abs(value) < 3.4e38
        return None if ok else "a finite number (within float32's range)"
    if rule == "numbers":
        ok = isinstance(value, list) and value and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 3.4e38
            for v in value) and all(a < b for a, b in zip(value, value[1:]))
        return None if ok else "a list of increasing finite numbers"
    if rule == "numbers_any":
        ok = isinstance(value, list) and value and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 3.4e38
            for v in value)
        return None if ok else "a list of finite numbers"
    if rule == "boolean":
        return None if isinstance(value, bool) else "true or false"
    if rule == "tokens":
        ok = isinstance(value, list) and value and all(
            isinstance(v, str) and v for v in value) and len(set(value)) == len(value)
        return None if ok else "a list of distinct, non-empty tokens"
    if rule == "ngrams":
        def whole(v):
            return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 16
        ok = value is None or whole(value) or (isinstance(value, list) and value and
                                                all(whole(v) for v in value) and
                                                len(set(value)) == len(value))
        return None if ok else ("a whole number from 1 to 16 (n-grams up to n), or a list "
                                "of such lengths")
    if isinstance(rule, tuple) and rule and rule[0] == "integer":
        low, high = rule[1], rule[2]
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return None if ok else f"a whole number from {low} to {high:,}"
    return None if value in rule else ("one of " + ", ".join("null" if r is None else str(r) for r in rule))


def _parse_missing(value: Any, kind: str, path: Path, issues: list[Issue]
                   ) -> tuple[str, Any]:
    """``missing:``: a policy name, or ``{fill: VALUE}`` of the column's kind of value."""
    holds = "string" if kind == TEXT else FEATURE_TYPES[kind][0]
    if isinstance(value, dict) and list(value) == ["fill"]:
        fill = value["fill"]
        number = isinstance(fill, (int, float)) and not isinstance(fill, bool)
        fits = (isinstance(fill, str) if holds == "string" else
                number and (holds == "number" or float(fill).is_integer()))
        if not fits:
            wanted = {"string": "a string", "number": "a number",
                      "integer": "a whole number"}[holds]
            issues.append(Issue("wrong-type", path + ("fill",), f"a {kind} column's missing "
                                f"values are filled with {wanted}. Received: "
                                f"fill={safe_repr(fill)}"))
        if number and holds == "number" and not abs(float(fill)) < 3.4e38:
            issues.append(Issue("out-of-range", path + ("fill",), "the fill value is beyond "
                                "float32. Received: fill=" + safe_repr(fill)))
        if fits and holds == "integer":
            # -2**31 is integer_categorical's token for unseen values (compiler/features.py)
            low = -2**31 + 1 if kind == "integer_categorical" else -2**31
            if not low <= fill <= 2**31 - 1:
                issues.append(Issue("out-of-range", path + ("fill",), f"{kind} holds "
                                    "int32 whole numbers (from -2**31 to 2**31-1), and so "
                                    f"does its fill. Received: fill={safe_repr(fill)}"))
            fill = int(fill)  # 3.0 fills as 3: the cell text tf.data parses as an int32
        return "fill", fill
    if value not in MISSING_POLICIES:
        issues.append(Issue("unknown-value", path, "missing is one of "
                            f"{', '.join(MISSING_POLICIES)}, or `{{fill: VALUE}}`."
                            f"{did_you_mean(str(value), MISSING_POLICIES) if isinstance(value, str) else ''} "
                            f"Received: missing={safe_repr(value)}"))
        return "refuse", None
    if value == "mean" and holds != "number":
        issues.append(Issue("not-applicable", path, f"`missing: mean` fills a column of "
                            f"numbers; {kind} holds {holds}s. Use `mode` (the most frequent "
                            "value) or `{fill: VALUE}`."))
    return value, None


@dataclass(frozen=True)
class FeatureSet:
    """``data.features``: the typed columns, in the file's order."""

    features: tuple[FeatureSpec, ...]

    @classmethod
    def from_yaml(cls, value: Any, path: Path, issues: list[Issue]) -> Optional["FeatureSet"]:
        if not isinstance(value, dict) or not value:
            issues.append(Issue("wrong-type", path, "data.features maps each column to its "
                                "type, e.g. `{age: float_normalized, city: "
                                f"string_categorical}}`. Received: {safe_repr(value)}"))
            return None
        if len(value) > MAX_FEATURES:
            issues.append(Issue("out-of-range", path, f"{len(value):,} features, more than "
                                f"the {MAX_FEATURES:,} kerapipe reads from a table."))
            return None
        parsed = [parse_feature(str(name), entry, path + (name,), issues)
                  for name, entry in value.items()]
        if any(feature is None for feature in parsed):
            return None
        return cls(tuple(parsed))

    def __iter__(self):
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    def names(self) -> list[str]:
        return [feature.name for feature in self.features]

    def get(self, name: str) -> Optional[FeatureSpec]:
        return next((f for f in self.features if f.name == name), None)

    def to_yaml(self) -> Any:
        return {feature.name: feature.to_yaml() for feature in self.features}

    @staticmethod
    def json_schema() -> dict:
        text_args = list(TEXT_ARGUMENTS)
        variants: list[dict] = [{"enum": list(FEATURE_TYPES)}]
        for kind, (_, args) in FEATURE_TYPES.items():
            variants.append(_variant(kind, {"type": "object", "properties":
                                            {a: {} for a in args}, "additionalProperties": False}))
        variants.append(_variant(TEXT, {"type": "object", "properties":
                                        {a: {} for a in text_args},
                                        "additionalProperties": False}))
        return {"type": "object", "additionalProperties": {"anyOf": variants},
                "description": "Each column's type: a keras.utils.FeatureSpace constructor "
                "or `text` (TextVectorization), with its arguments, and `missing:`."}


def _variant(kind: str, arguments: dict) -> dict:
    missing = {"anyOf": [{"enum": list(MISSING_POLICIES)},
                         {"type": "object", "properties": {"fill": {}}, "required": ["fill"],
                          "additionalProperties": False}]}
    return {"type": "object", "properties": {kind: {"anyOf": [arguments, {"type": "null"}]},
                                             "missing": missing},
            "required": [kind], "additionalProperties": False}


@dataclass(frozen=True)
class CrossSpec:
    """A feature cross (``keras.utils.FeatureSpace.cross``): the categories of several
    features combined, hashed into ``crossing_dim`` bins."""

    # Two: FeatureSpace crosses with keras.layers.HashedCrossing, which takes a pair.
    feature_names: list[str] = spec_field(doc="The two crossed features, each a "
                                          "categorical, hashed or discretized feature of "
                                          "data.features.", min_items=2, max_items=2)
    crossing_dim: int = spec_field(doc="Hashing bins of the cross.", ge=1, le=MAX_BINS)
    output_mode: Literal["one_hot", "int"] = spec_field("one_hot", "`one_hot` (a vector "
                                                        "in the model's input) or `int`.")


# Names kerapipe gives layers beside the features' own inputs: the vector of the features
# (``tabular``, also its meaning in ``model.inputs``), the encoder model (``features``) and
# the inference model's softmax/sigmoid (``probabilities``). A feature of one of these names
# would give the saved model two layers of one name, which Keras refuses.
RESERVED_NAMES = {TABULAR_INPUT: "the vector of the features (and its name in model.inputs)",
                  "features": "the model that encodes the features",
                  "probabilities": "the saved model's softmax or sigmoid"}
# What TensorFlow takes in a layer's name (a cross's layer is named after its features,
# ``a_X_b``): letters, digits, ``_ . -``, and not ``_`` or ``-`` first.
LAYER_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.-]*")


def _name_issues(features: FeatureSet, crosses: list, path: Path) -> list[Issue]:
    """Feature names the saved model can take: each is the name of its input there."""
    issues = []
    cross_names = {"_X_".join(c.feature_names): c for c in crosses or ()
                   if getattr(c, "feature_names", None)}
    for feature in features:
        at = path + ("features", feature.name)
        if "/" in feature.name:
            issues.append(Issue("bad-name", at, f"feature '{feature.name}' names the saved "
                                "model's input of its column, and Keras refuses '/' in an "
                                "input's name. Rename the column (and the feature) without "
                                "'/'.", at_key=True))
        elif feature.name in RESERVED_NAMES:
            issues.append(Issue("duplicate-name", at, f"'{feature.name}' is the name of "
                                f"{RESERVED_NAMES[feature.name]} in the saved model, so a "
                                "feature cannot have it too. Rename the column (and the "
                                "feature).", at_key=True))
        elif feature.name in cross_names:
            issues.append(Issue("duplicate-name", at, f"'{feature.name}' is also the name of "
                                "the cross of "
                                f"{' and '.join(cross_names[feature.name].feature_names)} "
                                "(FeatureSpace names a cross a_X_b). Rename the column (and "
                                "the feature).", at_key=True))
    for index, cross in enumerate(crosses or ()):
        for position, name in enumerate(getattr(cross, "feature_names", None) or ()):
            if features.get(name) is not None and not LAYER_NAME.fullmatch(name):
                issues.append(Issue("bad-name", path + ("crosses", index, "feature_names",
                                                        position),
                                    f"FeatureSpace names a cross's layer after its features "
                                    f"('{'_X_'.join(cross.feature_names)}'), and a layer "
                                    "name takes only letters, digits and _ . - (not _ or - "
                                    f"first); '{name}' has others. Rename the column (and "
                                    "the feature) to cross it."))
    return issues


def feature_issues(features: Optional[FeatureSet], crosses: list, source: Any,
                   model_inputs: Optional[list], steps: list = (),
                   path: Path = ("data",)) -> list[Issue]:
    """What ``data.features`` and ``data.crosses`` ask of the rest of the file: a CSV
    source (that lists no ``features`` of its own: one place lists them), no label or
    id column among them, crosses of crossable features, and a place for each feature in
    the model's inputs (a text feature of token ids is an input of its own); each
    feature's type is its preprocessing, so only label steps stay in data.preprocess."""
    issues: list[Issue] = []
    if features is None:
        for index, _ in enumerate(crosses or ()):
            issues.append(Issue("not-applicable", path + ("crosses", index), "crosses "
                                "combine typed features: declare them in data.features "
                                "first.", at_key=True))
        return issues
    csv = getattr(source, "csv", None)
    if csv is None:
        kind = getattr(source, "kind", "?") if source is not None else "?"
        issues.append(Issue("not-applicable", path + ("features",), "typed features are the "
                            f"columns of a table (data.source.csv), not of data.source.{kind}. "
                            "Use a CSV source, or remove data.features.", at_key=True))
    else:
        if csv.features is not None:
            issues.append(Issue("not-applicable", ("data", "source", "csv", "features"),
                                "the features are listed once: data.features names and types "
                                "them, so data.source.csv.features cannot list them too. "
                                "Remove data.source.csv.features.", at_key=True))
        for name, role in [*((label, "label") for label in csv.label_columns),
                           (csv.id_column, "id column")]:
            if name is not None and features.get(name) is not None:
                issues.append(Issue("not-applicable", path + ("features", name), f"'{name}' "
                                    f"is the {role} (data.source.csv), so it cannot also be a "
                                    "feature. Remove it from data.features.", at_key=True))
    issues.extend(_name_issues(features, crosses, path))
    spaces = " \t\n\r\x0b\x0c"  # ASCII, as tf.data strips them (csv_typed.ASCII_SPACES)
    tokens = {str(t).strip(spaces) for t in getattr(csv, "missing_values", None) or ()}
    for feature in features:
        if feature.missing == "fill" and feature.holds == "string" \
                and str(feature.fill).strip(spaces) in tokens:
            issues.append(Issue("not-applicable", path + ("features", feature.name, "missing",
                                                          "fill"),
                                f"the fill {safe_repr(feature.fill)} is itself one of "
                                "data.source.csv.missing_values, so the missing cells would "
                                "become a category of their own. Fill them with a value that "
                                "does not mean missing, e.g. `{fill: unknown}`, or use "
                                "`missing: mode`."))
    from kerapipe.spec.steps import step_kind

    for index, step in enumerate(steps or ()):
        kind = step_kind(step.kind) if step is not None else None  # None: refused already
        if kind is not None and kind.stage in ("layer", "load"):
            issues.append(Issue("not-applicable", path + ("preprocess", index, step.kind),
                                f"with data.features, each feature's type is its "
                                f"preprocessing, so the {step.kind} step has nothing to work "
                                "on (only label steps such as one_hot apply). Give the "
                                "feature the type that does it (e.g. float_normalized, "
                                "float_rescaled, text), or put a layer in model.layers.",
                                at_key=True))
    for index, cross in enumerate(crosses or ()):
        for position, name in enumerate(getattr(cross, "feature_names", None) or ()):
            at = path + ("crosses", index, "feature_names", position)
            feature = features.get(name)
            if name in (getattr(cross, "feature_names", None) or ())[:position]:
                issues.append(Issue("not-applicable", at, f"the cross names '{name}' twice; "
                                    "a cross combines two different features (a feature "
                                    "crossed with itself adds nothing to it)."))
            elif feature is None:
                issues.append(Issue("unknown-feature", at,
                                    f"the cross names '{name}', which data.features does not "
                                    f"declare.{did_you_mean(name, features.names())}"))
            elif feature.type not in CROSSABLE:
                issues.append(Issue("not-applicable", at,
                                    f"'{name}' is {feature.type}; a cross combines "
                                    f"categories: {', '.join(CROSSABLE)} features."))
    inputs = list(model_inputs or [])
    if inputs:
        for name in inputs:
            if name != TABULAR_INPUT and features.get(name) is None:
                issues.append(Issue("unknown-feature", ("model", "inputs"), f"model input "
                                    f"'{name}' is neither a feature of data.features nor "
                                    f"`{TABULAR_INPUT}` (the vector of the other features)."
                                    f"{did_you_mean(name, [*features.names(), TABULAR_INPUT])}",
                                    at_key=True))
        rest = [f.name for f in features if f.name not in inputs]
        if rest and TABULAR_INPUT not in inputs:
            issues.append(Issue("not-applicable", ("model", "inputs"), f"the features "
                                f"{', '.join(rest[:5])}{' ...' if len(rest) > 5 else ''} are "
                                "no model input of their own, so they form the vector "
                                f"`{TABULAR_INPUT}`, which model.inputs must name too. Add "
                                f"`{TABULAR_INPUT}` to model.inputs.", at_key=True))
    alone = len(features) == 1 and not inputs  # its token ids are the model's one input
    for feature in features:
        if feature.token_ids and feature.name not in inputs and not alone:
            issues.append(Issue("not-applicable", path + ("features", feature.name),
                                f"text feature '{feature.name}' gives a sequence of token ids "
                                "(output_mode int), which cannot join the other features in "
                                "one vector. Make it a model input of its own (model.inputs: "
                                f"[{feature.name}, {TABULAR_INPUT}]) and wire an Embedding "
                                "to it, or set `output_mode: tf_idf` (or multi_hot, count) "
                                "for a vector.", at_key=True))
    return issues
