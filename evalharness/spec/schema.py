"""The task-spec schema (pydantic v2).

A task file declares *what* to evaluate (data, canonical fields, labels, metrics) and *how*
generative models are prompted (Jinja2 templates, no Python). Unknown keys are rejected
everywhere so that a typo never silently changes an evaluation.
"""

from __future__ import annotations

import math
import posixpath
import re
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from evalharness.config import StrictModel, YamlValue
from evalharness.spec.kinds import TASK_KINDS
from evalharness.types import Decoding

__all__ = [
    "TEMPLATE",
    "CounterfactualSpec",
    "DataSource",
    "FewShotSpec",
    "HubSource",
    "LocalSource",
    "MetricSpec",
    "PromptSpec",
    "TaskSpec",
    "label_key",
    "raw_label_key",
]

# Marks a settings field that holds a Jinja2 template (``Annotated[str, TEMPLATE]``), so that
# ``tasks validate`` checks formulation templates like ``prompt.template``.
TEMPLATE = "jinja2-template"


def is_task_relative(name: str) -> bool:
    """Whether a data file is named relative to its task file (``./x``, ``../x``)."""
    return name.replace("\\", "/").startswith(("./", "../"))


def label_key(label: str) -> str:
    """A label name as model labels are matched to it: case, spaces, '-' and '_' ignored."""
    return re.sub(r"[\s_\-]+", "", label).casefold()


