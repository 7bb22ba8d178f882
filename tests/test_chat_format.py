"""Instruct models (issue 16): the prompt format as an explicit, recorded, comparable policy.

Tiny chat models are built locally with the chat templates of four families
(``testing.instruct.CHAT_STYLES``): ChatML with and without a default system prompt, Gemma
(no system role, BOS written by the template and added by the tokenizer) and Llama 2 (BOS in
the template and added by the tokenizer). The rendered prompts must equal
``tokenizer.apply_chat_template`` exactly; the continuation/delimiter rule is
lm-evaluation-harness's (``lm_eval/api/task.py``, ``construct_requests``: with
``apply_chat_template`` and no ``gen_prefix`` the target delimiter is ``""``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping

import pytest

from evalharness.errors import EvalHarnessError, UsageError
from evalharness.records.record import load_record, read_samples
from tests.instruct_fixtures import chat_model, review_task, run_in_process  # noqa: F401  (fixtures)

STYLES = ["chatml", "chatml_default_system", "gemma", "llama2"]


def _tokenizer(model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model)


def _cli_run(cli, model, review_task, out, *flags, tasks="mine/reviews"):
    tasks_dir, data_dir = review_task
    return cli("run", "--model", str(model), "--tasks", tasks, "--tasks-dir", str(tasks_dir), "--data-dir", str(data_dir),
               "--output", str(out), *flags)


# -- rendering: exactly apply_chat_template, with lm-evaluation-harness's turn layout ---------


@pytest.mark.parametrize("style", STYLES)
def test_chat_prompts_differ_from_apply_chat_template_in_no_byte(tmp_path, chat_model, review_task, style):
    """Every sample's input is ``apply_chat_template(messages, add_generation_prompt=True)`` of
    the recorded messages, and the messages are lm-eval's single-turn layout (system turn, then
    one user turn holding the raw few-shot prompt)."""
    model = chat_model(style)
    result = run_in_process(model, ["mine/reviews"], review_task, tmp_path / "run", num_fewshot=1, system_prompt="Be brief.")
    tokenizer = _tokenizer(model)
    entry = result.record.tasks["mine/reviews"]
    assert entry.settings["prompt_format"]["format"] == "chat"
    for row in read_samples(tmp_path / "run", "mine/reviews"):
        messages = row["details"]["messages"]
        assert row["input"] == tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        user = [m for m in messages if m["role"] == "user"]
        assert len(user) == 1 and user[0]["content"].count("Sentiment:") == 2  # the demonstration inlined
        assert row["details"]["choices"] == ["negative", "positive"]  # no target delimiter after the generation prompt


@pytest.mark.parametrize("style", STYLES)
def test_sample_prompts_reach_the_model_as_apply_chat_template_tokens_no_bos_added_or_lost(tmp_path, chat_model, review_task, style):
    """Token by token: what the model is fed for each sample (the adapter's encoding of the
    recorded input) is ``apply_chat_template(messages, tokenize=True, add_generation_prompt=True)``,
    for a log-likelihood and a generation task; equal strings alone would miss a BOS the
    tokenizer adds on top of the template's."""
    from evalharness.models import load_model

    model = chat_model(style)
    run_in_process(model, ["mine/reviews", "mine/review_words"], review_task, tmp_path / "run", num_fewshot=1)
    adapter, tokenizer = load_model(str(model)), _tokenizer(model)
    for task in ("mine/reviews", "mine/review_words"):
        rows = read_samples(tmp_path / "run", task)
        fed = adapter.encode_prompts([row["input"] for row in rows])
        for row, ids in zip(rows, fed, strict=True):
            expected = tokenizer.apply_chat_template(row["details"]["messages"], tokenize=True, add_generation_prompt=True)
            expected = expected["input_ids"] if isinstance(expected, Mapping) else expected
            assert list(ids) == list(expected), (task, row["id"])


def test_template_without_system_role_gets_the_system_prompt_in_its_first_user_turn(tmp_path, chat_model, review_task):
    result = run_in_process(chat_model("gemma"), ["mine/reviews"], review_task, tmp_path / "run", system_prompt="Be brief.")
    fmt = result.record.tasks["mine/reviews"].settings["prompt_format"]
    assert fmt["system_role"] == "merged into the first user turn (the template has no system role)"
    row = read_samples(tmp_path / "run", "mine/reviews")[0]
    assert [m["role"] for m in row["details"]["messages"]] == ["user"]
    assert row["details"]["messages"][0]["content"].startswith("Be brief.\n\nReview: ")
    assert "Be brief." in row["input"]  # the system text was not dropped (lm-eval drops it on a TemplateError)


