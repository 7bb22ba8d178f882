"""Prompted formulations: which one answers a task, requests, decoding, few-shot, settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from evalharness.spec.catalog import TaskCatalog, check_task
from evalharness.errors import SpecError, UnsupportedTaskError
from evalharness.models import load_model
from evalharness.prompting import FormulationOptions, choose_formulation
from evalharness.prompting.choice import ChoiceLoglikelihood, pick_choice
from evalharness.prompting.generate import PromptGenerate
from evalharness.prompting.rolling import RollingLoglikelihood
from evalharness.spec.loader import load_task
from evalharness.types import Decoding, GenerationOptions, LabelPrediction, RollingOptions

REVIEWS = [
    ("the movie was great .", "positive"),
    ("what a boring , tedious and forgettable script .", "negative"),
    ("a wonderful , moving and funny story .", "positive"),
    ("this film is not good , and the acting is awful .", "negative"),
    ("it 's a charming and often affecting journey .", "positive"),
]

CLASSIFICATION = """\
version: 1
kind: classification
data: {local: {files: [reviews/test.tsv], format: tsv, columns: {text: sentence}}}
labels: [negative, positive]
prompt:
  template: "Review: {{ text }}\\nSentiment:"
  choices: [" negative", " positive"]
  target: " {{ label }}"
