"""PEFT adapters (issue 16): ``--model ADAPTER_DIR`` scores exactly as the merged model saved
separately, the record fingerprints base and adapter, and a missing or mismatched base is
refused naming both paths.

Adapters are tiny LoRAs built with ``peft`` on the session's tiny base models
(``testing.instruct.build_lora_adapter``, non-zero ``B`` so they change the outputs); the
merged reference is ``PeftModel.from_pretrained(...).merge_and_unload().save_pretrained()``.
"""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("peft")

from evalharness.errors import ModelError, UsageError  # noqa: E402
from evalharness.models import load_model  # noqa: E402
from evalharness.records.record import read_samples  # noqa: E402
from evalharness.testing.instruct import build_lora_adapter, save_merged_adapter  # noqa: E402
from tests.conftest import CORPUS  # noqa: E402
from tests.instruct_fixtures import chat_model, review_task, run_in_process  # noqa: E402,F401  (fixtures)

PROMPTS = ["the movie was great", "a wonderful , moving and funny story about love"]


@pytest.fixture(scope="module")
def causal_lora(tmp_path_factory, tiny_causal_lm):
    root = tmp_path_factory.mktemp("causal_lora")
    adapter = build_lora_adapter(root / "lora-gpt2", tiny_causal_lm, target_modules=["c_attn", "c_fc"], seed=1)
    return adapter, save_merged_adapter(adapter, root / "merged-gpt2")


def _loglikelihoods(run_dir, task="mine/reviews"):
    return [row["details"]["loglikelihoods"] for row in read_samples(run_dir, task)]


def test_causal_lora_adapter_scores_equal_the_merged_model_saved_separately(cli, tmp_path, causal_lora, review_task, tiny_causal_lm):
    adapter, merged = causal_lora
    tasks_dir, data_dir = review_task
    result = cli("run", "--model", str(adapter), "--tasks", "mine/reviews,mine/review_words", "--tasks-dir", str(tasks_dir),
                 "--data-dir", str(data_dir), "--output", str(tmp_path / "adapter"), "--json")
    assert result.returncode == 0, result.stderr
    ours = json.loads(result.stdout)
    reference = run_in_process(merged, ["mine/reviews", "mine/review_words"], review_task, tmp_path / "merged").record
    assert _loglikelihoods(tmp_path / "adapter") == _loglikelihoods(tmp_path / "merged")
    assert [r["prediction"] for r in read_samples(tmp_path / "adapter", "mine/review_words")] == [
        r["prediction"] for r in read_samples(tmp_path / "merged", "mine/review_words")
    ]
    for task in ("mine/reviews", "mine/review_words"):
        assert ours["tasks"][task]["metrics"] == reference.model_dump(mode="json")["tasks"][task]["metrics"]
    assert ours["model"]["notes"]["peft_adapter"]["merged"] is True
    run_in_process(tiny_causal_lm, ["mine/reviews"], review_task, tmp_path / "base")
    assert _loglikelihoods(tmp_path / "base") != _loglikelihoods(tmp_path / "adapter")  # the adapter does something


