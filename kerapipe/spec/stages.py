"""Fine-tuning stages (``train.stages``): later stages continue the same model and data.

The keras.io transfer-learning recipe as a list: freeze the backbone and train the head,
then unfreeze and train everything at a low learning rate. Each stage names what it trains
(``trainable``) and may change the optimizer (a partial mapping merged over the file's
``optimizer``) and early stopping (merged over ``train.early_stopping``, or ``false``).

The rules live here, once: which node a stage trains (``stage_trains``), a stage's
optimizer and early stopping (``stage_optimizer``, ``stage_early_stopping``), how
``train.epochs`` relates to the stages (``resolve_stage_epochs``: their sum), and the
cross-key checks (``stage_issues``, called by ``validate``). The compile side
(``compiler/stages.py``) applies a stage to the Keras model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Union

from kerapipe.spec.issues import Issue, Path, did_you_mean, safe_repr
from kerapipe.spec.typed import parse, parse_spec, spec_field, to_plain

MAX_STAGES = 100  # far above any recipe; each stage is one more compile of the model
_MAX_EPOCHS = 1_000_000  # spec/model.py MAX_EPOCHS (that module imports this one)
_TRAINABLE_RULE = ("`all`, a list of names (layers' `name:`, block uses, backbones), or "
                   "`{except: [names]}`")


@dataclass(frozen=True)
class TrainableSpec:
    """What a stage trains: `all`, a list of names, or `{except: [names]}` (every
    layer but those). A name is a layer's `name:`, a block use's name (all of its
    layers) or a backbone's `name:`; layers written `trainable: false` stay frozen."""

    names: tuple[str, ...] = ()
    exclude: bool = True  # True: every layer but `names` (`all`: none excluded)

    @classmethod
    def from_yaml(cls, value: Any, path: Path, issues: list[Issue]) -> "TrainableSpec | None":
        if value == "all":
            return cls((), True)
        exclude = isinstance(value, dict)
        if exclude:
            if set(value) != {"except"}:
                issues.append(Issue("wrong-type", path, f"a stage's trainable is "
                                    f"{_TRAINABLE_RULE}. Received: {safe_repr(value)}"))
                return None
            value, path = value["except"], path + ("except",)
        if not isinstance(value, list) or not value:
            issues.append(Issue("wrong-type", path, f"a stage's trainable is {_TRAINABLE_RULE}; "
                                "a list needs at least one name. Received: "
                                f"{safe_repr(value)}"))
            return None
        bad = [i for i, name in enumerate(value) if not isinstance(name, str) or not name]
        for index in bad:
            issues.append(Issue("wrong-type", path + (index,), "a name in trainable is the "
                                "text of a layer's or block use's `name:`. Received: "
                                f"{safe_repr(value[index])}"))
        return None if bad else cls(tuple(value), exclude)

    @staticmethod
    def json_schema() -> dict:
        names = {"type": "array", "items": {"type": "string"}, "minItems": 1}
        return {"anyOf": [{"const": "all"}, names,
                          {"type": "object", "properties": {"except": names},
                           "required": ["except"], "additionalProperties": False}],
                "description": "`all`, a list of layer or block-use names, or "
                               "`{except: [names]}`."}

    def to_yaml(self) -> Any:
        if self.exclude:
            return "all" if not self.names else {"except": list(self.names)}
        return list(self.names)

    @property
    def everything(self) -> bool:
        return self.exclude and not self.names


@dataclass(frozen=True)
class StageSpec:
    """One fine-tuning stage: how many epochs, what trains, and optional overrides."""

    epochs: int = spec_field(doc="Epochs of this stage.", ge=1, le=_MAX_EPOCHS)
    trainable: TrainableSpec = spec_field(
        TrainableSpec(), "`all`, a list of names (a layer's `name:`, a block use, a "
        "backbone) or `{except: [names]}`; the other layers are frozen in this stage.")
    optimizer: Optional[dict[str, Any]] = spec_field(
        None, "Keys merged over the file's `optimizer` for this stage, e.g. "
        "`{learning_rate: 1.0e-5}`; another `name` starts from that optimizer's defaults.")
    early_stopping: Union[bool, dict[str, Any], None] = spec_field(
        None, "Keys merged over `train.early_stopping` for this stage, or `false` to "
        "train it without early stopping. Defaults to `train.early_stopping`.")

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        early = values.get("early_stopping")
        if early is True:
            issues.append(Issue("wrong-type", path + ("early_stopping",), "a stage's "
                                "early_stopping is a mapping of the keys it changes, or "
                                "`false` to turn it off; `true` says neither. Received: "
                                "early_stopping=true"))
        elif isinstance(early, dict):
            from kerapipe.spec.model import EarlyStoppingSpec

            parse_spec(EarlyStoppingSpec, early, path + ("early_stopping",), issues)
        optimizer = values.get("optimizer")
        if isinstance(optimizer, dict) and "kwargs" in optimizer:
            issues.append(Issue("unknown-key", path + ("optimizer", "kwargs"), "write the "
                                "optimizer's arguments beside `name`, as in `optimizer:`.",
                                at_key=True))


