"""One run-settings model: everything an evaluation run can be asked, in small groups.

``RunSettings`` is validated once (pydantic, unknown keys refused), whatever the source:
the command line of ``run``/``gate --sequential``/``parity`` (flags are derived from the
fields, ``commands.settings_flags``), a sweep file's ``run:`` section, or the Python API. The
run record's ``settings`` are derived from it too (:meth:`RunSettings.recorded`), so adding an
option is one field here plus the code that uses it.

Flat keyword arguments are accepted for convenience (``RunSettings(model=..., tasks=[...],
batch_size=8)``): each is routed to its group. Groups: ``loading`` (which checkpoint and how
it is loaded), ``backend`` (where the model runs, ``backends.config``), ``batching``,
``caching``, ``prompt`` (overrides of the tasks' prompting and decoding) and ``statistics``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import ValidationError, field_validator, model_validator

from evalharness.backends.config import BackendConfig
from evalharness.config import (
    StrictModel,
    cli_flag,
    option,
    option_metadata,
    required_option,
)
from evalharness.errors import UsageError, did_you_mean
from evalharness.seeds import Seed
from evalharness.types import Decoding

__all__ = [
    "GROUPS",
    "BatchingSettings",
    "CacheSettings",
    "LoadingSettings",
    "PromptSettings",
    "RunSettings",
    "StatisticsSettings",
    "JOB_FIELDS",
    "flag_of",
    "flat_settings",
    "recorded_settings",
    "shared_settings",
    "parse_label_map",
    "settings_problems",
]


def parse_label_map(value: object) -> dict[str, str] | None:
    """``A=b,C=d``, a YAML/JSON file of model label -> task label, or a mapping."""
    from evalharness.config import load_yaml

    if value is None or isinstance(value, Mapping):
        return None if value is None else {str(key): str(item) for key, item in value.items()}
    text = str(value)
    path = Path(text)
    if path.is_file():
        data = load_yaml(path)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of model label -> task label")
        return {str(key): str(item) for key, item in data.items()}
    mapping: dict[str, str] = {}
    for pair in text.split(","):
        key, sep, target = pair.partition("=")
        if not sep or not key.strip() or not target.strip():
            raise ValueError(f"'{pair}' is not MODEL_LABEL=TASK_LABEL (or a YAML/JSON file)")
        mapping[key.strip()] = target.strip()
    return mapping


def read_text_or_file(value: object, *, what: str) -> object:
    """A text given inline, or the contents of the file it names (UTF-8); never empty."""
    if value is None or not isinstance(value, str):
        return value
    path = Path(value).expanduser()
    text = value
    if "\n" not in value and len(value) < 4096 and path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: cannot read the {what} ({exc})") from None
    if not text.strip():
        raise ValueError(f"the {what} is empty" + (f" ({path})" if text is not value else ""))
    return text


class LoadingSettings(StrictModel):
    """Which checkpoint and how it is loaded (in process; see ``backend`` for served models)."""

    model: Annotated[str, required_option(help="checkpoint directory or Hugging Face Hub id (--backend openai: the served model's name)", record="never")]
    model_kind: str | None = option(None, help="override the kind detected from config.architectures")
    device: str = option("auto", help="auto, cpu, cuda or cuda:N")
    dtype: str = option("auto", help="auto, float32, bfloat16 or float16")
    device_map: str | None = option(
        None, record="if_set", help="auto: spread a checkpoint too large for one GPU over all visible GPUs (needs accelerate)"
    )
    trust_remote_code: bool = option(False, record="if_set", help="allow code shipped with the checkpoint to run")
    tokenizer: str | None = option(
        None, metavar="DIR", record="if_set",
        help="load the tokenizer from this directory (or hub id) instead of the checkpoint; recorded with its fingerprint "
        "(openai backend: the served model's tokenizer, needed for log-likelihoods)",
    )
    allow_random_weights: bool = option(
        False, record="if_set",
        help="evaluate even though the model class had to initialise weights randomly (missing from the checkpoint); recorded",
    )
    allow_kind_mismatch: bool = option(
        False, record="if_set", help="evaluate even though --model-kind (or the weights) contradict config.json's architectures; recorded"
    )
    base_model: str | None = option(
        None, metavar="PATH", record="if_set",
        help="PEFT adapters (--model DIR with adapter_config.json): the base checkpoint to apply the adapter to, instead "
        "of the adapter's base_model_name_or_path; its fingerprint is recorded with the adapter's",
    )
    keep_adapter_unmerged: bool = option(
        False, record="if_set",
        help="PEFT adapters: keep the adapter as separate layers instead of merging it into the base weights (merging is "
        "faster; unmerged numbers can differ in the last bits)",
    )
    model_args: dict[str, object] | None = option(
        None, metavar="KEY=VALUE,...", record="if_set",
        help="arguments for from_pretrained, as KEY=VALUE,... or a YAML file: revision, attn_implementation, torch_dtype, "
        "low_cpu_mem_usage, max_memory, load_in_4bit/load_in_8bit (bitsandbytes, CUDA), variant, or config attributes to "
        "override; recorded, and those that can change the answers enter the prediction cache key",
    )

    @field_validator("model_args", mode="before")
    @classmethod
    def _model_args(cls, value: object) -> object:
        from evalharness.models.model_args import parse_model_args

        return parse_model_args(value)


class BatchingSettings(StrictModel):
    """How requests are grouped into forward passes (speed and memory, never the answers)."""

    batch_size: int | Literal["auto"] = option(
        "auto", help="rows per batch, or auto (default: 256 on CUDA, 32 on CPU; halved on out-of-memory)"
    )
    max_batch_tokens: int | None = option(None, ge=1, help="also cap each batch's padded tokens (rows x longest row)")
    packing: bool = option(
        True, flag="--no-packing", record="if_set",
        help="lay every sequence out in a padded row of its own (the adapters' reference layout: no packed rows, no shared "
        "prefixes), instead of packing where the adapter checked at load that packed rows answer the same",
    )

    @field_validator("batch_size", mode="before")
    @classmethod
    def _batch_size(cls, value: object) -> object:
        if isinstance(value, str) and value != "auto":
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"expected a positive integer or 'auto', got {value!r}") from None
        return value

    @field_validator("batch_size")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"must be at least 1, got {value}")
        return value


class CacheSettings(StrictModel):
    """The prediction cache: where it lives and whether it is read."""

    cache: Path | None = option(None, metavar="PATH", record="never", help="prediction cache (default: RUN_DIR/cache/predictions.sqlite)")
    fresh: bool = option(False, record="never", help="ignore cached predictions and overwrite them")


class PromptSettings(StrictModel):
    """Overrides of how tasks prompt and decode; each applies only to the formulations that
    declare it (``Formulation.uses``), and is refused or recorded as not applied elsewhere."""

    num_fewshot: int | None = option(
        None, ge=0,
        help="prompted language models: override the tasks' prompt.few_shot.n (0: zero-shot). Like --label-map, "
        "--max-new-tokens and --num-beams, refused when no task of the run uses it and recorded as not applied "
        "for the tasks that do not",
    )
    label_map: dict[str, str] | None = option(None, help="classifier heads: MODEL_LABEL=TASK_LABEL,... or a YAML/JSON file")
    generation: Decoding = option(Decoding(), help="decoding overrides: the fields set replace the tasks' generation settings")
    prompt_format: Literal["raw", "chat"] | None = option(
        None, metavar="auto|raw|chat", record="if_set",
        help="prompted language models: raw text, or the tokenizer's chat template (default: chat when the tokenizer has a "
        "chat template and the model is an instruct/chat model, else raw; the choice and the reason are recorded per task)",
    )
    system_prompt: str | None = option(
        None, metavar="TEXT|FILE", record="if_set",
        help="prompted language models: a system message (chat: the system turn, or merged into the first user turn when "
        "the template has no system role; raw: before the prompt)",
    )
    fewshot_as_multiturn: bool = option(
        False, record="if_set",
        help="chat format: few-shot demonstrations as alternating user/assistant turns (default: inlined in one user turn)",
    )
    strip_thinking: str | None = option(
        None, metavar="DELIMITER", record="if_set",
        help="generated answers: drop the reasoning trace up to the last DELIMITER (e.g. '</think>') before metrics; "
        "recorded with counts of generations that had none or never closed it",
    )

    @field_validator("label_map", mode="before")
    @classmethod
    def _label_map(cls, value: object) -> object:
        return parse_label_map(value)

    @field_validator("prompt_format", mode="before")
    @classmethod
    def _auto(cls, value: object) -> object:
        if value is not None and value not in ("auto", "raw", "chat"):
            raise ValueError(f"expected auto, raw or chat, got {value!r}")
        return None if value == "auto" else value

    @field_validator("system_prompt", mode="before")
    @classmethod
    def _system_prompt(cls, value: object) -> object:
        return read_text_or_file(value, what="system prompt")

    @field_validator("strip_thinking")
    @classmethod
    def _delimiter(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("the reasoning delimiter must be visible text such as '</think>'")
        return value


class StatisticsSettings(StrictModel):
    """Randomness and resampling of the intervals (and of few-shot draws without a task seed)."""

    seed: Seed = option(1234, help="seed for bootstrap and few-shot sampling")
    n_resamples: int = option(1000, ge=0, cli=False, help="bootstrap resamples of each interval")


# Group name -> its model, in the order the command line shows them.
GROUPS: dict[str, type[StrictModel]] = {
    "loading": LoadingSettings,
    "backend": BackendConfig,
    "batching": BatchingSettings,
    "caching": CacheSettings,
    "prompt": PromptSettings,
    "statistics": StatisticsSettings,
}


def _leaves(model: type[StrictModel], path: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """Leaf field name -> its path (nested groups such as ``prompt.generation`` included)."""
    found: dict[str, tuple[str, ...]] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, StrictModel):
            found.update(_leaves(annotation, (*path, name)))
        else:
            found[name] = (*path, name)
    return found


# Flat keyword -> its place in the groups (``batch_size`` -> ``("batching", "batch_size")``).
FLAT_NAMES: dict[str, tuple[str, ...]] = {
    leaf: (group, *path) for group, model in GROUPS.items() for leaf, path in _leaves(model).items()
}
FLAT_NAMES["backend"] = ("backend",)  # a whole BackendConfig may be given as is


class RunSettings(StrictModel):
    """Everything one evaluation run is asked (``evalharness run``)."""

    tasks: Annotated[list[str], required_option(help="task names or groups, comma-separated (repeatable)")]
    tasks_dirs: list[Path] = option([], flag="--tasks-dir", metavar="DIR", record="never", help="extra folder of task YAML files (repeatable)")
    data_dir: Path | None = option(None, help="folder with local evaluation data (default: $EVALHARNESS_DATA_DIR)")
    limit: int | None = option(None, ge=1, help="evaluate only the first N examples of each task (recorded per task, with the groups the subset covers)")
    output: Path | None = option(None, record="never", help="run directory to write (default: runs/MODEL/TIMESTAMP)")
    examples: dict[str, list[str]] | None = option(None, cli=False, record="if_set", help="task -> only these example ids (sequential gates, noise)")
    check_determinism: bool = option(
        False, record="never", help="rerun a sample of each task at another batch size (no cache) and record the largest difference"
    )
    show_progress: bool = option(False, flag="--progress", record="never", help="show progress bars even when stderr is not a terminal")
    trust_task_code: bool = option(
        False, record="if_set", help="allow code that task files reference to run (an hf_evaluate metric's evaluate module); recorded"
    )
    refuse_unused_options: bool = option(
        True, cli=False, record="never",
        help="refuse an option no task uses (False: sweeps, whose options are shared by checkpoints of several kinds, record it as not applied)",
    )
    loading: LoadingSettings
    backend: BackendConfig = BackendConfig()
    batching: BatchingSettings = BatchingSettings()
    caching: CacheSettings = CacheSettings()
    prompt: PromptSettings = PromptSettings()
    statistics: StatisticsSettings = StatisticsSettings()

    def __init__(self, **data: object) -> None:
        """Validation problems are project errors naming the command-line flag of each field."""
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise UsageError(settings_problems(exc)) from None

    @model_validator(mode="before")
    @classmethod
    def _route_flat_names(cls, data: object) -> object:
        """``RunSettings(model=..., batch_size=8)``: flat names go to their groups."""
        if not isinstance(data, Mapping):
            return data
        routed: dict[str, object] = {}
        for key, value in data.items():
            path = FLAT_NAMES.get(key) if key not in cls.model_fields or key == "backend" else None
            if key == "generation" and isinstance(value, Mapping):  # a generation override mapping
                path = ("prompt", "generation")
            if path is None or (key == "backend" and not isinstance(value, (Mapping, BackendConfig))):
                routed[key] = value
                continue
            holder = routed
            for part in path[:-1]:
                nested = holder[part] = _group_values(holder.get(part), part)
                holder = nested
            last = path[-1]
            if isinstance(value, StrictModel) and last in holder:
                holder[last] = {**_group_values(holder[last], last), **value.model_dump(exclude_unset=True)}
            else:
                holder[last] = value.model_dump(exclude_unset=True) if isinstance(value, StrictModel) else value
        return routed

    @model_validator(mode="after")
    def _in_process_loading(self) -> RunSettings:
        """PEFT adapters and --model-args are applied by the in-process loader only: elsewhere
        they would be silently ignored."""
        given = [flag_of(("loading", name)) for name in IN_PROCESS_ONLY if getattr(self.loading, name)]
        if given and self.backend.name != "hf":
            raise ValueError(f"{', '.join(given)} apply to checkpoints loaded in process (--backend hf), not to '{self.backend.name}'")
        return self

    @field_validator("tasks", mode="before")
    @classmethod
    def _split_tasks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, Sequence) and not isinstance(value, str):
            return [name.strip() for item in value for name in str(item).split(",") if name.strip()]
        return value

    # -- what the rest of the run reads ---------------------------------------------------
    @property
    def model(self) -> str:
        return self.loading.model

    @property
    def seed(self) -> int:
        return self.statistics.seed

    def updated(self, **changes: object) -> RunSettings:
        """A copy with some settings changed (flat names, validated like the original)."""
        return type(self)(**{**self._flat_dump(), **changes})

    def _flat_dump(self) -> dict[str, object]:
        values: dict[str, object] = {name: getattr(self, name) for name in type(self).model_fields if name not in GROUPS}
        for group in GROUPS:
            values[group] = getattr(self, group)
        return values

    def recorded(self) -> dict[str, object]:
        """The run record's ``settings``: every field whose metadata says so, flat, by name."""
        return _recorded(self)