def test_instruct_lora_adapter_in_the_chat_format_scores_as_its_merged_model_on_every_task_kind(tmp_path, chat_model, review_task):
    """Issue 16's check end to end: a LoRA adapter on a locally built instruct model, evaluated
    on a log-likelihood classification, a generation and a perplexity task, gives exactly the
    merged model's requests and numbers; its records carry the prompt-format policy (chat for
    the prompted tasks, raw with the reason for perplexity) and the base and adapter fingerprints."""
    from evalharness.models.base import fingerprint_checkpoint
    from evalharness.models.peft_adapters import adapter_fingerprint
    from evalharness.records.record import load_record

    base = chat_model("chatml")
    adapter = build_lora_adapter(tmp_path / "chat-lora", base, target_modules=["q_proj", "v_proj"], seed=3)
    merged = save_merged_adapter(adapter, tmp_path / "chat-merged")
    tasks = ["mine/reviews", "mine/review_words", "mine/words"]
    run_in_process(adapter, tasks, review_task, tmp_path / "adapter")
    run_in_process(merged, tasks, review_task, tmp_path / "merged")
    run_in_process(base, ["mine/reviews"], review_task, tmp_path / "base")
    ours, reference = load_record(tmp_path / "adapter"), load_record(tmp_path / "merged")
    for task in tasks:
        assert ours.tasks[task].metrics == reference.tasks[task].metrics, task
        assert ours.tasks[task].settings["prompt_format"] == reference.tasks[task].settings["prompt_format"], task
        rows, expected = read_samples(tmp_path / "adapter", task), read_samples(tmp_path / "merged", task)
        assert [(r["input"], r["prediction"], r.get("details")) for r in rows] == [
            (r["input"], r["prediction"], r.get("details")) for r in expected
        ], task
    formats = {task: ours.tasks[task].settings["prompt_format"] for task in tasks}
    assert formats["mine/reviews"]["format"] == formats["mine/review_words"]["format"] == "chat"
    assert formats["mine/reviews"]["requested"] == "auto" and "end-of-sequence" in formats["mine/reviews"]["reason"]
    assert formats["mine/reviews"]["template_sha256"] == formats["mine/review_words"]["template_sha256"] is not None
    assert ours.tasks["mine/review_words"].settings["stop"][-1] == "<|im_end|>"
    assert formats["mine/words"]["format"] == "raw" and "no prompt" in formats["mine/words"]["reason"]
    assert _loglikelihoods(tmp_path / "adapter") != _loglikelihoods(tmp_path / "base")  # the adapter does something
    notes = ours.model.notes["peft_adapter"]
    assert notes["fingerprint"] == fingerprint_checkpoint(adapter) and notes["base"]["fingerprint"] == fingerprint_checkpoint(base)
    assert ours.model.fingerprint == adapter_fingerprint(notes["base"]["fingerprint"], notes["fingerprint"]) != reference.model.fingerprint


def test_record_fingerprints_the_base_and_the_adapter(tmp_path, causal_lora, tiny_causal_lm):
    from evalharness.execution.cache import model_key
    from evalharness.models.base import fingerprint_checkpoint
    from evalharness.models.peft_adapters import adapter_fingerprint

    adapter_dir, _ = causal_lora
    info = load_model(str(adapter_dir)).info
    notes = info.notes["peft_adapter"]
    assert notes["fingerprint"] == fingerprint_checkpoint(adapter_dir)
    assert notes["base"]["fingerprint"] == fingerprint_checkpoint(tiny_causal_lm)
    assert notes["base"]["path"] == str(tiny_causal_lm.resolve()) and notes["merged"] is True and notes["peft_type"] == "LORA"
    assert info.fingerprint == adapter_fingerprint(notes["base"]["fingerprint"], notes["fingerprint"])
    assert info.name == adapter_dir.name and info.architecture == "GPT2LMHeadModel"
    other = build_lora_adapter(tmp_path / "other", tiny_causal_lm, target_modules=["c_attn"], seed=2)
    assert load_model(str(other)).info.fingerprint != info.fingerprint
    base_info = load_model(str(tiny_causal_lm)).info
    unmerged = load_model(str(adapter_dir), keep_adapter_unmerged=True).info
    assert len({model_key(info), model_key(base_info), model_key(unmerged)}) == 3  # three cache keys


def test_unmerged_adapter_agrees_with_the_merged_one_within_float_noise(causal_lora):
    adapter_dir, merged_dir = causal_lora
    unmerged = load_model(str(adapter_dir), keep_adapter_unmerged=True)
    assert unmerged.info.notes["peft_adapter"]["merged"] is False
    assert unmerged.info.notes["peft_adapter"]["unmerged_because"] == "--keep-adapter-unmerged"
    merged = load_model(str(merged_dir))
    pairs = [(prompt, " .") for prompt in PROMPTS]
    for a, b in zip(unmerged.loglikelihood(pairs), merged.loglikelihood(pairs)):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4)
    assert [r.text for r in unmerged.generate(PROMPTS, max_new_tokens=5)] == [r.text for r in merged.generate(PROMPTS, max_new_tokens=5)]


def test_seq2seq_lora_adapter_generates_as_the_merged_model(tmp_path, tiny_t5):
    adapter = build_lora_adapter(tmp_path / "lora-t5", tiny_t5, task_type="SEQ_2_SEQ_LM", target_modules=["q", "v"], seed=3)
    merged = save_merged_adapter(adapter, tmp_path / "merged-t5")
    loaded = load_model(str(adapter))
    assert loaded.kind == "seq2seq" and loaded.info.notes["peft_adapter"]["task_type"] == "SEQ_2_SEQ_LM"
    ours = [r.text for r in loaded.generate(PROMPTS, max_new_tokens=6)]
    assert ours == [r.text for r in load_model(str(merged)).generate(PROMPTS, max_new_tokens=6)]
    assert ours != [r.text for r in load_model(str(tiny_t5)).generate(PROMPTS, max_new_tokens=6)]


