"""kerapipe: one declarative YAML file -> a real Keras model, tf.data pipeline and run.

``import kerapipe`` stays light: it never imports TensorFlow. The spec side lives in
``kerapipe.spec``; the compile and run sides import Keras only when called.
"""

__version__ = "0.1.0"

from kerapipe.errors import (DataError, KerapipeError, OutputError, SpecError,  # noqa: E402
                             TrainingError, UsageError)
from kerapipe.spec import (Issue, PipelineSpec, ValidationResult, load_spec,  # noqa: E402
                           validate_file, validate_text)

# The compile/run side imports TensorFlow: load it only when first used.
_LAZY = {
    "compile_pipeline": "kerapipe.pipeline",
    "CompiledPipeline": "kerapipe.pipeline",
    "RunResult": "kerapipe.runner",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kerapipe' has no attribute {name!r}")


__all__ = [
    "CompiledPipeline",
    "DataError",
    "Issue",
    "KerapipeError",
    "OutputError",
    "PipelineSpec",
    "SpecError",
    "TrainingError",
    "UsageError",
    "RunResult",
    "ValidationResult",
    "__version__",
    "compile_pipeline",
    "load_spec",
    "validate_file",
    "validate_text",
]
