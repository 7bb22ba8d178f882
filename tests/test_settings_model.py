"""One run-settings model (``evaluation.settings``): the command line, sweep files, the Python
API and the run record all derive from it, so an option is defined once."""

from __future__ import annotations

import argparse

import pytest

from evalharness.commands.settings_flags import add_settings_flags, settings_values
from evalharness.config import option_metadata
from evalharness.errors import UsageError
from evalharness.evaluation.settings import FLAT_NAMES, GROUPS, JOB_FIELDS, PromptSettings, RunSettings, flat_settings, shared_settings
from evalharness.evaluation.sweep import SweepSpec


def _leaf_fields():
    for group, model in GROUPS.items():
        for name, field in model.model_fields.items():
            if name in FLAT_NAMES and FLAT_NAMES[name][0] == group:
                yield model, name
    for name in RunSettings.model_fields:
        if name not in GROUPS:
            yield RunSettings, name


def test_flat_names_are_unique_across_groups_and_top_level_fields():
    leaves = [name for model in GROUPS.values() for name in _names(model)]
    duplicated = sorted({name for name in leaves if leaves.count(name) > 1})
    assert not duplicated, duplicated
    clash = sorted(set(leaves) & (set(RunSettings.model_fields) - {"backend"}))
    assert not clash, f"leaf names that are also top-level fields or groups: {clash}"


def _names(model):
    from evalharness.config import StrictModel

    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, StrictModel):
            yield from _names(field.annotation)
        else:
            yield name


def test_every_command_line_setting_has_a_flag_and_help_on_run():
    parser = argparse.ArgumentParser(prog="run")
    add_settings_flags(parser, RunSettings)
    text = parser.format_help()
    for model, name in _leaf_fields():
        meta = option_metadata(model, name)
        if meta["cli"] and not isinstance(model.model_fields[name].default, RunSettings.__base__):
            flag = meta["flag"] or "--" + name.replace("_", "-")
            assert flag in text, (name, flag)


def test_the_command_line_and_the_api_give_the_same_settings_and_record():
    parser = argparse.ArgumentParser()
    add_settings_flags(parser, RunSettings)
    args = parser.parse_args([
        "--model", "m", "--tasks", "glue/sst2,glue/cola", "--batch-size", "8", "--label-map", "A=x,B=y",
        "--max-new-tokens", "5", "--seed", "7", "--allow-random-weights", "--tasks-dir", "/tmp",
    ])
    from_cli = RunSettings(**settings_values(args))
    from_api = RunSettings(model="m", tasks=["glue/sst2", "glue/cola"], batch_size=8, label_map={"A": "x", "B": "y"},
                           generation={"max_new_tokens": 5}, seed=7, allow_random_weights=True, tasks_dirs=["/tmp"])
    assert from_cli == from_api
    assert from_cli.recorded() == from_api.recorded()
    recorded = from_cli.recorded()
    assert recorded["batch_size"] == 8 and recorded["generation"] == {"max_new_tokens": 5} and recorded["allow_random_weights"] is True
    assert "trust_remote_code" not in recorded and "model" not in recorded and "cache" not in recorded


def test_options_not_given_on_the_command_line_keep_the_models_defaults():
    parser = argparse.ArgumentParser()
    add_settings_flags(parser, RunSettings)
    values = settings_values(parser.parse_args(["--model", "m", "--tasks", "t"]))
    assert values == {"tasks": ["t"], "loading": {"model": "m"}}


def test_a_setting_on_by_default_is_turned_off_by_its_flag_and_recorded_only_then():
    parser = argparse.ArgumentParser()
    add_settings_flags(parser, RunSettings)
    off = RunSettings(**settings_values(parser.parse_args(["--model", "m", "--tasks", "t", "--no-packing"])))
    on = RunSettings(**settings_values(parser.parse_args(["--model", "m", "--tasks", "t"])))
    assert off.batching.packing is False and on.batching.packing is True
    assert off.recorded()["packing"] is False and "packing" not in on.recorded()
    assert off == RunSettings(model="m", tasks=["t"], packing=False)