def test_classifier_lora_with_modules_to_save_scores_as_the_merged_model(tmp_path, tiny_classifier, review_task):
    """The saved head (``modules_to_save: classifier``) replaces the base's: not 'random weights'."""
    adapter = build_lora_adapter(tmp_path / "lora-cls", tiny_classifier, task_type="SEQ_CLS", target_modules=["query", "value"],
                                 modules_to_save=["classifier"], seed=4)
    merged = save_merged_adapter(adapter, tmp_path / "merged-cls")
    loaded = load_model(str(adapter))
    assert loaded.kind == "sequence_classifier" and "classifier" in loaded.info.notes["peft_adapter"]["modules_to_save"]
    a = run_in_process(adapter, ["mine/reviews"], review_task, tmp_path / "a")
    b = run_in_process(merged, ["mine/reviews"], review_task, tmp_path / "b")
    assert a.record.tasks["mine/reviews"].formulation == "classifier_head"
    assert a.record.tasks["mine/reviews"].metrics == b.record.tasks["mine/reviews"].metrics
    assert [r["details"] for r in read_samples(tmp_path / "a", "mine/reviews")] == [r["details"] for r in read_samples(tmp_path / "b", "mine/reviews")]


def test_classifier_adapter_with_another_head_size_loads_its_saved_head(tmp_path, tiny_classifier):
    """A 2-label base under a 3-label SEQ_CLS adapter: the head comes from the adapter (its
    rows give num_labels), nothing is initialised randomly."""
    adapter = build_lora_adapter(tmp_path / "lora-3", tiny_classifier, task_type="SEQ_CLS", target_modules=["query"],
                                 modules_to_save=["classifier"], num_labels=3, seed=5)
    loaded = load_model(str(adapter))
    assert loaded.kind == "sequence_classifier" and len(loaded.labels) == 3
    assert "random_weights" not in loaded.info.notes
    merged = save_merged_adapter(adapter, tmp_path / "merged-3", num_labels=3)
    texts = list(PROMPTS)
    assert [r.scores for r in loaded.classify(texts)] == [r.scores for r in load_model(str(merged)).classify(texts)]


def test_classifier_adapter_on_a_base_lacking_weights_its_head_needs_is_refused(tmp_path, tiny_masked_lm):
    """A masked LM saved without BERT's pooler: the classifier would read a randomly initialised
    pooler that the adapter does not hold either."""
    adapter = build_lora_adapter(tmp_path / "lora", tiny_masked_lm, task_type="SEQ_CLS", target_modules=["query"],
                                 modules_to_save=["classifier"], seed=5)
    with pytest.raises(ModelError, match=r"initialise 2 weight\(s\) randomly.*bert.pooler.dense"):
        load_model(str(adapter))


def test_missing_base_model_is_refused_naming_both_paths(cli, tmp_path, tiny_causal_lm, review_task):
    adapter = build_lora_adapter(tmp_path / "lora", tiny_causal_lm, target_modules=["c_attn"], base_name=str(tmp_path / "gone"))
    tasks_dir, data_dir = review_task
    result = cli("run", "--model", str(adapter), "--tasks", "mine/reviews", "--tasks-dir", str(tasks_dir), "--data-dir", str(data_dir),
                 "--output", str(tmp_path / "run"))
    assert result.returncode == 2, result.stderr
    assert str(adapter) in result.stderr and str(tmp_path / "gone") in result.stderr and "--base-model" in result.stderr
    assert not (tmp_path / "run" / "results.json").exists()
    given = run_in_process(adapter, ["mine/reviews"], review_task, tmp_path / "run", base_model=str(tiny_causal_lm))
    base = given.record.model.notes["peft_adapter"]["base"]
    assert base["named_by"] == "--base-model" and base["adapter_config_names"] == str(tmp_path / "gone")
    assert given.record.settings["base_model"] == str(tiny_causal_lm)


def test_adapter_without_a_base_in_its_config_is_refused(tmp_path, tiny_causal_lm):
    adapter = build_lora_adapter(tmp_path / "lora", tiny_causal_lm, target_modules=["c_attn"], base_name="")
    with pytest.raises(ModelError, match="names no base_model_name_or_path; pass --base-model PATH"):
        load_model(str(adapter))


