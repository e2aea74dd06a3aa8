"""kerapipe: one declarative YAML file -> a real Keras model, tf.data pipeline and run.

``import kerapipe`` stays light: it never imports TensorFlow. The spec side lives in
``kerapipe.spec``; the compile and run sides import Keras only when called.
"""

__version__ = "0.1.0"

from kerapipe.errors import (DataError, KerapipeError, OutputError, SpecError,  # noqa: E402
                             TrainingError, UsageError)
from kerapipe.spec import (Issue, PipelineSpec, ValidationResult, load_spec,  # noqa: E402
                           validate_file, validate_text)

__all__ = [
    "DataError",
    "Issue",
    "KerapipeError",
    "OutputError",
    "PipelineSpec",
    "SpecError",
    "TrainingError",
    "UsageError",
    "ValidationResult",
    "__version__",
    "load_spec",
    "validate_file",
    "validate_text",
]
