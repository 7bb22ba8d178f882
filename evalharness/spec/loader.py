"""Load a task file: the shared configuration loader (``evalharness.config``) plus the task's
identity (name, content hash) and the line of every field, for later cross-reference errors.

Every message starts with the file, line and field path, e.g.
``tasks/glue/sst2.yaml:12: metrics[0].name: unknown metric 'acc'; did you mean 'accuracy'?``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from evalharness.config import Location, load_config, where
from evalharness.spec.schema import TaskSpec

__all__ = ["Task", "load_task", "spec_hash"]


# Optional fields added to the schema after tasks were hashed: left out while unset, so that
# adding one never changes the hash (and the comparability) of the tasks that do not use it.
_LATER_OPTIONAL = ("cluster_field",)


def spec_hash(spec: BaseModel) -> str:
    """Content hash of a validated spec: equal specs hash equally however the YAML is laid out."""
    dump = spec.model_dump(mode="json")
    for name in _LATER_OPTIONAL:
        if dump.get(name) is None:
            dump.pop(name, None)
    canonical = json.dumps(dump, sort_keys=True, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Task:
    """A validated task spec with the identity it gets from its file."""

    name: str
    path: Path
    spec: TaskSpec
    spec_hash: str
    lines: dict[Location, int] = field(default_factory=dict, repr=False, compare=False)

    @property
    def version(self) -> int:
        return self.spec.version

    def where(self, *loc: str | int) -> str:
        """``file:line: field`` of a location in the task file, for error messages."""
        return where(str(self.path), self.lines, loc)


def load_task(path: Path, name: str) -> Task:
    """Load and validate one task file (schema only; see ``catalog`` for cross-references)."""
    loaded = load_config(path, TaskSpec, what="a task file")
    return Task(name=name, path=path, spec=loaded.value, spec_hash=spec_hash(loaded.value), lines=loaded.lines)