def test_mismatched_base_model_is_refused_naming_both_paths(cli, tmp_path, tiny_causal_lm, tiny_llama, review_task):
    from evalharness.testing.tiny import build_byte_bpe_tokenizer, build_causal_lm

    adapter = build_lora_adapter(tmp_path / "lora", tiny_causal_lm, target_modules=["c_attn"])
    tasks_dir, data_dir = review_task
    result = cli("run", "--model", str(adapter), "--base-model", str(tiny_llama), "--tasks", "mine/reviews", "--tasks-dir",
                 str(tasks_dir), "--data-dir", str(data_dir), "--output", str(tmp_path / "run"))
    assert result.returncode == 2, result.stderr  # another architecture: no c_attn modules
    assert f"adapter {adapter} and base model {tiny_llama} do not fit" in result.stderr
    assert not (tmp_path / "run" / "results.json").exists()
    narrow = build_causal_lm(tmp_path / "narrow", build_byte_bpe_tokenizer(CORPUS), hidden=48)  # same modules, other shapes
    with pytest.raises(ModelError, match=f"adapter {adapter} and base model {narrow} do not fit"):
        load_model(str(adapter), base_model=str(narrow))


def test_adapter_file_missing_adapter_weights_is_refused(tmp_path, tiny_causal_lm):
    """A LoRA whose B matrices are not in the file would be a no-op: the base model's numbers."""
    from safetensors.torch import load_file, save_file

    adapter = build_lora_adapter(tmp_path / "lora", tiny_causal_lm, target_modules=["c_attn"])
    weights = load_file(adapter / "adapter_model.safetensors")
    save_file({key: value for key, value in weights.items() if "lora_B" not in key}, adapter / "adapter_model.safetensors")
    with pytest.raises(ModelError, match=r"adapter parameter\(s\) are not in the adapter file.*lora_B"):
        load_model(str(adapter))
    weights["base_model.model.transformer.h.0.attn.c_proj.lora_A.weight"] = weights[next(iter(weights))].clone()
    save_file(weights, adapter / "adapter_model.safetensors")
    with pytest.raises(ModelError, match=r"saved adapter weight\(s\) match no module of the base"):
        load_model(str(adapter))


def test_a_base_config_whose_num_labels_is_not_an_integer_is_refused_naming_the_field(tmp_path):
    from evalharness.models.peft_adapters import AdapterSource

    source = AdapterSource(tmp_path, {"task_type": "SEQ_CLS"})
    with pytest.raises(ModelError, match="the base model's config.json num_labels: expected an integer, got a string"):
        source.head_overrides({}, {"num_labels": "two"}, "sequence_classifier")
    assert source.head_overrides({}, {"num_labels": 3}, "sequence_classifier") == {}


def test_adapter_flags_on_a_full_checkpoint_are_refused(tiny_causal_lm):
    with pytest.raises(UsageError, match="--base-model apply to PEFT adapter directories"):
        load_model(str(tiny_causal_lm), base_model=str(tiny_causal_lm))
    with pytest.raises(UsageError, match="--keep-adapter-unmerged apply to PEFT adapter directories"):
        load_model(str(tiny_causal_lm), keep_adapter_unmerged=True)


def test_directory_holding_an_adapter_and_a_full_checkpoint_is_refused(tmp_path, causal_lora):
    adapter, merged = causal_lora
    both = tmp_path / "both"
    shutil.copytree(merged, both)
    for file in adapter.iterdir():
        shutil.copy(file, both / file.name)
    with pytest.raises(ModelError, match="holds both a full checkpoint .* and a PEFT adapter"):
        load_model(str(both))


def test_prompt_learning_adapter_is_refused(tmp_path, tiny_causal_lm):
    from peft import PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_causal_lm), PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4))
    model.peft_config["default"].base_model_name_or_path = str(tiny_causal_lm)
    model.save_pretrained(tmp_path / "prompt")
    with pytest.raises(ModelError, match="adds virtual prompt tokens"):
        load_model(str(tmp_path / "prompt"))


def test_adapter_kind_contradicting_model_kind_is_refused(causal_lora):
    adapter, _ = causal_lora
    with pytest.raises(ModelError, match="contradicts the adapter's task_type CAUSAL_LM"):
        load_model(str(adapter), "masked_lm")


