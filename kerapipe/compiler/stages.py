"""Fine-tuning stages on the Keras model: what trains in a stage, its optimizer, and the
callbacks the stage loop (``CompiledPipeline.fit``) gives each stage's ``model.fit``.

As the keras.io transfer-learning guide does it: set each layer's ``trainable`` for the
stage, then compile the model again (Keras gathers the trainable weights when it
compiles) with the stage's new optimizer and the same loss and metrics. A frozen
BatchNormalization runs in inference mode (Keras 3: ``training and self.trainable``), so
its moving statistics stay as they are too. The spec's rules (which node a stage trains,
its merged optimizer and early stopping) are ``kerapipe.spec.stages``'.
"""

from __future__ import annotations

from typing import Any, Optional

from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
import keras

from kerapipe.compiler.assemble import compile_again, core_model
from kerapipe.compiler.build import node_layers
from kerapipe.spec.graph import model_nodes
from kerapipe.spec.stages import StageSpec, stage_optimizer, stage_trains, use_names


def set_stage_trainable(model: keras.Model, spec: Any, stage: StageSpec) -> None:
    """Each layer of the file trainable or frozen as ``stage`` says (a backbone or a
    wrapper with all the layers inside it)."""
    uses = use_names(model_nodes(spec))
    for node, layer in node_layers(core_model(model)):
        layer.trainable = stage_trains(node, stage.trainable, uses)


def trainable_count(model: keras.Model, spec: Any, stage: StageSpec) -> int:
    """The parameters ``stage`` trains, counted on the built model (whose flags are put
    back after counting)."""
    layers = [layer for _, layer in node_layers(core_model(model))]
    before = [layer.trainable for layer in layers]
    try:
        set_stage_trainable(model, spec, stage)
        return sum(int(keras.ops.size(weight)) for weight in model.trainable_weights)
    finally:
        for layer, flag in zip(layers, before):
            layer.trainable = flag


def apply_stage(model: keras.Model, spec: Any, data: Any, index: int) -> None:
    """Stage ``index`` (0-based) on ``model``: its trainable flags, then ``compile`` again
    with its new optimizer and the loss, metrics and settings ``assemble`` compiled it
    with (``data``: the loaded splits, whose batches a schedule's epochs count)."""
    stage = spec.train.stages[index]
    set_stage_trainable(model, spec, stage)
    compile_again(model, spec, data, stage_optimizer(spec, stage),
                  ("train", "stages", index, "optimizer"), f"stage {index + 1}")


class StageColumn(keras.callbacks.Callback):
    """Adds the stage (1-based) to each epoch's logs, so that the one history of a run
    (Keras's History, history.csv, state.json) has a ``stage`` column. It comes before
    the callbacks that record the logs."""

    def __init__(self, stage: int) -> None:
        super().__init__()
        self.stage = stage

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["stage"] = self.stage


class StageEarlyStopping(keras.callbacks.EarlyStopping):
    """The run's one EarlyStopping, set up again for each stage (``configure``): the run
    side keeps its counters in each checkpoint and gives them back on resume. In a stage
    without early stopping it is ``active`` no longer and the loop leaves it out."""

    def __init__(self, arguments: Optional[dict], offset: int = 0) -> None:
        super().__init__()
        self.configure(arguments, offset)

    def configure(self, arguments: Optional[dict], offset: int = 0) -> None:
        """Keras's arguments for a stage that starts at epoch ``offset`` (its
        ``start_from_epoch`` counts from the stage's first epoch), or ``None`` for none."""
        self.active = arguments is not None
        if arguments is not None:
            arguments = dict(arguments)
            arguments["start_from_epoch"] = arguments.get("start_from_epoch", 0) + offset
            keras.callbacks.EarlyStopping.__init__(self, **arguments)
