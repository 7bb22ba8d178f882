"""``--model-args`` (issue 16): loading options without a code change, checked, recorded, and
in the prediction cache key when they can change the answers.

``from_pretrained`` silently sets unknown keywords on the config, so a misspelt argument would
change nothing and be believed; every key must be a loading argument or an attribute of the
checkpoint's ``config.json``.
"""

from __future__ import annotations

import pytest

from evalharness.errors import EvalHarnessError, ModelError, UsageError
from evalharness.evaluation.settings import RunSettings
from evalharness.execution.cache import model_key
from evalharness.models import load_model
from evalharness.models.model_args import parse_model_args, resolve_model_args
from tests.instruct_fixtures import review_task, run_in_process  # noqa: F401  (fixtures)


def _run(cli, model, review_task, out, *flags):
    tasks_dir, data_dir = review_task
    return cli("run", "--model", str(model), "--tasks", "mine/reviews", "--tasks-dir", str(tasks_dir), "--data-dir", str(data_dir),
               "--output", str(out), *flags)


def test_key_value_pairs_are_read_as_yaml_scalars_and_brackets_keep_their_commas(tmp_path):
    assert parse_model_args("attn_implementation=eager,low_cpu_mem_usage=true,layer_norm_epsilon=1e-3") == {
        "attn_implementation": "eager", "low_cpu_mem_usage": True, "layer_norm_epsilon": 1e-3,
    }
    assert parse_model_args("max_memory={0: 20GiB, cpu: 60GiB},revision=main") == {"max_memory": {0: "20GiB", "cpu": "60GiB"}, "revision": "main"}
    file = tmp_path / "args.yaml"
    file.write_text("attn_implementation: eager\nmax_memory: {0: 10GiB}\n", encoding="utf-8")
    assert parse_model_args(str(file)) == {"attn_implementation": "eager", "max_memory": {0: "10GiB"}}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("attn_implementation", "neither KEY=VALUE,... nor an existing YAML file"),
        ("=eager", "is not KEY=VALUE"),
        ("a=1,a=2", "'a' is given twice"),
        ("bad-key=1", "'bad-key' is not an argument name"),
        ("a={1: [}", "YAML"),
    ],
)
def test_malformed_model_args_are_refused_naming_the_flag(value, message):
    with pytest.raises(UsageError, match="--model-args") as caught:
        RunSettings(model="m", tasks=["t"], model_args=value)
    assert message in str(caught.value)


def test_an_unknown_argument_is_refused_with_a_suggestion(cli, tmp_path, tiny_causal_lm, review_task):
    result = _run(cli, tiny_causal_lm, review_task, tmp_path / "run", "--model-args", "attn_implementaton=eager")
    assert result.returncode == 2, result.stderr
    assert "--model-args attn_implementaton: neither a loading argument" in result.stderr
    assert "did you mean 'attn_implementation'" in result.stderr and "ignore it" in result.stderr
    assert not (tmp_path / "run" / "results.json").exists()


def test_a_config_override_changes_the_answers_and_is_recorded_and_keyed(tmp_path, tiny_causal_lm, review_task):
    plain = run_in_process(tiny_causal_lm, ["mine/reviews"], review_task, tmp_path / "plain")
    changed = run_in_process(tiny_causal_lm, ["mine/reviews"], review_task, tmp_path / "changed",
                             model_args="layer_norm_epsilon=0.5,attn_implementation=eager")
    assert changed.record.model.notes["model_args"] == {"layer_norm_epsilon": 0.5, "attn_implementation": "eager"}
    assert changed.record.settings["model_args"] == {"layer_norm_epsilon": 0.5, "attn_implementation": "eager"}
    from evalharness.records.record import read_samples

    assert read_samples(tmp_path / "plain", "mine/reviews")[0]["details"] != read_samples(tmp_path / "changed", "mine/reviews")[0]["details"]
    assert model_key(load_model(str(tiny_causal_lm)).info) != model_key(load_model(str(tiny_causal_lm), model_args={"layer_norm_epsilon": 0.5}).info)
    assert plain.record.model.fingerprint == changed.record.model.fingerprint  # same files; the notes tell the loads apart


def test_placement_only_arguments_are_recorded_but_not_keyed(tiny_causal_lm):
    info = load_model(str(tiny_causal_lm), model_args={"low_cpu_mem_usage": True}).info
    assert "model_args" not in info.notes
    assert model_key(info) == model_key(load_model(str(tiny_causal_lm)).info)
    assert RunSettings(model="m", tasks=["t"], model_args="low_cpu_mem_usage=true").recorded()["model_args"] == {"low_cpu_mem_usage": True}