def test_chat_adapter_with_its_own_tokenizer_is_prompted_with_its_template(tmp_path, chat_model, review_task):
    """An SFT adapter saved with its chat tokenizer on a base whose tokenizer has no template:
    the adapter's tokenizer is used (recorded) and the default format is chat."""
    from transformers import AutoTokenizer

    from evalharness.testing.tiny import build_causal_lm

    chat = AutoTokenizer.from_pretrained(chat_model("chatml"))
    plain = AutoTokenizer.from_pretrained(chat_model("chatml"))
    plain.chat_template = None
    base = build_causal_lm(tmp_path / "base", plain, architecture="llama", seed=8)
    assert not (base / "chat_template.jinja").exists()
    adapter = build_lora_adapter(tmp_path / "sft-lora", base, target_modules=["q_proj", "v_proj"], tokenizer=chat)
    result = run_in_process(adapter, ["mine/reviews"], review_task, tmp_path / "run")
    assert result.record.model.notes["peft_adapter"]["tokenizer"] == "the adapter directory"
    fmt = result.record.tasks["mine/reviews"].settings["prompt_format"]
    assert fmt["format"] == "chat"
    assert read_samples(tmp_path / "run", "mine/reviews")[0]["input"].endswith("<|im_start|>assistant\n")


def test_adapter_options_with_a_served_backend_are_refused(cli, tmp_path, causal_lora, review_task):
    adapter, _ = causal_lora
    tasks_dir, data_dir = review_task
    result = cli("run", "--model", str(adapter), "--keep-adapter-unmerged", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1",
                 "--tasks", "mine/reviews", "--tasks-dir", str(tasks_dir), "--data-dir", str(data_dir), "--output", str(tmp_path / "run"))
    assert result.returncode == 2
    assert "--keep-adapter-unmerged apply to checkpoints loaded in process (--backend hf)" in result.stderr


def test_sequential_gate_loads_an_adapter_candidate_and_refuses_one_prompted_unlike_its_baseline(cli, tmp_path, tiny_causal_lm, review_task):
    """``gate --sequential`` evaluates the candidate itself: without run's loading and prompt
    flags it could neither load an adapter whose base lives elsewhere nor match a baseline
    scored with a system prompt (the gate refuses different prompt formats)."""
    adapter = build_lora_adapter(tmp_path / "lora", tiny_causal_lm, target_modules=["c_attn"], base_name=str(tmp_path / "gone"))
    tasks_dir, data_dir = review_task
    run_in_process(adapter, ["mine/reviews"], review_task, tmp_path / "baseline", base_model=str(tiny_causal_lm), system_prompt="Be brief.")
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n  - {task: mine/reviews, metric: accuracy, noninferior: {margin: 50}}\n", encoding="utf-8")
    gate = ["gate", "--sequential", "--model", str(adapter), "--base-model", str(tiny_causal_lm), "--baseline", str(tmp_path / "baseline"),
            "--policy", str(policy), "--batch-examples", "2", "--tasks-dir", str(tasks_dir), "--data-dir", str(data_dir)]
    result = cli(*gate, "--candidate", str(tmp_path / "unprompted"))
    assert result.returncode == 2 and "prompt formats differ" in result.stderr, result.stderr
    assert "sequential" in json.loads((tmp_path / "unprompted" / "results.json").read_text())["settings"]  # a rerun may replace it
    result = cli(*gate, "--system-prompt", "Be brief.", "--candidate", str(tmp_path / "candidate"), "--output", str(tmp_path / "gate.json"))
    # Five examples cannot prove non-inferiority (exit 1); the point is that the gate decided.
    assert result.returncode in (0, 1), result.stderr
    (check,) = json.loads((tmp_path / "gate.json").read_text())["rules"][0]["checks"]
    assert check["sequential"]["examples_used"] == 5
    record = json.loads((tmp_path / "candidate" / "results.json").read_text())
    assert record["settings"]["base_model"] == str(tiny_causal_lm) and record["settings"]["system_prompt"] == "Be brief."
    assert record["model"]["notes"]["peft_adapter"]["base"]["named_by"] == "--base-model"
    baseline = json.loads((tmp_path / "baseline" / "results.json").read_text())
    key = baseline["tasks"]["mine/reviews"]["settings"]["prompt_format"]["key"]
    assert key.startswith("raw|system=") and record["tasks"]["mine/reviews"]["settings"]["prompt_format"]["key"] == key