def resolve_stage_epochs(values: dict, path: Path, issues: list[Issue]) -> None:
    """With stages, ``train.epochs`` is the sum of their epochs: filled in when the file
    leaves it out (so spec.yaml says it), refused when it says another number."""
    stages = values.get("stages")
    if not stages or any(stage is None for stage in stages):
        return  # none, or a stage refused already
    total = sum(stage.epochs for stage in stages)
    if total > _MAX_EPOCHS:
        issues.append(Issue("out-of-range", path + ("stages",), f"the stages add up to "
                            f"{total:,} epochs; a run trains at most {_MAX_EPOCHS:,}."))
        return
    if "epochs" not in values:
        values["epochs"] = total
        return
    written = values["epochs"]
    if written is None:
        return  # refused already
    elif written != total:
        added = " + ".join(str(stage.epochs) for stage in stages)
        issues.append(Issue("stage-epochs", path + ("epochs",), "with stages, a run trains "
                            "the sum of their epochs ("
                            + (f"{added} = {total}" if len(stages) > 1 else str(total))
                            + f"), but train.epochs says {written}. Remove "
                            f"train.epochs, or write {total}. Received: epochs={written}"))


# --- the rules the compile side applies ------------------------------------------------

def use_names(nodes: Any) -> set[str]:
    """The names of the block uses that ``nodes`` come from (``stage1``; ``stage1.2``
    for the second repeat; nested ``stage1.inner``): the scopes of their node names."""
    found: set[str] = set()
    for node in nodes:
        if node.use:
            parts = node.name.split(".")
            found.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return found


def stage_trains(node: Any, trainable: TrainableSpec, uses: set[str]) -> bool:
    """Whether ``node`` trains in a stage: named (itself, or a block use it belongs to)
    or not, as ``trainable`` asks; a node written ``trainable: false`` never trains."""
    if node.trainable is False:
        return False
    named = any(node.name == name or (name in uses and node.name.startswith(name + "."))
                for name in trainable.names)
    return named != trainable.exclude


def stage_optimizer(spec: Any, stage: StageSpec, path: Path = (),
                    issues: Optional[list[Issue]] = None) -> Any:
    """The stage's ``OptimizerSpec``: its keys over the file's ``optimizer`` (the file's
    own when it has none); another optimizer ``name`` starts from that one's defaults.
    ``None`` (problems in ``issues``) when the merged mapping is refused."""
    from kerapipe.spec.model import OptimizerSpec

    written = stage.optimizer
    if not written:
        return spec.optimizer
    base = to_plain(spec.optimizer)
    if "name" in written and _canonical(written["name"]) != _canonical(base["name"]):
        merged = dict(written)
    else:
        merged = {**base, **written}
    return parse(OptimizerSpec, merged, path, issues if issues is not None else [])


def _canonical(name: Any) -> Any:
    from kerapipe.spec.catalog import load_catalog

    entry = load_catalog().optimizers.get(name) if isinstance(name, str) else None
    return entry.name if entry is not None else name


def stage_early_stopping(train: Any, stage: StageSpec) -> Any:
    """The stage's ``EarlyStoppingSpec``, or ``None`` when it trains without: its keys
    over ``train.early_stopping`` (alone when the file has none), ``false`` for none,
    absent for the file's."""
    from kerapipe.spec.model import EarlyStoppingSpec

    if stage.early_stopping is False:
        return None
    if not isinstance(stage.early_stopping, dict):
        return train.early_stopping
    base = to_plain(train.early_stopping) if train.early_stopping is not None else {}
    return parse(EarlyStoppingSpec, {**base, **stage.early_stopping}, (), [])


# --- the checks across keys (validate) -------------------------------------------------

def stage_issues(spec: Any) -> list[Issue]:
    """Each stage's names against the model, that it trains something, its merged
    optimizer, and the metric its early stopping watches."""
    from kerapipe.spec.checks import monitor_issues
    from kerapipe.spec.graph import model_nodes

    stages = spec.train.stages
    if not stages:
        return []
    issues: list[Issue] = []
    nodes = model_nodes(spec)
    uses = use_names(nodes)
    known = sorted({node.name for node in nodes} | uses)
    for index, stage in enumerate(stages):
        path = ("train", "stages", index)
        where = path + ("trainable",) + (("except",) if stage.trainable.names
                                         and stage.trainable.exclude else ())
        unknown = False
        for at, name in enumerate(stage.trainable.names):
            if name not in known:
                unknown = True
                issues.append(Issue("unknown-stage-layer", where + (at,), f"'{name}' names no "
                                    f"layer, block use or backbone of the model."
                                    f"{did_you_mean(name, known)} Give the layer a `name:` "
                                    f"and use it here. Names: {', '.join(known[:12])}"
                                    + (", ..." if len(known) > 12 else "")))
        if not unknown and not any(stage_trains(node, stage.trainable, uses) for node in nodes):
            issues.append(Issue("stage-trains-nothing", path + ("trainable",), "this stage "
                                "leaves every layer frozen, so it would train nothing. Name "
                                "a layer to train (layers written `trainable: false` stay "
                                "frozen in every stage)."))
        stage_optimizer(spec, stage, path + ("optimizer",), issues)
        early = stage_early_stopping(spec.train, stage)
        if isinstance(stage.early_stopping, dict) and early is not None:
            written = "monitor" in stage.early_stopping
            issues += monitor_issues(spec, early.monitor, path + ("early_stopping",) + (
                ("monitor",) if written else ()), "" if written else
                " (from train.early_stopping)")
    return issues


__all__ = ["StageSpec", "TrainableSpec", "resolve_stage_epochs", "stage_early_stopping",
           "stage_issues", "stage_optimizer", "stage_trains", "use_names"]