def raw_label_key(value: object) -> str:
    """A raw label value as it may be written in another file format: numbers by value
    (``1``, ``1.0``, ``"01"``), text and booleans in any case (``true``, ``"True"``)."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text.casefold()
    if math.isfinite(number) and number == int(number):
        return str(int(number))
    return repr(number)


class LocalSource(StrictModel):
    """Files read with a named reader and concatenated in order. A path is under the data
    directory (``glue/sst2/dev.tsv``), beside the task file (``./dev.jsonl``,
    ``../data/dev.jsonl``) or absolute (``/data/dev.jsonl``)."""

    files: list[str] = Field(min_length=1, description="paths under --data-dir, or ./ ../ (beside the task file) or absolute")
    format: str = Field(description="reader name: tsv, csv, jsonl, json, parquet, txt, ...")
    options: dict[str, YamlValue] = Field(default_factory=dict, description="reader options")
    columns: dict[str, str] = Field(
        default_factory=dict, description="canonical field -> column name in these files"
    )

    @field_validator("files")
    @classmethod
    def _relative_paths(cls, files: list[str]) -> list[str]:
        seen: dict[str, str] = {}
        for name in files:
            if not is_task_relative(name) and not posixpath.isabs(name) and ".." in name.replace("\\", "/").split("/"):
                raise ValueError(
                    f"'{name}' leaves the data directory; name a file under --data-dir, beside the task file "
                    "(starting with ./ or ../) or by an absolute path"
                )
            same = posixpath.normpath(name.replace("\\", "/"))
            if same in seen:  # read twice, every example would count twice
                raise ValueError(f"'{name}' and '{seen[same]}' are the same file; list each file once")
            seen[same] = name
        return files


class HubSource(StrictModel):
    """A Hugging Face Hub dataset, loaded with ``datasets.load_dataset``."""

    path: str
    name: str | None = Field(default=None, description="dataset configuration")
    split: str
    revision: str | None = None
    columns: dict[str, str] = Field(
        default_factory=dict, description="canonical field -> column name in the hub dataset"
    )


class DataSource(StrictModel):
    """Where examples come from: local files, a hub dataset, or both (local wins offline)."""

    local: LocalSource | None = None
    hub: HubSource | None = None
    label_values: dict[str, str] | None = Field(
        default=None,
        description="raw label value (as text) -> label name; a few-shot source without one uses the task's",
    )

    @field_validator("label_values", mode="before")
    @classmethod
    def _stringify_keys(cls, value: object) -> object:
        # YAML reads `0: negative` with an integer key; raw values are compared as text, so keys
        # that read the same once the data's type is lost (1 and '1', 1 and 1.0, true and 'True')
        # would make the mapping depend on the file format: they are refused.
        if not isinstance(value, dict):
            return value
        seen: dict[str, object] = {}
        for key in value:
            if key is None or (isinstance(key, str) and not key.strip()):
                raise ValueError("a key is empty or null; quote the raw value it stands for")
            if not isinstance(key, str | int | float):
                raise ValueError(f"key {key!r} is not a plain value")
            same = raw_label_key(key)
            if same in seen:
                raise ValueError(
                    f"keys {seen[same]!r} and {key!r} stand for the same raw label value once read as text "
                    "(numbers by value, text and booleans in any case); keep one"
                )
            seen[same] = key
        return {str(key): label for key, label in value.items()}

    @model_validator(mode="after")
    def _at_least_one_source(self) -> DataSource:
        if self.local is None and self.hub is None:
            raise ValueError("give at least one of 'local' or 'hub'")
        return self


class FewShotSpec(StrictModel):
    """Demonstrations drawn deterministically (seeded) from another split."""

    n: int = Field(ge=0)
    seed: int = 1234
    data: DataSource | None = Field(
        default=None, description="split to draw from; defaults to the evaluation data"
    )
    separator: str = "\n\n"


class PromptSpec(StrictModel):
    """How generative and language models see the task. Templates are Jinja2 strings."""

    template: Annotated[str, TEMPLATE] = Field(description="renders the model input from the example's fields")
    choices: Annotated[list[str] | None, TEMPLATE] = Field(
        default=None, description="one continuation template per label, in label order"
    )
    target: Annotated[str | None, TEMPLATE] = Field(default=None, description="renders the gold answer in demos")
    stop: list[str] = Field(default_factory=list, description="generation stops at any of these")
    few_shot: FewShotSpec | None = None

    @field_validator("stop")
    @classmethod
    def _no_empty_stop(cls, stop: list[str]) -> list[str]:
        if "" in stop:  # found at position 0 of every text: every generation would be cut to ""
            raise ValueError("an empty stop string would cut every generation to nothing; remove it")
        return stop


class MetricSpec(StrictModel):
    """A metric by registry name with its settings (validated against the metric's schema).

    ``key`` names the result in the run record (default: the metric name), so one metric
    can be listed twice with different settings (e.g. BLEU against reference A and
    against all references).
    """

    name: str
    settings: dict[str, YamlValue] = Field(default_factory=dict)
    key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.+\-]+$")

    @property
    def result_key(self) -> str:
        return self.key or self.name


class CounterfactualSpec(StrictModel):
    """The counterfactual perturbation probe (tasks/bias/counterfactual_*.yaml): swap the
    terms of each group in ``fields`` and compare the model's answers on both versions."""

    base_task: str | None = Field(default=None, description="the task whose data and prompts this mirrors")
    fields: list[str] = Field(min_length=1, description="canonical fields to perturb (e.g. text, context)")
    groups: dict[str, list[list[str]]] = Field(
        default_factory=dict, description="swap group -> term pairs, each swapped both ways"
    )
    groups_file: str | None = Field(
        default=None, description="TSV (group, term, term) relative to the task file; adds to 'groups'"
    )

    @model_validator(mode="after")
    def _some_terms(self) -> CounterfactualSpec:
        if not self.groups and self.groups_file is None:
            raise ValueError("give swap 'groups' or a 'groups_file'")
        return self


class TaskSpec(StrictModel):
    """One evaluation task. The task's name is its file path without ``.yaml``."""

    version: int = Field(ge=1, description="bump when a change alters scores")
    kind: str
    description: str = ""
    data: DataSource
    labels: list[str] | None = Field(default=None, description="label names, in a fixed order")
    prompt: PromptSpec | None = None
    generation: Decoding | None = Field(default=None, description="decoding settings, overridable per run")
    metrics: list[MetricSpec] = Field(min_length=1)
    formulations: dict[str, dict[str, YamlValue]] = Field(
        default_factory=dict,
        description="settings per formulation name (e.g. span_head: {doc_stride: 128})",
    )
    tags: list[str] = Field(default_factory=list)
    counterfactual: CounterfactualSpec | None = None
    cluster_field: str | None = Field(
        default=None,
        min_length=1,
        description="the example field naming each example's source (a paragraph, a template, a document): "
        "examples of one source are not independent, so intervals and paired tests resample whole sources; "
        "a field of the task kind or one mapped under data.*.columns, 'a.b' for key b of mapping field a",
    )

    @field_validator("generation")
    @classmethod
    def _every_decoding_setting_known(cls, generation: Decoding | None) -> Decoding | None:
        """A task's section is complete: fields it leaves out take their defaults, and
        ``min_new_tokens`` is checked against the maximum it will run with."""
        return None if generation is None else generation.updated({})

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in TASK_KINDS:
            from evalharness.errors import did_you_mean

            known = ", ".join(sorted(TASK_KINDS))
            raise ValueError(f"unknown task kind '{kind}'{did_you_mean(kind, TASK_KINDS)} (known: {known})")
        return kind

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_shorthand(cls, value: object) -> object:
        # `metrics: [accuracy]` is shorthand for `metrics: [{name: accuracy}]`.
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _unique_metric_keys(self) -> TaskSpec:
        keys = [metric.result_key for metric in self.metrics]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"metrics: {duplicates} listed twice; give each a distinct 'key'")
        return self

    @model_validator(mode="after")
    def _counterfactual_fields(self) -> TaskSpec:
        if self.counterfactual is not None:
            fields = TASK_KINDS[self.kind].fields
            unknown = [name for name in self.counterfactual.fields if name not in fields]
            if unknown:
                raise ValueError(f"counterfactual.fields: {unknown} are not fields of a '{self.kind}' example ({', '.join(fields)})")
        return self

    @field_validator("labels")
    @classmethod
    def _distinct_labels(cls, labels: list[str] | None) -> list[str] | None:
        # Model labels are matched to task labels ignoring case, spaces, '-' and '_'
        # (config.id2label 'NEGATIVE' is 'negative'): two labels that match alike are ambiguous.
        seen: dict[str, str] = {}
        for label in labels or []:
            if not label.strip():
                raise ValueError("a label name is empty")
            same = label_key(label)
            if same in seen:
                if seen[same] == label:
                    raise ValueError(f"{label!r} is listed twice")
                raise ValueError(
                    f"{seen[same]!r} and {label!r} differ only in case, spaces, '-' or '_'; "
                    "a model label would match both"
                )
            seen[same] = label
        return labels

    @model_validator(mode="after")
    def _cluster_field_exists(self) -> TaskSpec:
        if self.cluster_field is None:
            return self
        head = self.cluster_field.split(".")[0]
        mapped = {name for source in (self.data.local, self.data.hub) if source is not None for name in source.columns}
        known = {*TASK_KINDS[self.kind].fields, *mapped}
        if head not in known:
            from evalharness.errors import did_you_mean

            raise ValueError(
                f"cluster_field '{self.cluster_field}': '{head}' is not a field of a '{self.kind}' example"
                f"{did_you_mean(head, known)} (fields: {', '.join(sorted(known))}; map a source column under data.*.columns)"
            )
        return self

    @model_validator(mode="after")
    def _labels_fit_kind(self) -> TaskSpec:
        needs_labels = TASK_KINDS[self.kind].needs_labels
        if needs_labels and not self.labels:
            raise ValueError(f"a '{self.kind}' task needs 'labels' (the label names, in order)")
        if self.prompt and self.prompt.choices and self.labels:
            if len(self.prompt.choices) != len(self.labels):
                raise ValueError(
                    f"prompt.choices has {len(self.prompt.choices)} entries but there are "
                    f"{len(self.labels)} labels; give one choice per label, in label order"
                )
        return self
