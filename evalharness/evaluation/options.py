"""Which of a run's options each task really used, so the record never claims more.

Options such as ``--num-fewshot``, ``--label-map`` or ``--max-new-tokens`` only mean
something to some formulations (a classifier head has no prompt and generates nothing).
Formulations declare the options they use (``Formulation.uses``) and only receive those
(``Formulation.accepted_options``); this module compares the declarations with what the
command line gave:

- an option that no formulation of any task of the run could use is refused before the
  model loads (the candidates of each task kind are known from the task specs alone);
- an option that none of the chosen formulations uses is refused before the forward
  passes (the choice depends on the checkpoint), unless the caller records instead
  (sweeps share one set of options across checkpoints of different kinds);
- otherwise each task records the options applied to it and those not applied, with the
  reason; the run-level settings never show an option that no task applied.

``--batch-size`` and ``--max-batch-tokens`` are not listed: every adapter batches its
inputs with them (``models.batching``), so they apply to every task; they change speed and
memory, not what is asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from evalharness.errors import UsageError
from evalharness.evaluation.settings import flag_of
from evalharness.prompting import FORMULATIONS, RunOption, SomeFormulation
from evalharness.spec.loader import Task
from evalharness.types import Decoding

__all__ = ["GivenOption", "OptionUse", "given_options", "refuse_inapplicable", "refuse_unused", "run_settings", "use_of"]

@dataclass(frozen=True)
class GivenOption:
    """One option the caller set: its record name, how the user wrote it, and its value."""

    name: str
    flag: str
    value: object
    needs: RunOption

    @property
    def shown(self) -> str:
        value = self.value
        if isinstance(value, Mapping):
            value = ",".join(f"{key}={item}" for key, item in value.items())
        if value is True:
            return self.flag
        text = str(value)
        return f"{self.flag} {text if len(text) <= 60 else repr(text[:57] + '...')}"


# Prompt options (``PromptSettings`` fields) -> the formulation option they need (flags: the settings model's).
_PROMPT_OPTIONS = {
    "prompt_format": RunOption.PROMPT_FORMAT,
    "system_prompt": RunOption.SYSTEM_PROMPT,
    "fewshot_as_multiturn": RunOption.FEWSHOT_AS_MULTITURN,
    "strip_thinking": RunOption.STRIP_THINKING,
}


def given_options(
    label_map: Mapping[str, str] | None,
    num_fewshot: int | None,
    generation: Decoding,
    prompt: Mapping[str, object] | None = None,
) -> list[GivenOption]:
    """The formulation-specific options of a run, one entry per flag (``generation``: the
    decoding fields the run set). ``prompt``: the prompt-format options
    (``prompt_format``, ``system_prompt``, ``fewshot_as_multiturn``, ``strip_thinking``);
    unset ones (None, False) are not given."""
    given = []
    if label_map is not None:
        given.append(GivenOption("label_map", flag_of(("prompt", "label_map")), dict(label_map), RunOption.LABEL_MAP))
    if num_fewshot is not None:
        given.append(GivenOption("num_fewshot", flag_of(("prompt", "num_fewshot")), num_fewshot, RunOption.NUM_FEWSHOT))
    for key, decoding in generation.given().items():
        given.append(GivenOption(key, flag_of(("prompt", "generation", key)), decoding, RunOption.GENERATION))
    for key, value in (prompt or {}).items():
        if key not in _PROMPT_OPTIONS:
            raise UsageError(f"unknown prompt option '{key}' (known: {', '.join(_PROMPT_OPTIONS)})")
        if value is not None and value is not False:
            given.append(GivenOption(key, flag_of(("prompt", key)), value, _PROMPT_OPTIONS[key]))
    return given


def _why_not(formulation: SomeFormulation) -> str:
    return f"{formulation.name} does not use it ({formulation.method})"


@dataclass
class OptionUse:
    """The given options one task used (name -> value) and did not (name -> reason)."""

    applied: dict[str, object] = field(default_factory=dict)
    not_applied: dict[str, str] = field(default_factory=dict)

    def record(self, given: Sequence[GivenOption]) -> dict[str, object]:
        """The task's ``settings.run_options`` entry."""
        values = {option.name: option.value for option in given}
        return {
            "applied": dict(self.applied),
            "not_applied": {name: {"value": values[name], "reason": reason} for name, reason in self.not_applied.items()},
        }

    def notes(self, given: Sequence[GivenOption]) -> list[str]:
        return [f"{option.shown} not applied: {self.not_applied[option.name]}" for option in given if option.name in self.not_applied]


def use_of(formulation: SomeFormulation, given: Sequence[GivenOption]) -> OptionUse:
    use = OptionUse()
    for option in given:
        if option.needs in formulation.uses:
            use.applied[option.name] = option.value
        else:
            use.not_applied[option.name] = _why_not(formulation)
    return use


def _refusal(option: GivenOption, reasons: Iterable[str], scope: str) -> UsageError:
    listed = "\n".join(f"  {reason}" for reason in reasons)
    return UsageError(
        f"{option.shown} does not apply to any task of this run {scope} (the run would not be what the "
        f"command line says); remove {option.flag}, or run a task that uses it:\n{listed}"
    )


def refuse_inapplicable(given: Sequence[GivenOption], tasks: Sequence[Task]) -> None:
    """Before the model loads: refuse an option that no candidate formulation of any task uses."""
    candidates = {task.name: (task.spec.kind, FORMULATIONS.get(task.spec.kind, [])) for task in tasks}
    for option in given:
        if any(option.needs in f.uses for _, formulations in candidates.values() for f in formulations):
            continue
        reasons = [
            f"{name} ({kind} task): " + ("; ".join(_why_not(f) for f in formulations) or "no formulation answers it")
            for name, (kind, formulations) in candidates.items()
        ]
        raise _refusal(option, reasons, "whatever the checkpoint")


def refuse_unused(given: Sequence[GivenOption], uses: Mapping[str, OptionUse]) -> None:
    """After the formulations are chosen: refuse an option that no task applies."""
    for option in given:
        if not any(option.name in use.applied for use in uses.values()):
            reasons = [f"{task}: {use.not_applied[option.name]}" for task, use in uses.items()]
            raise _refusal(option, reasons, "with this checkpoint")


def run_settings(settings: Mapping[str, object], given: Sequence[GivenOption], uses: Mapping[str, OptionUse]) -> dict[str, object]:
    """The run-level settings with an option that no task applied taken out of its place
    (``num_fewshot: null``, no ``generation`` key) and listed under ``not_applied``. Which
    tasks an option reached is in each task's ``settings.run_options``; the run level holds
    nothing task-specific, so runs of other tasks with the same options merge into one record."""
    out = dict(settings)
    given_generation = out.get("generation")
    generation: dict[str, object] = dict(given_generation) if isinstance(given_generation, Mapping) else {}
    out["generation"] = generation
    unused: dict[str, object] = {}
    for option in given:
        if any(option.name in use.applied for use in uses.values()):
            continue
        unused[option.name] = {"flag": option.flag, "value": option.value, "reason": "no task of the run uses it"}
        if option.needs is RunOption.GENERATION:
            generation.pop(option.name, None)
        else:
            out[option.name] = None
    if unused:
        out["not_applied"] = unused
    return out
