"""Declarative task specs: schema, kinds and safe YAML loading."""

from evalharness.spec.kinds import TASK_KINDS, KindSchema
from evalharness.spec.loader import Task, load_task, spec_hash
from evalharness.spec.schema import (
    DataSource,
    FewShotSpec,
    HubSource,
    LocalSource,
    MetricSpec,
    PromptSpec,
    TaskSpec,
)

__all__ = [
    "DataSource",
    "FewShotSpec",
    "HubSource",
    "KindSchema",
    "LocalSource",
    "MetricSpec",
    "PromptSpec",
    "TASK_KINDS",
    "Task",
    "TaskSpec",
    "load_task",
    "spec_hash",
]