def test_template_that_injects_its_own_system_prompt_is_recorded(tmp_path, chat_model, review_task):
    result = run_in_process(chat_model("chatml_default_system"), ["mine/reviews"], review_task, tmp_path / "run")
    fmt = result.record.tasks["mine/reviews"].settings["prompt_format"]
    assert fmt["template_default_system_prompt"]["text"] == "You are a tiny helpful assistant."
    assert "You are a tiny helpful assistant." in read_samples(tmp_path / "run", "mine/reviews")[0]["input"]


def test_fewshot_as_multiturn_lays_demonstrations_out_as_user_and_assistant_turns(tmp_path, chat_model, review_task):
    result = run_in_process(chat_model("chatml"), ["mine/reviews"], review_task, tmp_path / "run", num_fewshot=2,
                            fewshot_as_multiturn=True)
    fmt = result.record.tasks["mine/reviews"].settings["prompt_format"]
    assert fmt["few_shot_turns"] == "user/assistant turns" and fmt["key"] == "chat|fewshot=multiturn"
    for row in read_samples(tmp_path / "run", "mine/reviews"):
        messages = row["details"]["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
        assert all(m["content"] in ("negative", "positive") for m in messages if m["role"] == "assistant")  # target without " "
        assert all(m["content"].startswith("Review: ") and m["content"].endswith("Sentiment:") for m in messages if m["role"] == "user")


def test_loglikelihood_continuation_follows_the_generation_prompt_without_its_delimiter(tmp_path, chat_model, review_task):
    """``multiple_choice`` tasks too: each choice follows the assistant turn without ``choice_prefix``."""
    from evalharness.models import load_model
    from evalharness.prompting import FormulationOptions
    from evalharness.prompting.multiple_choice import FieldChoiceLoglikelihood
    from evalharness.spec.loader import load_task
    from evalharness.types import Example

    adapter = load_model(str(chat_model("chatml")))
    path = tmp_path / "mc.yaml"
    path.write_text(
        "version: 1\nkind: multiple_choice\ndata: {local: {files: [x.jsonl], format: jsonl}}\n"
        "prompt: {template: 'Which fits? {{ context }}'}\nmetrics: [choice_accuracy]\n",
        encoding="utf-8",
    )
    task = load_task(path, "mc")
    formulation = FieldChoiceLoglikelihood()
    state = formulation.prepare(task, adapter, FormulationOptions())
    example = Example("1", {"context": "a movie", "choices": ["great", "dull"], "label": 0})
    (first, second) = formulation.requests(task, [example], state)[0]
    assert first.context.endswith("<|im_start|>assistant\n") and (first.continuation, second.continuation) == ("great", "dull")
    raw = formulation.prepare(task, adapter, FormulationOptions(prompt_format="raw"))
    assert [r.continuation for r in formulation.requests(task, [example], raw)[0]] == [" great", " dull"]


# -- the policy: chosen, recorded, refused when it cannot hold ----------------------------------


def test_auto_format_is_chat_for_an_instruct_model_and_raw_for_a_base_model_with_a_template(tmp_path, chat_model, review_task):
    instruct = run_in_process(chat_model("gemma"), ["mine/reviews"], review_task, tmp_path / "a")
    base = run_in_process(chat_model("gemma", instruct=False), ["mine/reviews"], review_task, tmp_path / "b")
    chosen = instruct.record.tasks["mine/reviews"].settings["prompt_format"]
    assert chosen["format"] == "chat" and chosen["requested"] == "auto" and "'<end_of_turn>'" in chosen["reason"]
    fallback = base.record.tasks["mine/reviews"].settings["prompt_format"]
    assert fallback["format"] == "raw" and "nothing marks" in fallback["reason"] and "--prompt-format chat" in fallback["reason"]
    assert not read_samples(tmp_path / "b", "mine/reviews")[0]["input"].startswith("<bos>")


def test_an_instruct_name_marks_a_model_whose_eos_is_not_its_end_of_turn(tmp_path, chat_model, review_task):
    model = chat_model("gemma", instruct=False, name="tiny-gemma-it")
    fmt = run_in_process(model, ["mine/reviews"], review_task, tmp_path / "run").record.tasks["mine/reviews"].settings["prompt_format"]
    assert fmt["format"] == "chat" and "its name 'tiny-gemma-it' marks an instruct/chat model" in fmt["reason"]


def test_chat_format_for_a_tokenizer_without_chat_template_is_refused(cli, tmp_path, tiny_llama, review_task):
    result = _cli_run(cli, tiny_llama, review_task, tmp_path / "run", "--prompt-format", "chat")
    assert result.returncode == 2, result.stderr
    assert "--prompt-format chat" in result.stderr and "has no chat template" in result.stderr
    assert not (tmp_path / "run" / "results.json").exists()


def test_a_backend_without_a_tokenizer_is_raw_saying_so_and_refuses_chat(tmp_path, review_task):
    """A served model without --tokenizer has no template to render: the recorded reason must
    say the tokenizer is absent, not that a tokenizer lacks a template."""
    from evalharness.evaluation.runner import RunConfig, run_evaluation
    from evalharness.testing.scripted import ScriptedAdapter

    tasks_dir, data_dir = review_task
    adapter = ScriptedAdapter(generate_fn=lambda prompt, options: "positive")
    assert getattr(adapter, "tokenizer", None) is None
    config = RunConfig(model="scripted", tasks=["mine/review_words"], tasks_dirs=[tasks_dir], data_dir=data_dir, output=tmp_path / "run")
    fmt = run_evaluation(config, adapter=adapter).record.tasks["mine/review_words"].settings["prompt_format"]
    assert fmt == {"format": "raw", "requested": "auto", "reason": "the backend exposes no tokenizer, so no chat template", "key": "raw"}
    chat = config.updated(output=tmp_path / "chat", prompt_format="chat")
    with pytest.raises(EvalHarnessError, match=r"--prompt-format chat: for scripted, the backend exposes no tokenizer"):
        run_evaluation(chat, adapter=adapter)


def test_prompt_format_on_a_run_without_prompted_tasks_is_refused(cli, tmp_path, chat_model, review_task):
    result = _cli_run(cli, chat_model("chatml"), review_task, tmp_path / "run", "--prompt-format", "chat", tasks="mine/words")
    assert result.returncode == 2, result.stderr
    assert "--prompt-format chat does not apply to any task of this run" in result.stderr


def test_perplexity_of_an_instruct_model_is_raw_with_the_reason(tmp_path, chat_model, review_task):
    entry = run_in_process(chat_model("chatml"), ["mine/words"], review_task, tmp_path / "run").record.tasks["mine/words"]
    assert entry.settings["prompt_format"]["format"] == "raw" and "no prompt" in entry.settings["prompt_format"]["reason"]
    assert "prompt_lint" not in entry.settings


def test_fewshot_as_multiturn_contradicting_raw_format_is_refused(tmp_path, chat_model, review_task):
    with pytest.raises(UsageError, match="contradicts --prompt-format raw"):
        run_in_process(chat_model("chatml"), ["mine/reviews"], review_task, tmp_path / "run", prompt_format="raw",
                       fewshot_as_multiturn=True, num_fewshot=1)


def test_system_prompt_is_read_from_a_file_and_recorded_with_its_hash(tmp_path, chat_model, review_task):
    file = tmp_path / "system.txt"
    file.write_text("Answer with one word.\n", encoding="utf-8")
    result = run_in_process(chat_model("chatml"), ["mine/reviews"], review_task, tmp_path / "run", system_prompt=str(file))
    fmt = result.record.tasks["mine/reviews"].settings["prompt_format"]
    assert fmt["system_prompt"]["text"] == "Answer with one word.\n" and fmt["key"].startswith("chat|system=sha256:")
    assert result.record.settings["system_prompt"] == "Answer with one word.\n"


# -- BOS and end-of-turn: prevented and linted at the token level -------------------------------


def test_doubled_bos_from_a_template_that_writes_bos_is_prevented(tmp_path, chat_model, review_task):
    """Llama 2 style: the template writes ``<s>`` and the tokenizer adds ``<s>`` too; the model
    sees one (a naive ``tokenizer(prompt)`` would give two)."""
    from evalharness.models import load_model

    model = chat_model("llama2")
    result = run_in_process(model, ["mine/reviews"], review_task, tmp_path / "run")
    entry = result.record.tasks["mine/reviews"]
    assert entry.settings["prompt_format"]["template_writes_bos"] is True
    assert entry.settings["prompt_lint"]["bos_doubled"] == 0 and entry.settings["prompt_lint"]["bos_missing"] == 0
    adapter = load_model(str(model))
    bos = adapter.tokenizer.bos_token_id
    prompt = read_samples(tmp_path / "run", "mine/reviews")[0]["input"]
    assert prompt.startswith("<s>[INST] ")
    assert adapter.tokenizer(prompt)["input_ids"][:2] == [bos, bos]  # the hazard
    assert adapter.encode_prompts([prompt])[0][:2] != [bos, bos] and adapter.encode_prompts([prompt])[0][0] == bos


class _Encoder:
    """A stand-in adapter whose encoding lets a doubled or missing BOS through."""

    class tokenizer:  # noqa: N801
        bos_token_id = 1

    adds_bos = True

    def __init__(self, rows):
        self.rows = rows

    def encode_prompts(self, texts):
        return [self.rows[text] for text in texts]


def test_bos_lint_counts_doubled_and_missing_bos_token_by_token():
    from evalharness.prompting.chat import PromptFormat
    from evalharness.prompting.lint import lint_notes, lint_prompts
    from evalharness.types import LoglikelihoodRequest, LoglikelihoodResponse, RequestKind

    encoder = _Encoder({"a": [1, 1, 5], "b": [5, 6], "c": [1, 7]})
    requests = [LoglikelihoodRequest(text, " x") for text in ("a", "a", "b", "c")]
    responses = [LoglikelihoodResponse(-1.0, False, 1, truncated=index == 3) for index in range(4)]
    lint = lint_prompts(encoder, RequestKind.LOGLIKELIHOOD, requests, None, responses, PromptFormat("raw", "test", "raw"))
    assert (lint["prompts"], lint["requests"], lint["bos_doubled"], lint["bos_missing"], lint["truncated"]) == (3, 4, 1, 1, 1)
    assert lint_notes(lint) == [
        "prompt lint: 1 of 3 prompts start with a doubled BOS",
        "prompt lint: 1 of 3 prompts lack the BOS token the tokenizer or chat template expects",
        "prompt lint: 1 of 4 requests were truncated to fit the model",
    ]


def test_prompt_lint_is_in_the_record_and_the_summary(capsys, tmp_path, chat_model, review_task):
    from evalharness.commands.display import print_run
    from evalharness.terminal import console

    result = run_in_process(chat_model("llama2"), ["mine/reviews"], review_task, tmp_path / "run")
    assert load_record(tmp_path / "run").tasks["mine/reviews"].settings["prompt_lint"]["bos_doubled"] == 0
    print_run(result.record, tmp_path / "run", console=console())
    text = capsys.readouterr().out
    assert "mine/reviews: chat format (chosen: the tokenizer has a chat template" in text
    assert "token lint over 5 prompts: 0 doubled BOS, 0 missing BOS, 0 truncated" in text


def test_generation_stops_at_the_end_of_turn_token(tmp_path, chat_model, review_task):
    """Gemma style, EOS ``<eos>`` only: a chat run adds ``<end_of_turn>`` to the stop set, and a
    stop that decoding drops (a special token) ends generation as a token id."""
    import torch
    from transformers import AutoModelForCausalLM

    from evalharness.models import load_model
    from evalharness.types import GenerationOptions

    source = chat_model("gemma", instruct=False)
    model_dir = tmp_path / "eager-to-end"
    shutil.copytree(source, model_dir)
    adapter = load_model(str(model_dir))
    prompt = "<bos><start_of_turn>user\nReview: the movie was great .<end_of_turn>\n<start_of_turn>model\n"
    free = adapter.generate([prompt], options=GenerationOptions(max_new_tokens=12))[0]
    weights = AutoModelForCausalLM.from_pretrained(model_dir)
    first = weights.generate(**adapter.tokenizer(prompt, add_special_tokens=False, return_tensors="pt"), max_new_tokens=3, do_sample=False)
    eot = adapter.tokenizer.convert_tokens_to_ids("<end_of_turn>")
    with torch.no_grad():  # make <end_of_turn> win at step 3: its output row is the winner's, doubled
        weights.lm_head.weight[eot] = 2 * weights.lm_head.weight[int(first[0, -1])]
    weights.save_pretrained(model_dir)
    adapter = load_model(str(model_dir))
    ids = adapter.encode_prompts([prompt])
    raw = weights.generate(torch.tensor(ids), max_new_tokens=12, do_sample=False)[0, len(ids[0]):].tolist()
    assert eot in raw, "precondition: the edited model writes <end_of_turn>"
    stopped = adapter.generate([prompt], options=GenerationOptions(stop=("<end_of_turn>",), max_new_tokens=12))[0]
    unstopped = adapter.generate([prompt], options=GenerationOptions(max_new_tokens=12))[0]
    assert stopped.n_tokens == raw.index(eot) and unstopped.n_tokens > stopped.n_tokens and free.n_tokens >= 1
    assert stopped.text == adapter.tokenizer.decode(raw[: raw.index(eot)], skip_special_tokens=True)
    result = run_in_process(model_dir, ["mine/review_words"], review_task, tmp_path / "run", prompt_format="chat")
    entry = result.record.tasks["mine/review_words"]
    assert entry.settings["stop"] == ["\n", "<end_of_turn>"] and entry.settings["prompt_lint"]["end_of_turn_not_in_stops"] == 0


# -- reasoning traces --------------------------------------------------------------------------


def _thinking_adapter():
    from evalharness.testing.scripted import ScriptedAdapter

    answers = ["<think>long thoughts</think> positive", "<think>never ends", "negative", "<think>a</think>x</think> great", "fine"]
    return ScriptedAdapter(generate_fn=lambda prompt, options: answers[len(prompt) % len(answers)])


def test_strip_thinking_removes_reasoning_before_metrics_and_records_the_outcomes(tmp_path, review_task):
    from evalharness.evaluation.runner import RunConfig, run_evaluation
    from evalharness.prompting.generate import strip_reasoning

    assert strip_reasoning("<think>a</think>x</think> great", "</think>") == (" great", "<think>a</think>x</think>", "stripped")
    assert strip_reasoning("<think>never ends", "</think>") == ("", "<think>never ends", "unterminated")
    assert strip_reasoning("fine", "</think>") == ("fine", "", "no_trace")
    tasks_dir, data_dir = review_task
    config = RunConfig(model="scripted", tasks=["mine/review_words"], tasks_dirs=[tasks_dir], data_dir=data_dir,
                       output=tmp_path / "run", strip_thinking="</think>")
    entry = run_evaluation(config, adapter=_thinking_adapter()).record.tasks["mine/review_words"]
    fmt = entry.settings["prompt_format"]
    assert fmt["strip_thinking"] == "</think>" and fmt["key"] == "raw|strip_thinking=</think>"
    outcomes = entry.settings["thinking_outcomes"]
    rows = read_samples(tmp_path / "run", "mine/review_words")
    assert sum(outcomes.values()) == len(rows) == 5
    for row in rows:
        answer, _, outcome = strip_reasoning(row["details"]["generated"], "</think>")
        assert row["prediction"] == answer.strip() and row["details"]["thinking"] == outcome and "<think>" not in row["prediction"]
    if outcomes["unterminated"]:
        assert any("never closed it" in note for note in entry.notes)


def test_strip_thinking_outcomes_are_counted_over_every_variant_of_a_counterfactual_probe(tmp_path, review_task):
    """The counterfactual wrapper answers each example several times through the generation
    formulation: every variant's generation is stripped and counted (none lost in the wrapper)."""
    from evalharness.evaluation.runner import RunConfig, run_evaluation

    _, data_dir = review_task
    probe = tmp_path / "tasks" / "cf"
    probe.mkdir(parents=True)
    (probe / "words.yaml").write_text(
        'version: 1\nkind: generation\ndata: {local: {files: [gen/data.jsonl], format: jsonl}}\n'
        'prompt: {template: "Review: {{ source }}\\nIn one word:", stop: ["\\n"]}\ngeneration: {max_new_tokens: 6}\n'
        'metrics: [flip_rate]\ncounterfactual: {fields: [source], groups: {tone: [[great, awful], [wonderful, boring]]}}\n',
        encoding="utf-8",
    )
    config = RunConfig(model="scripted", tasks=["cf/words"], tasks_dirs=[tmp_path / "tasks"], data_dir=data_dir,
                       output=tmp_path / "run", strip_thinking="</think>")
    entry = run_evaluation(config, adapter=_thinking_adapter()).record.tasks["cf/words"]
    rows = read_samples(tmp_path / "run", "cf/words")
    variants = [details for row in rows for details in row["details"]["variants"].values()]
    assert len(variants) == len(rows) + sum(entry.settings["perturbed_examples"].values()) > len(rows)
    outcomes = entry.settings["thinking_outcomes"]
    assert sum(outcomes.values()) == len(variants)
    assert outcomes == {name: sum(details["thinking"] == name for details in variants) for name in outcomes}
    assert entry.settings["prompt_format"]["strip_thinking"] == "</think>"


def test_strip_thinking_with_a_delimiter_that_decoding_removes_is_refused(tmp_path, chat_model, review_task):
    with pytest.raises(UsageError, match="special token, which decoding removes"):
        run_in_process(chat_model("gemma"), ["mine/review_words"], review_task, tmp_path / "run", strip_thinking="<end_of_turn>")


# -- comparability: raw and chat numbers never share a column, a comparison or a gate -----------


@pytest.fixture(scope="module")
def raw_and_chat_runs(tmp_path_factory, chat_model, review_task):
    """Two instruct models on one task: one prompted with its chat template, one as raw text."""
    root = tmp_path_factory.mktemp("formats")
    run_in_process(chat_model("chatml"), ["mine/reviews"], review_task, root / "chat")
    run_in_process(chat_model("llama2"), ["mine/reviews"], review_task, root / "raw", prompt_format="raw")
    return root


def test_mixing_raw_and_chat_runs_in_one_leaderboard_column_is_refused(cli, tmp_path, raw_and_chat_runs):
    assert load_record(raw_and_chat_runs / "raw").tasks["mine/reviews"].settings["prompt_format"]["key"] == "raw"
    result = cli("leaderboard", str(raw_and_chat_runs / "raw"), str(raw_and_chat_runs / "chat"))
    assert result.returncode == 2, result.stdout
    assert "prompt format" in result.stderr and "raw:" in result.stderr and "chat:" in result.stderr
    split = cli("leaderboard", str(raw_and_chat_runs / "raw"), str(raw_and_chat_runs / "chat"), "--allow-incomparable")
    assert split.returncode == 0, split.stderr
    assert "†" in split.stdout


def test_compare_and_gate_refuse_runs_of_different_prompt_formats(cli, tmp_path, raw_and_chat_runs, review_task):
    runs = (str(raw_and_chat_runs / "raw"), str(raw_and_chat_runs / "chat"))
    for flags in ((), ("--allow-different-data",)):
        result = cli("compare", *runs, *flags)
        assert result.returncode == 2, result.stdout
        assert "prompt formats differ (raw in" in result.stderr and "chat in" in result.stderr
    policy = tmp_path / "gate.yaml"
    policy.write_text("rules:\n  - {task: mine/reviews, metric: accuracy, max_drop: 5}\n", encoding="utf-8")
    gate = cli("gate", "--policy", str(policy), "--baseline", runs[0], "--candidate", runs[1], "--tasks-dir", str(review_task[0]))
    assert gate.returncode == 2, gate.stdout
    assert "prompt formats differ" in gate.stderr


def test_records_without_a_prompt_format_are_raw_and_heads_fit_any_column():
    from evalharness.records.prompt_format import prompt_format_key

    assert prompt_format_key("choice_loglikelihood", {"normalization": "none"}) == "raw"
    assert prompt_format_key("counterfactual:prompt_generate", {}) == "raw"
    assert prompt_format_key("classifier_head", {"label_map": {}}) is None
    assert prompt_format_key("prompt_generate", {"prompt_format": {"key": "chat|fewshot=multiturn"}}) == "chat|fewshot=multiturn"


def test_a_classifier_head_shares_a_column_with_chat_runs(tmp_path, raw_and_chat_runs, tiny_classifier, review_task):
    from evalharness.leaderboard import build_leaderboard

    run_in_process(tiny_classifier, ["mine/reviews"], review_task, tmp_path / "head")
    board = build_leaderboard([raw_and_chat_runs / "chat", tmp_path / "head"])
    assert len(board.values) == 2 and not board.data["incomparable"].any()


# -- tasks show --render -------------------------------------------------------------------------


def test_tasks_show_render_prints_the_exact_chat_prompt_and_its_token_ids(cli, capsys, chat_model, review_task):
    model = chat_model("gemma")
    tasks_dir, data_dir = review_task
    result = cli("tasks", "show", "mine/reviews", "--tasks-dir", str(tasks_dir), "--render", "--model", str(model),
                 "--data-dir", str(data_dir), "--system-prompt", "Be brief.", "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    tokenizer = _tokenizer(model)
    expected = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Be brief.\n\nReview: the movie was great .\nSentiment:"}], tokenize=False, add_generation_prompt=True
    )
    assert [r["context"] for r in shown["requests"]] == [expected, expected]
    assert [r["continuation"] for r in shown["requests"]] == ["negative", "positive"]
    assert shown["token_ids"][expected] == tokenizer(expected, add_special_tokens=False)["input_ids"]  # one <bos>, the template's
    assert shown["prompt_format"]["format"] == "chat"
    from evalharness.commands.render import print_rendered
    from evalharness.evaluation.render import render_example
    from evalharness.evaluation.settings import RunSettings

    config = RunSettings(model=str(model), tasks=["mine/reviews"], tasks_dirs=[tasks_dir], data_dir=data_dir, system_prompt="Be brief.")
    print_rendered(render_example(config, "mine/reviews"))
    text = capsys.readouterr().out
    assert f"----- request 1: context ({len(shown['token_ids'][expected])} tokens) -----\n{expected}\n" in text
    assert "----- request 2: continuation -----\npositive\n" in text and "# prompt format: chat" in text


def test_tasks_show_render_without_a_model_is_refused(cli, review_task):
    tasks_dir, _ = review_task
    result = cli("tasks", "show", "mine/reviews", "--tasks-dir", str(tasks_dir), "--render")
    assert result.returncode == 2 and "--render needs --model PATH" in result.stderr


# -- lm-evaluation-harness's own rendering (when its side venv exists) ---------------------------


@pytest.mark.slow
def test_samples_equal_lm_eval_apply_chat_template_token_by_token(tmp_path, chat_model, review_task):
    """Both tasks (log-likelihood and generation) against lm-evaluation-harness's own
    ``--apply_chat_template`` requests, as strings and token ids (``benchmarks/parity_chat_template.py``,
    which checks every template style), on the hardest style: Llama 2's template writes BOS,
    which the tokenizer would add a second time. Runs where the
    lm-eval venv exists: ``benchmarks/.cache/venv-lm-eval`` (``benchmarks/peer_envs.py``) or
    ``$EVALHARNESS_LM_EVAL_PYTHON``."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import REPO

    candidates = [REPO / "benchmarks" / ".cache" / "venv-lm-eval" / "bin" / "python"]
    candidates += [Path(os.environ["EVALHARNESS_LM_EVAL_PYTHON"])] if os.environ.get("EVALHARNESS_LM_EVAL_PYTHON") else []
    python = next((candidate for candidate in candidates if candidate.is_file()), None)
    if python is None:
        pytest.skip("lm-evaluation-harness venv not found (benchmarks/.cache/venv-lm-eval or $EVALHARNESS_LM_EVAL_PYTHON)")
    tasks_dir, data_dir = review_task
    out = tmp_path / "parity.json"
    completed = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "parity_chat_template.py"), "--model", str(chat_model("llama2")),
         "--lm-eval-python", str(python), "--tasks-dir", str(tasks_dir), "--data-dir", str(data_dir), "--task", "mine/reviews",
         "--task", "mine/review_words", "--num-fewshot", "1", "--output", str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = {entry["task"]: entry for entry in json.loads(out.read_text())}
    assert [(r["requests"], r["lm_eval_requests"], r["identical_strings"], r["identical_tokens"]) for r in report.values()] == [
        (10, 10, 10, 10), (5, 5, 5, 5)
    ]


def test_chat_prompts_in_a_run_are_rerendered_identically_after_resume(tmp_path, chat_model, review_task):
    """The prediction cache keys the rendered prompts: a rerun into the same directory hits every request."""
    model = chat_model("chatml")
    run_in_process(model, ["mine/reviews"], review_task, tmp_path / "run")
    again = run_in_process(model, ["mine/reviews"], review_task, tmp_path / "run")
    execution = again.record.tasks["mine/reviews"].execution
    assert execution["cache"]["hits"] == execution["requests"] == 10


def test_unknown_prompt_format_is_refused(cli, tmp_path, chat_model, review_task):
    result = _cli_run(cli, chat_model("chatml"), review_task, tmp_path / "run", "--prompt-format", "chatml")
    assert result.returncode == 2 and "--prompt-format: expected auto, raw or chat" in result.stderr
    with pytest.raises(EvalHarnessError):
        run_in_process(chat_model("chatml"), ["mine/reviews"], review_task, tmp_path / "x", system_prompt="   ")