%(extra)s
metrics: [accuracy]
"""


def write_reviews(data_dir: Path) -> Path:
    folder = data_dir / "reviews"
    folder.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{text}\t{label}\n" for text, label in REVIEWS)
    (folder / "test.tsv").write_text("sentence\tlabel\n" + rows, encoding="utf-8")
    train = "".join(f"train sentence {i} .\t{['negative', 'positive'][i % 2]}\n" for i in range(6))
    (folder / "train.tsv").write_text("sentence\tlabel\n" + train, encoding="utf-8")
    return data_dir


def make_task(tmp_path: Path, text: str, name: str = "reviews"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    task = load_task(path, name)
    check_task(task)
    return task


def classification_task(tmp_path: Path, extra: str = ""):
    return make_task(tmp_path, CLASSIFICATION % {"extra": extra})


def test_preference_heads_first_then_choices(tmp_path, tiny_classifier, tiny_causal_lm):
    task = classification_task(tmp_path)
    assert choose_formulation(task, load_model(str(tiny_classifier))).name == "classifier_head"
    assert choose_formulation(task, load_model(str(tiny_causal_lm))).name == "choice_loglikelihood"
    assert choose_formulation(TaskCatalog().load("glue/sst2"), load_model(str(tiny_causal_lm))).name == "choice_loglikelihood"


def test_unsupported_tasks_say_why(tmp_path, tiny_classifier, tiny_causal_lm):
    causal, classifier = load_model(str(tiny_causal_lm)), load_model(str(tiny_classifier))
    no_choices = make_task(tmp_path, CLASSIFICATION.replace('  choices: [" negative", " positive"]\n', "") % {"extra": ""})
    with pytest.raises(UnsupportedTaskError) as caught:
        choose_formulation(no_choices, causal)
    message = str(caught.value)
    assert "a causal_lm checkpoint cannot run this classification task" in message
    assert "classifier_head: a causal_lm checkpoint cannot answer 'classify' requests" in message
    assert "choice_loglikelihood: the task has no prompt.choices" in message

    lm = make_task(tmp_path, "version: 1\nkind: language_modeling\ndata: {local: {files: [x.txt], format: txt}}\nmetrics: [token_perplexity]\n", "lm")
    with pytest.raises(UnsupportedTaskError, match="rolling_loglikelihood: a sequence_classifier checkpoint cannot answer 'loglikelihood_rolling' requests"):
        choose_formulation(lm, classifier)
    assert choose_formulation(lm, causal).name == "rolling_loglikelihood"

    generation = "version: 1\nkind: generation\ndata: {local: {files: [x.jsonl], format: jsonl}}\nmetrics: [chrf]\n"
    unprompted = make_task(tmp_path, generation, "gen")
    with pytest.raises(UnsupportedTaskError, match="prompt_generate: the task has no prompt"):
        choose_formulation(unprompted, causal)
    with pytest.raises(UnsupportedTaskError, match="prompt_generate: a sequence_classifier checkpoint cannot answer 'generate'"):
        choose_formulation(unprompted, classifier)


def test_normalisations_replicate_lm_evaluation_harness():
    """lm-evaluation-harness (api/task.py, multiple_choice): acc = argmax(lls);
    acc_norm = argmax(lls / completion_len), completion_len = len(choice) in characters
    of the choice without the target delimiter; acc_bytes uses UTF-8 byte lengths."""
    from evalharness.prompting.choice import NORMALISERS
    from evalharness.types import LoglikelihoodResponse

    choices = [" no", " a very long answer", " résumé"]
    lls = [-6.0, -20.0, -7.5]
    tokens = [1, 5, 4]
    responses = [LoglikelihoodResponse(ll, False, n) for ll, n in zip(lls, tokens)]
    lengths = {name: [NORMALISERS[name](r, c) for r, c in zip(responses, choices)] for name in NORMALISERS}
    bare = [c[1:] for c in choices]  # lm-eval's choices without the " " delimiter
    assert pick_choice(lls, lengths["none"])[0] == int(np.argmax(lls)) == 0
    assert pick_choice(lls, lengths["char"])[0] == int(np.argmax(np.array(lls) / [len(c) for c in bare])) == 1
    assert pick_choice(lls, lengths["byte"])[0] == int(np.argmax(np.array(lls) / [len(c.encode()) for c in bare])) == 2
    assert pick_choice(lls, lengths["token"])[0] == int(np.argmax(np.array(lls) / tokens)) == 2
    assert pick_choice([-1.0, -1.0], [1.0, 1.0])[0] == 0  # ties: the first choice


def test_choice_requests_and_decoding(tmp_path, tiny_causal_lm):
    adapter = load_model(str(tiny_causal_lm))
    task = classification_task(tmp_path, "formulations: {choice_loglikelihood: {normalization: token}}")
    data_dir = write_reviews(tmp_path / "data")
    from evalharness.data import load_examples

    examples = load_examples(task, data_dir).examples
    formulation = ChoiceLoglikelihood()
    state = formulation.prepare(task, adapter, FormulationOptions(data_dir=data_dir))
    requests = formulation.requests(task, examples, state)
    assert requests[0] == [
        ("Review: the movie was great .\nSentiment:", " negative"),
        ("Review: the movie was great .\nSentiment:", " positive"),
    ]
    responses = adapter.loglikelihood(requests[0])
    decoded = formulation.decode(task, examples[0], responses, state)
    scores = [r.logprob / r.n_tokens for r in responses]
    assert decoded.prediction == LabelPrediction(["negative", "positive"][int(np.argmax(scores))])
    assert decoded.extra["loglikelihoods"] == [r.logprob for r in responses] and decoded.extra["scores"] == scores
    assert decoded.input == requests[0][0][0]
    raw = {"format": "raw", "requested": "auto", "reason": "the tokenizer has no chat template", "key": "raw"}
    assert formulation.settings(task, state) == {"normalization": "token", "few_shot": None, "prompt_format": raw}


def test_few_shot_demonstrations_are_seeded_and_independent_of_the_subset(tmp_path, tiny_causal_lm):
    adapter = load_model(str(tiny_causal_lm))
    data_dir = write_reviews(tmp_path / "data")
    few_shot = "  few_shot: {n: 2, seed: 7, data: {local: {files: [reviews/train.tsv], format: tsv, columns: {text: sentence}}}}"
    task = make_task(tmp_path, (CLASSIFICATION % {"extra": ""}).replace('  target: " {{ label }}"\n', '  target: " {{ label }}"\n' + few_shot + "\n"))
    from evalharness.data import load_examples

    examples = load_examples(task, data_dir).examples
    formulation = ChoiceLoglikelihood()
    state = formulation.prepare(task, adapter, FormulationOptions(data_dir=data_dir, seed=99))
    prompts = [requests[0].context for requests in formulation.requests(task, examples, state)]
    assert all(p.count("train sentence") == 2 and p.endswith(f"Review: {e['text']}\nSentiment:") for p, e in zip(prompts, examples))
    assert "Sentiment: positive\n\nReview:" in prompts[0] or "Sentiment: negative\n\nReview:" in prompts[0]
    again = ChoiceLoglikelihood().prepare(task, adapter, FormulationOptions(data_dir=data_dir, seed=5))
    subset = [requests[0].context for requests in formulation.requests(task, examples[2:4], again)]
    assert subset == prompts[2:4]  # the task's own seed wins over the run seed; --limit-proof
    settings = formulation.settings(task, state)["few_shot"]
    assert settings["n"] == 2 and settings["seed"] == 7 and settings["pool_size"] == 6

    one = formulation.prepare(task, adapter, FormulationOptions(data_dir=data_dir, num_fewshot=1))
    assert formulation.requests(task, examples[:1], one)[0][0].context.count("train sentence") == 1
    zero = formulation.prepare(task, adapter, FormulationOptions(data_dir=data_dir, num_fewshot=0))
    assert formulation.requests(task, examples[:1], zero)[0][0].context == "Review: the movie was great .\nSentiment:"
    with pytest.raises(SpecError, match="7 few-shot demonstrations asked for, but the pool"):
        formulation.prepare(task, adapter, FormulationOptions(data_dir=data_dir, num_fewshot=7))


def test_few_shot_from_the_evaluation_split_uses_the_run_seed(tmp_path, tiny_causal_lm):
    adapter = load_model(str(tiny_causal_lm))
    data_dir = write_reviews(tmp_path / "data")
    task = classification_task(tmp_path)
    from evalharness.data import load_examples

    examples = load_examples(task, data_dir).examples
    formulation = ChoiceLoglikelihood()

    def prompts(seed):
        state = formulation.prepare(task, adapter, FormulationOptions(data_dir=data_dir, num_fewshot=3, seed=seed))
        return [requests[0].context for requests in formulation.requests(task, examples, state)]

    first = prompts(1)
    assert first == prompts(1) and first != prompts(2)
    for prompt, example in zip(first, examples):  # never the example itself as a demonstration
        assert prompt.count(example["text"]) == 1
    no_target = make_task(tmp_path, (CLASSIFICATION % {"extra": ""}).replace('  target: " {{ label }}"\n', ""), "nt")
    with pytest.raises(SpecError, match="prompt.target is needed"):
        formulation.prepare(no_target, adapter, FormulationOptions(data_dir=data_dir, num_fewshot=1))


GENERATION = """\
version: 1
kind: generation
data: {local: {files: [x.jsonl], format: jsonl}}
prompt: {template: "Source: {{ source }}\\nTarget:", stop: ["\\n"]}
generation: {max_new_tokens: 6, no_repeat_ngram_size: 2}
metrics: [chrf]
"""


def test_generation_settings_merge_run_overrides(tmp_path, tiny_causal_lm):
    adapter = load_model(str(tiny_causal_lm))
    task = make_task(tmp_path, GENERATION, "gen")
    formulation = PromptGenerate()
    state = formulation.prepare(task, adapter, FormulationOptions(generation=Decoding(num_beams=2)))
    options = formulation.request_options(task, state)
    assert options == GenerationOptions(stop=("\n",), max_new_tokens=6, num_beams=2, length_penalty=1.0, no_repeat_ngram_size=2, min_new_tokens=0)
    assert formulation.settings(task, state)["generation"]["decoding"] == "beam search"
    with pytest.raises(ValidationError, match="max_new_tokens"):
        Decoding(max_new_tokens=0)
    # an override checked against the task's own maximum (6) when the two are merged
    with pytest.raises(SpecError, match=r"generation.*min_new_tokens \(10\) is larger than max_new_tokens \(6\)"):
        formulation.prepare(task, adapter, FormulationOptions(generation=Decoding(min_new_tokens=10)))


def test_rolling_settings_are_validated_and_resolved(tmp_path, tiny_causal_lm):
    adapter = load_model(str(tiny_causal_lm))
    base = "version: 1\nkind: language_modeling\ndata: {local: {files: [x.txt], format: txt}}\nmetrics: [token_perplexity]\n"
    with pytest.raises(SpecError, match=r"formulations\.rolling_loglikelihood: 'stride' applies to window: sliding only"):
        make_task(tmp_path, base + "formulations: {rolling_loglikelihood: {stride: 4}}\n", "bad")
    with pytest.raises(SpecError, match=r"formulations\.rolling_loglikelihood\.windw: unknown key"):
        make_task(tmp_path, base + "formulations: {rolling_loglikelihood: {windw: sliding}}\n", "typo")
    too_long = make_task(tmp_path, base + "formulations: {rolling_loglikelihood: {max_length: 4096}}\n", "long")
    with pytest.raises(SpecError, match=r"long.yaml: formulations.rolling_loglikelihood: rolling max_length 4096"):
        RollingLoglikelihood().prepare(too_long, adapter, FormulationOptions())
    sliding = make_task(tmp_path, base + "formulations: {rolling_loglikelihood: {window: sliding, max_length: 32}}\n", "ok")
    state = RollingLoglikelihood().prepare(sliding, adapter, FormulationOptions())
    assert RollingLoglikelihood().request_options(sliding, state) == RollingOptions(window="sliding", max_length=32, stride=16, append_eos=False)
    assert RollingLoglikelihood().settings(sliding, state)["prefix_token_id"] == adapter.tokenizer.bos_token_id


def test_an_example_whose_text_field_is_not_text_is_refused_naming_the_field(tmp_path):
    """The data layer makes text fields text; an example built otherwise (the API) is refused
    by the formulation, naming the example and the field, before it reaches a model."""
    from evalharness.errors import DataError
    from evalharness.prompting.heads import ClassifierHead
    from evalharness.types import Example

    task = make_task(tmp_path, CLASSIFICATION % {"extra": ""})
    example = Example("e7", {"text": ["not", "text"], "label": "positive"})
    with pytest.raises(DataError, match=r"example e7: field 'text': expected a string, got an array"):
        ClassifierHead().requests(task, [example], ("negative", "positive"))
