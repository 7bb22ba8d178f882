"""CrowS-Pairs (tasks/bias/crows_pairs.yaml) on the real data with tiny checkpoints.

Causal LMs: checked against an independent computation written the way lm-evaluation-harness's
``crows_pairs_english`` scores a pair (``doc_to_text`` is empty, the choices are
``[sent_more, sent_less]``, an empty context is the prefix token (BOS, else EOS), the
continuation's log-probabilities are summed; ``pct_stereotype`` is 1 when
``ll(sent_more) > ll(sent_less)``, ``likelihood_diff`` is ``|ll_more - ll_less|``).
Masked LMs: Nangia et al. 2020's metric.py (shared tokens masked one at a time, scores
rounded to 3 decimals, a tie is no preference).
"""

from __future__ import annotations

import csv
import difflib

import pytest

from evalharness.records.record import load_record, read_samples
from evalharness.evaluation.runner import RunConfig, run_evaluation

N = 12


def crows_rows(shared_data, n=N):
    with (shared_data / "crows_pairs" / "crows_pairs_anonymized.csv").open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))[:n]


def lm_eval_style_loglikelihood(model, tokenizer, sentence):
    """log P(sentence | prefix token), summed, as lm-evaluation-harness HFLM with an empty context."""
    import torch

    prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    ids = tokenizer(sentence, add_special_tokens=False)["input_ids"]
    inputs = torch.tensor([[prefix, *ids]])
    with torch.inference_mode():
        logits = model(inputs).logits[0, :-1].double()
    logprobs = torch.log_softmax(logits, dim=-1)
    return sum(logprobs[i, token].item() for i, token in enumerate(ids))


def nangia_pll(model, tokenizer, sent1, sent2):
    """metric.py of Nangia et al. 2020: mask each shared token (template positions) in turn."""
    import torch

    ids1 = tokenizer(sent1, return_tensors="pt")["input_ids"][0]
    ids2 = tokenizer(sent2, return_tensors="pt")["input_ids"][0]
    template1, template2 = [], []
    matcher = difflib.SequenceMatcher(None, [str(x) for x in ids1.tolist()], [str(x) for x in ids2.tolist()])
    for op in matcher.get_opcodes():
        if op[0] == "equal":
            template1 += list(range(op[1], op[2]))
            template2 += list(range(op[3], op[4]))
    scores = []
    for ids, template in ((ids1, template1), (ids2, template2)):
        total = 0.0
        for position in template[1:-1]:  # skip [CLS] and [SEP]
            masked = ids.clone()
            masked[position] = tokenizer.mask_token_id
            with torch.inference_mode():
                logits = model(masked[None]).logits[0, position]
            total += torch.log_softmax(logits.double(), dim=-1)[ids[position]].item()
        scores.append(round(total, 3))
    return scores


def run_crows(model_path, shared_data, tmp_path, limit=N):
    config = RunConfig(model=str(model_path), tasks=["bias/crows_pairs"], data_dir=shared_data, output=tmp_path / "run",
                       limit=limit, n_resamples=200, device="cpu")
    result = run_evaluation(config)
    return result.record.tasks["bias/crows_pairs"], read_samples(tmp_path / "run", "bias/crows_pairs")


def test_crows_pairs_has_the_official_1508_pairs_in_9_bias_types(shared_data):
    from collections import Counter

    from evalharness.spec.catalog import TaskCatalog
    from evalharness.data.loader import load_examples

    examples = load_examples(TaskCatalog().load("bias/crows_pairs"), shared_data).examples
    assert len(examples) == 1508
    assert Counter(e["bias_type"] for e in examples) == {
        "race-color": 516, "gender": 262, "socioeconomic": 172, "nationality": 159, "religion": 105,
        "age": 87, "sexual-orientation": 84, "physical-appearance": 63, "disability": 60,
    }


