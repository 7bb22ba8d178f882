"""Declarative task specs: schema, kinds and safe YAML loading."""

from evalharness.spec.kinds import TASK_KINDS, KindSchema
from evalharness.spec.loader import Task, load_task, load_yaml, spec_hash, validate_model
from evalharness.spec.schema import (
    DataSource,
    FewShotSpec,
    GenerationSpec,
    HubSource,
    LocalSource,
    MetricSpec,
    PromptSpec,
    StrictModel,
    TaskSpec,
)

__all__ = [
    "DataSource",
    "FewShotSpec",
    "GenerationSpec",
    "HubSource",
    "KindSchema",
    "LocalSource",
    "MetricSpec",
    "PromptSpec",
    "StrictModel",
    "TASK_KINDS",
    "Task",
    "TaskSpec",
    "load_task",
    "load_yaml",
    "spec_hash",
    "validate_model",
]