def test_every_shared_setting_can_be_set_from_a_sweep_file():
    for name, path in FLAT_NAMES.items():
        if name in JOB_FIELDS or name == "backend":
            continue
        field = _field_at(path)
        assert field is not None, name
    spec = SweepSpec(models=["m"], tasks=["glue"], output="out", run={"batch_size": 4, "max_new_tokens": 3, "backend": {"name": "hf"},
                                                                      "label_map": "A=x", "n_resamples": 10, "allow_kind_mismatch": True})
    shared = spec.shared
    assert shared.batching.batch_size == 4 and shared.prompt.generation.max_new_tokens == 3 and shared.statistics.n_resamples == 10


def _field_at(path):
    model = RunSettings
    for part in path:
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = field.annotation
    return field


@pytest.mark.parametrize("run, fragment", [
    ({"model": "x"}, "model are set per job"),
    ({"batch_size": 0}, "batch-size: must be at least 1"),
    ({"bogus": 1}, "bogus"),
])
def test_sweep_run_settings_are_validated_like_a_run(run, fragment):
    with pytest.raises(ValueError, match=fragment):
        shared_settings(run)



def test_a_settings_group_given_as_a_non_mapping_beside_its_flat_names_is_refused_naming_the_group():
    # a flat name is routed into its group, which must then be a mapping (it was a TypeError)
    with pytest.raises(UsageError, match=r"batching: expected a mapping of settings, got 5"):
        RunSettings(model="m", tasks=["t"], batching=5, batch_size=8)
    assert RunSettings(model="m", tasks=["t"], batching={"packing": False}, batch_size=8).batching.packing is False

def test_invalid_settings_are_refused_naming_the_flag():
    with pytest.raises(UsageError, match=r"--batch-size: must be at least 1"):
        RunSettings(model="m", tasks=["t"], batch_size=0)
    with pytest.raises(UsageError, match=r"--base-url apply to the openai backend only"):
        RunSettings(model="m", tasks=["t"], base_url="http://127.0.0.1:1/v1")
    with pytest.raises(UsageError, match=r"--label-map: .*'A' is not MODEL_LABEL=TASK_LABEL"):
        RunSettings(model="m", tasks=["t"], label_map="A")


def test_flat_settings_round_trip_nested_command_line_values():
    nested = {"loading": {"model": "m", "dtype": "float32"}, "prompt": {"generation": {"num_beams": 2}}, "limit": 3}
    assert flat_settings(nested) == {"model": "m", "dtype": "float32", "num_beams": 2, "limit": 3}
    assert RunSettings(**flat_settings(nested), tasks=["t"]) == RunSettings(**nested, tasks=["t"])


def test_a_generation_option_is_one_definition_for_the_task_spec_the_run_overrides_and_the_adapter_options():
    """Adding a decoding option is one field of ``Decoding``: the task file's ``generation:``,
    the run's overrides (flag and sweep key) and what adapters receive are that model."""
    from evalharness.spec.schema import TaskSpec
    from evalharness.types import Decoding, GenerationOptions

    assert TaskSpec.model_fields["generation"].annotation == Decoding | None
    assert PromptSettings.model_fields["generation"].annotation is Decoding
    assert issubclass(GenerationOptions, Decoding)
    assert set(GenerationOptions.model_fields) - set(Decoding.model_fields) == {"stop"}


def test_a_min_new_tokens_override_alone_is_checked_against_the_tasks_maximum_not_the_default():
    """An override of ``min_new_tokens`` alone is not refused against the default maximum (64):
    the task's maximum decides, when the two are merged."""
    from evalharness.types import Decoding

    settings = RunSettings(model="m", tasks=["t"], min_new_tokens=100)
    assert settings.prompt.generation.given() == {"min_new_tokens": 100}
    assert settings.recorded()["generation"] == {"min_new_tokens": 100}
    assert Decoding(max_new_tokens=256).updated(settings.prompt.generation.given()).min_new_tokens == 100
    with pytest.raises(ValueError, match=r"min_new_tokens \(100\) is larger than max_new_tokens \(64\)"):
        Decoding().updated(settings.prompt.generation.given())
    with pytest.raises(UsageError, match="max_new_tokens"):
        RunSettings(model="m", tasks=["t"], min_new_tokens=100, max_new_tokens=8)