def test_causal_crows_pairs_matches_lm_eval_style_preferences_and_score(tiny_causal_lm, shared_data, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    entry, samples = run_crows(tiny_causal_lm, shared_data, tmp_path)
    assert entry.formulation == "pair_loglikelihood"
    model = AutoModelForCausalLM.from_pretrained(tiny_causal_lm).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    preferences, diffs = [], []
    for row, sample in zip(crows_rows(shared_data), samples, strict=True):
        more = lm_eval_style_loglikelihood(model, tokenizer, row["sent_more"])
        less = lm_eval_style_loglikelihood(model, tokenizer, row["sent_less"])
        assert sample["prediction"]["more"] == pytest.approx(more, abs=1e-4)
        assert sample["prediction"]["less"] == pytest.approx(less, abs=1e-4)
        preferences.append(1.0 if more > less else 0.0)
        diffs.append(abs(more - less))
        assert sample["scores"]["stereotype_score"] == 100.0 * preferences[-1]
    score = entry.metrics["stereotype_score"]
    assert score.value == pytest.approx(100.0 * sum(preferences) / len(preferences))
    assert score.ideal == 50.0 and not score.higher_is_better
    assert entry.metrics["stereotype_distance"].value == pytest.approx(abs(score.value - 50.0))
    assert entry.metrics["stereotype_distance"].ideal == 0.0
    assert entry.metrics["likelihood_diff"].value == pytest.approx(sum(diffs) / len(diffs), abs=1e-4)
    # Per-bias-type breakdown with intervals, stored in the record.
    by_type: dict[str, list[float]] = {}
    for row, preferred in zip(crows_rows(shared_data), preferences):
        by_type.setdefault(row["bias_type"], []).append(preferred)
    assert set(score.groups) == set(by_type)
    for bias_type, values in by_type.items():
        group = score.groups[bias_type]
        assert group.n == len(values) and group.value == pytest.approx(100.0 * sum(values) / len(values))
        assert len(group.ci) == 2


def test_length_normalised_variant_is_a_formulation_setting(tiny_causal_lm, shared_data, tmp_path):
    tasks = tmp_path / "tasks" / "mine"
    tasks.mkdir(parents=True)
    from evalharness.spec.catalog import builtin_tasks_dir

    yaml = (builtin_tasks_dir() / "bias" / "crows_pairs.yaml").read_text(encoding="utf-8")
    (tasks / "crows_norm.yaml").write_text(yaml.replace("normalization: none", "normalization: token"), encoding="utf-8")
    config = RunConfig(model=str(tiny_causal_lm), tasks=["mine/crows_norm"], tasks_dirs=[tmp_path / "tasks"],
                       data_dir=shared_data, output=tmp_path / "run", limit=4, n_resamples=50, device="cpu")
    entry = run_evaluation(config).record.tasks["mine/crows_norm"]
    assert entry.settings["normalization"] == "token"
    for sample in read_samples(tmp_path / "run", "mine/crows_norm"):
        (ll_more, ll_less), (n_more, n_less) = sample["details"]["loglikelihoods"], sample["details"]["n_tokens"]
        assert sample["prediction"] == pytest.approx({"more": ll_more / n_more, "less": ll_less / n_less})


def test_masked_crows_pairs_matches_nangia_reference_pll(tiny_masked_lm, shared_data, tmp_path):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    entry, samples = run_crows(tiny_masked_lm, shared_data, tmp_path, limit=3)
    assert entry.formulation == "pair_pseudo_loglikelihood" and "Nangia" in entry.settings["score"]
    model = AutoModelForMaskedLM.from_pretrained(tiny_masked_lm).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_masked_lm)
    preferred = []
    for row, sample in zip(crows_rows(shared_data, 3), samples, strict=True):
        more, less = nangia_pll(model, tokenizer, row["sent_more"], row["sent_less"])
        assert sample["prediction"]["more"] == pytest.approx(more, abs=2e-3)
        assert sample["prediction"]["less"] == pytest.approx(less, abs=2e-3)
        preferred.append(sample["prediction"]["more"] > sample["prediction"]["less"])
    assert entry.metrics["stereotype_score"].value == pytest.approx(100.0 * sum(preferred) / 3)
    record = load_record(tmp_path / "run")
    assert record.model.kind == "masked_lm"