def test_quantization_without_cuda_or_bitsandbytes_is_refused(cli, tmp_path, tiny_causal_lm, review_task):
    result = _run(cli, tiny_causal_lm, review_task, tmp_path / "run", "--model-args", "load_in_4bit=true", "--device", "cpu")
    assert result.returncode == 2, result.stderr
    assert "--model-args load_in_4bit=true quantizes through bitsandbytes, which needs a CUDA GPU (this run's device is cpu)" in result.stderr
    assert "nothing was loaded in full precision instead" in result.stderr
    assert not (tmp_path / "run" / "results.json").exists()
    with pytest.raises(UsageError, match="load_in_4bit and load_in_8bit exclude each other"):
        load_model(str(tiny_causal_lm), model_args={"load_in_4bit": True, "load_in_8bit": True})
    with pytest.raises(UsageError, match="need load_in_4bit=true or load_in_8bit=true"):
        load_model(str(tiny_causal_lm), model_args={"bnb_4bit_quant_type": "nf4"})


def test_revision_of_a_local_directory_is_refused(tiny_causal_lm):
    with pytest.raises(UsageError, match="is a local directory; a revision applies to Hub ids"):
        load_model(str(tiny_causal_lm), model_args={"revision": "v1"})


def test_torch_dtype_sets_the_dtype_and_may_not_contradict_dtype(tiny_causal_lm):
    loaded = load_model(str(tiny_causal_lm), model_args={"torch_dtype": "bfloat16"}, device="cpu")
    assert loaded.info.dtype == "bfloat16" and str(next(loaded.model.parameters()).dtype) == "torch.bfloat16"
    with pytest.raises(UsageError, match="contradicts --dtype float32"):
        load_model(str(tiny_causal_lm), dtype="float32", model_args={"torch_dtype": "float16"})
    with pytest.raises(EvalHarnessError, match="unknown --dtype 'int3'"):
        load_model(str(tiny_causal_lm), model_args={"torch_dtype": "int3"})


def test_spreading_arguments_without_device_map_are_refused(tiny_causal_lm):
    with pytest.raises(UsageError, match="max_memory: these place weights over several devices; give --device-map auto too"):
        load_model(str(tiny_causal_lm), model_args={"max_memory": {"cpu": "1GiB"}})


def test_wrongly_typed_values_are_refused(tiny_causal_lm):
    with pytest.raises(UsageError, match="--model-args low_cpu_mem_usage: expected true or false"):
        load_model(str(tiny_causal_lm), model_args={"low_cpu_mem_usage": "yes please"})


def test_a_config_override_that_is_not_plain_data_is_refused_naming_the_argument():
    """A config override is recorded in the model notes and the cache key: it must be what a YAML
    file can hold (integer mapping keys included), not any Python object."""
    where = {"config": {"rope_scaling": None, "id2label": {"0": "a"}}, "source": "ckpt", "device": "cpu", "dtype": "auto", "local": True}
    with pytest.raises(UsageError, match="--model-args rope_scaling: expected text, a number, true/false, null, a list or a mapping of them, got set"):
        resolve_model_args({"rope_scaling": {"linear", 2.0}}, **where)
    args = resolve_model_args({"id2label": {0: "neg", 1: "pos"}}, **where)
    assert args.kwargs == args.answers == {"id2label": {0: "neg", 1: "pos"}}


def test_an_argument_from_pretrained_rejects_names_the_flag(tiny_causal_lm):
    with pytest.raises(ModelError, match="cannot load weights as AutoModelForCausalLM with --model-args attn_implementation"):
        load_model(str(tiny_causal_lm), model_args={"attn_implementation": "no_such_kernel"})


def test_model_args_with_a_served_backend_are_refused():
    with pytest.raises(UsageError, match="--model-args apply to checkpoints loaded in process"):
        RunSettings(model="m", tasks=["t"], model_args="attn_implementation=eager", backend={"name": "openai", "base_url": "http://h/v1"})


def test_a_nan_or_infinite_model_arg_is_refused_naming_the_argument():
    # `rope_theta=.nan` reached from_pretrained as given and the record wrote it as null
    where = {"config": {"rope_theta": 10000.0}, "source": "ckpt", "device": "cpu", "dtype": "auto", "local": True}
    with pytest.raises(UsageError, match=r"--model-args rope_theta: expected a finite number, got nan"):
        resolve_model_args(parse_model_args("rope_theta=.nan"), **where)
    with pytest.raises(UsageError, match=r"--model-args rope_theta: expected a finite number, got inf"):
        resolve_model_args({"rope_theta": [float("inf")]}, **where)