def flag_of(loc: Sequence[str | int]) -> str:
    """The command-line flag of a settings location (``("batching", "batch_size")`` ->
    ``--batch-size``); the field path when the field has no flag."""
    model: type[StrictModel] = RunSettings
    names = [part for part in loc if isinstance(part, str)]
    for index, name in enumerate(names):
        field = model.model_fields.get(name)
        if field is None:
            break
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, StrictModel) and index < len(names) - 1:
            model = annotation
            continue
        flag = cli_flag(model, name)
        if flag is not None:
            return flag
        break
    return ".".join(str(part) for part in loc) or "settings"


def settings_problems(exc: ValidationError) -> str:
    """One line per problem: the flag (or field) and what is wrong with the given value."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = [part for part in error["loc"] if not (isinstance(part, str) and "[" in part)]
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown setting{did_you_mean(str(loc[-1]), FLAT_NAMES)}"
        elif error["type"] not in {"value_error", "missing"} and "input" in error and not isinstance(error["input"], (dict, list)):
            message += f" (got {error['input']!r})"
        lines.append(message if message.startswith("--") else f"{flag_of(loc)}: {message}")
    return "invalid run settings:\n  " + "\n  ".join(lines) if len(lines) > 1 else lines[0]


def _group_values(given: object, name: str) -> dict[str, object]:
    """The values given for a settings group (a model, a mapping, or nothing yet) as a mapping
    that flat names can be added to."""
    if isinstance(given, StrictModel):
        return dict(given.model_dump(exclude_unset=True))
    if isinstance(given, Mapping):
        return dict(given)
    if not given:
        return {}
    raise ValueError(f"{name}: expected a mapping of settings, got {given!r}")


def _recorded(model: StrictModel) -> dict[str, object]:
    entries: dict[str, object] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if name in RECORDED_AS:
            entries.update(RECORDED_AS[name](value))
            continue
        if isinstance(value, StrictModel):
            entries.update(_recorded(value))
            continue
        mode = option_metadata(type(model), name)["record"]
        default = type(model).model_fields[name].default
        if mode == "always" or (mode == "if_set" and value != default and value is not None):
            entries[name] = str(value) if isinstance(value, Path) else value
    return entries


# Loading settings only the in-process (hf) backend applies.
IN_PROCESS_ONLY = ("base_model", "keep_adapter_unmerged", "model_args")

# What each job of a sweep sets itself; every other setting can be shared by all jobs.
JOB_FIELDS = frozenset({"model", "tasks", "output"})


def shared_settings(values: Mapping[str, object]) -> RunSettings:
    """Settings shared by the jobs of a sweep (``run:`` of a sweep file, flags of ``sweep``),
    validated as a job will validate them; raises ``ValueError`` naming the offending keys."""
    given = sorted(JOB_FIELDS & set(values))
    if given:
        raise ValueError(f"{', '.join(given)} are set per job by the sweep (models, tasks, output), not under run:")
    try:
        return RunSettings(**{**values, "model": "(each model)", "tasks": []})
    except UsageError as exc:
        raise ValueError(str(exc)) from None


def recorded_settings(recorded: Mapping[str, object]) -> dict[str, object]:
    """The settings of a run record (``RunSettings.recorded``) that a rerun takes back: the
    flat names of settings fields, nothing derived (``not_applied``, example counts)."""
    fields = set(FLAT_NAMES) | set(RunSettings.model_fields)
    return {key: value for key, value in recorded.items() if key in fields and key not in {"examples", *GROUPS} or key == "backend"}


def flat_settings(values: Mapping[str, object]) -> dict[str, object]:
    """Nested settings (as the command line gives them) as flat names (as sweep files write them)."""
    flat: dict[str, object] = {}
    for key, value in values.items():
        if (key in GROUPS or key == "generation") and isinstance(value, Mapping):
            flat.update(flat_settings(value))
        else:
            flat[key] = value
    return flat


def _backend_entries(backend: object) -> dict[str, object]:
    assert isinstance(backend, BackendConfig)  # the field's type
    return {"backend": backend.recorded()} if backend.name != "hf" else {}


def _examples_entries(examples: object) -> dict[str, object]:
    assert examples is None or isinstance(examples, dict)  # the field's type
    return {"examples": {task: len(ids) for task, ids in examples.items()}} if examples else {}


def _generation_entries(generation: object) -> dict[str, object]:
    assert isinstance(generation, Decoding)  # the field's type
    return {"generation": generation.given()}


# Fields recorded in a shape of their own (name -> record entries).
RECORDED_AS: dict[str, Callable[[object], dict[str, object]]] = {
    "backend": _backend_entries,
    "examples": _examples_entries,
    "generation": _generation_entries,
    "tasks_dirs": lambda dirs: {},
}