def test_generation_options_built_directly_with_min_above_the_default_max_are_refused():
    """What adapters receive is complete (unset fields decode at their defaults), so a minimum
    above the default maximum is refused even when the maximum was not given: decoding would
    otherwise silently stop at 64 tokens while asked for at least 100."""
    from pydantic import ValidationError

    from evalharness.types import GenerationOptions

    with pytest.raises(ValidationError, match=r"min_new_tokens \(100\) is larger than max_new_tokens \(64\)"):
        GenerationOptions(min_new_tokens=100)
    assert GenerationOptions(min_new_tokens=100, max_new_tokens=128).min_new_tokens == 100


def test_instruct_and_adapter_settings_from_flags_a_sweep_file_and_a_record_agree(tmp_path):
    """Issue 16's options live in the one settings model: a flag, a sweep file's ``run:`` entry
    and a rerun from the record give the same settings, and each is recorded as given."""
    from evalharness.evaluation.settings import recorded_settings
    from evalharness.evaluation.sweep import load_sweep_spec

    system = tmp_path / "system.txt"
    system.write_text("Answer with one word.\n", encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_settings_flags(parser, RunSettings)
    args = parser.parse_args([
        "--model", "m", "--tasks", "t", "--prompt-format", "chat", "--system-prompt", str(system), "--fewshot-as-multiturn",
        "--strip-thinking", "</think>", "--base-model", "/base", "--keep-adapter-unmerged",
        "--model-args", "revision=v1,attn_implementation=eager",
    ])
    from_cli = RunSettings(**settings_values(args))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "models: [m]\ntasks: [t]\noutput: out\nrun:\n  prompt_format: chat\n"
        f"  system_prompt: {system}\n  fewshot_as_multiturn: true\n  strip_thinking: </think>\n  base_model: /base\n"
        "  keep_adapter_unmerged: true\n  model_args: {revision: v1, attn_implementation: eager}\n",
        encoding="utf-8",
    )
    spec = load_sweep_spec(sweep)
    from_sweep = RunSettings(**spec.run, model="m", tasks=["t"])
    assert from_sweep == from_cli
    recorded = from_cli.recorded()
    assert {key: recorded.get(key) for key in ("prompt_format", "system_prompt", "fewshot_as_multiturn", "strip_thinking",
                                                "base_model", "keep_adapter_unmerged", "model_args")} == {
        "prompt_format": "chat", "system_prompt": "Answer with one word.\n", "fewshot_as_multiturn": True,
        "strip_thinking": "</think>", "base_model": "/base", "keep_adapter_unmerged": True,
        "model_args": {"revision": "v1", "attn_implementation": "eager"},
    }
    assert RunSettings(**{**recorded_settings(recorded), "model": "m"}) == from_cli


def test_prompt_format_auto_is_the_default_and_leaves_the_choice_to_each_task_record():
    parser = argparse.ArgumentParser()
    add_settings_flags(parser, RunSettings)
    settings = RunSettings(**settings_values(parser.parse_args(["--model", "m", "--tasks", "t", "--prompt-format", "auto"])))
    assert settings == RunSettings(model="m", tasks=["t"]) and settings.prompt.prompt_format is None
    assert "prompt_format" not in settings.recorded()
    with pytest.raises(UsageError, match=r"--prompt-format: expected auto, raw or chat, got 'html'"):
        RunSettings(model="m", tasks=["t"], prompt_format="html")


def test_a_nan_or_infinite_setting_is_refused_naming_the_field():
    # no configuration value may be NaN or infinite: it would be recorded as null and compared as nothing
    with pytest.raises(UsageError, match=r"generation\.length_penalty: Input should be a finite number"):
        RunSettings(model="m", tasks="a", length_penalty=float("nan"))
    from pydantic import ValidationError

    from evalharness.types import Decoding

    with pytest.raises(ValidationError, match=r"length_penalty\n  Input should be a finite number"):
        Decoding(length_penalty=float("-inf"))  # a task file's generation section
