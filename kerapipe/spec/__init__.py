"""The spec side: YAML text -> located document -> typed spec -> issues. No TensorFlow here."""

from kerapipe.spec.issues import Issue
from kerapipe.spec.model import PipelineSpec
from kerapipe.spec.validate import (ValidationResult, collect_pipeline_files, load_spec,
                                    validate_file, validate_text)

__all__ = ["Issue", "PipelineSpec", "ValidationResult", "collect_pipeline_files", "load_spec",
           "validate_file", "validate_text"]
