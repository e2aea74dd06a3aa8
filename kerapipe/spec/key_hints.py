"""Where a key that a section does not have belongs: another section, or under the key above.

Two mistakes make a known key unknown where it stands. It is in the wrong section
(`data.epochs`, a top-level `learning_rate`): the message names the section it lives in
(`train.epochs`, `optimizer.learning_rate`). Or it is indented too little, so YAML makes
it a sibling of the empty section it was meant to be under (`model:` then `layers:` in
the same column): that is indentation, and said so.

Where each key lives is read from the spec dataclasses (``schema.iter_keys``, the same
list the README's key reference shows), not from a table of its own; it is computed the
first time an unknown key is reported, so validating a good file costs nothing.
"""

from __future__ import annotations

import functools
from typing import Any, Collection

from kerapipe.spec.issues import Issue, Path, did_you_mean, format_path

Pattern = tuple  # tuple[str, ...]: dotted key parts, "[]" for a list item, "<name>" for any name
MAX_HOMES_SHOWN = 3
# A key another section has exactly is taken to belong there unless a key of this section
# is this close: `epoch` is `epochs` (0.91), while `epochs` is not `preprocess`, nor
# `loss` `blocks` (0.6, the did-you-mean's own cutoff).
NEAR_MISS = 0.8


def unknown_key_issue(key: Any, path: Path, known: Collection[str]) -> Issue:
    """The ``unknown-key`` issue of ``key`` in the section at ``path`` (keys ``known``,
    in the order the message lists them), with its hint (``unknown_key_hint``)."""
    return Issue("unknown-key", path + (key,), f"unknown key '{key}'."
                 f"{unknown_key_hint(key, path, known)} Expected one of: "
                 f"{', '.join(known)}.", at_key=True)


def unknown_key_hint(key: Any, path: Path, known: Collection[str]) -> str:
    """The hint (with a leading space) for ``key``, which the section at ``path`` (keys
    ``known``) does not have: the did-you-mean within the section when a key there is
    close, otherwise the section ``key`` belongs in (``""`` when there is neither)."""
    close = did_you_mean(key, known)
    elsewhere = belongs_elsewhere(key, path)
    if close and elsewhere and not _near_miss(key, known):
        return elsewhere
    return close or elsewhere


def _near_miss(key: str, known: Collection[str]) -> bool:
    import difflib  # only for an unknown key: not on the path of a valid file

    return any(difflib.SequenceMatcher(None, key.lower(), name.lower()).ratio() >= NEAR_MISS
               for name in known)


@functools.lru_cache(maxsize=1)
def _homes() -> dict[str, tuple[Pattern, ...]]:
    """Each documented key name -> the sections it is a key of, shallowest first."""
    from kerapipe.spec.schema import iter_keys  # schema imports the spec classes: only now

    homes: dict[str, list[Pattern]] = {}
    for dotted, *_ in iter_keys():
        parts = _pattern(dotted)
        if not parts[-1].startswith("<"):
            homes.setdefault(parts[-1], []).append(parts[:-1])
    return {key: tuple(sorted(found, key=len)) for key, found in homes.items()}


def _pattern(dotted: str) -> Pattern:
    parts: list[str] = []
    for part in dotted.split("."):
        if part.endswith("[]"):
            parts += [part[:-2], "[]"]
        else:
            parts.append(part)
    return tuple(parts)


def _matches(pattern: Pattern, path: Path) -> bool:
    if len(pattern) != len(path):
        return False
    return all(want == "<name>" or (want == "[]" if isinstance(got, int) else want == got)
               for want, got in zip(pattern, path))


def _shown(pattern: Pattern) -> str:
    return ".".join(pattern).replace(".[]", "[]")


def belongs_elsewhere(key: Any, path: Path) -> str:
    """A sentence (with a leading space) naming where ``key`` lives, when the section at
    ``path`` does not have it but another does; ``""`` when no section has it."""
    if not isinstance(key, str):
        return ""
    homes = [home for home in _homes().get(key, ()) if not _matches(home, path)]
    if not homes:
        return ""
    nearest = [home for home in homes if len(home) == len(homes[0])][:MAX_HOMES_SHOWN]
    if not nearest[0]:
        return (f" `{key}` is a top-level key, not a key of `{format_path(path)}`; move it "
                "to the top level of the file.")
    places = " or ".join(f"`{_shown(home).removesuffix('[]')}:`" for home in nearest)
    return f" `{key}` belongs in {places} ({_shown(nearest[0])}.{key}); move it there."


def under_indented_keys(path: Path, mapping: dict, known: Collection[str]) -> dict[str, str]:
    """Each key of ``mapping`` (the section at ``path``, in file order) that was indented
    too little -> the empty section it was meant to be under.

    Such a key is one the section does not have, below a key it has that is empty
    (`model:` with nothing after it) and is a section that has the key: YAML made it a
    sibling. Unknown keys in between do not break the run (they were under-indented too).
    One pass over the keys, so a file of many keys costs no more than reading them."""
    found: dict[str, str] = {}
    above = None  # the nearest key above that the section has
    for key in mapping:
        if key in known:
            above = key
        elif above is not None and mapping[above] is None and isinstance(key, str) and any(
                _matches(home, path + (above,)) for home in _homes().get(key, ())):
            found[key] = above
    return found


def under_indented_message(key: str, section: str, path: Path) -> str:
    """The message of ``bad-indentation`` for a key YAML read as a sibling of ``section``."""
    where = "a top-level key" if not path else f"a key of `{format_path(path)}`"
    return (f"`{key}` is a key of `{format_path(path + (section,))}`, but it is not indented "
            f"under `{section}:`, so YAML reads it as {where} (and `{section}:` as empty). "
            f"Indent it under `{section}:`.")
