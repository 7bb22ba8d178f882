"""The masked-LM adapter: pseudo-log-likelihoods (Salazar et al. 2020) and CrowS-Pairs' shared
tokens (Nangia et al. 2020), checked against a direct computation written out here."""

from __future__ import annotations

import csv
import difflib
import json

import pytest

from evalharness.errors import UnsupportedTaskError, UsageError
from evalharness.models import load_model
from evalharness.records.record import load_record, read_samples
from evalharness.evaluation.runner import RunConfig, run_evaluation
from evalharness.types import PseudoLoglikelihoodRequest, RequestKind

TEXTS = [
    "the movie was great but the plot was dull .",
    "a wonderful , moving and funny story about love and loss .",
    "what a boring film",
    "the denver broncos defeated the carolina panthers 24 - 10 .",
]


def direct_pll(adapter, text, positions=None):
    """Reference: the text with its special tokens, one masked copy per scored token, each run
    alone, log-softmax at the masked position, summed."""
    import torch

    ids = adapter.tokenizer(text, return_tensors="pt")["input_ids"][0]
    content = [i for i, token in enumerate(ids.tolist()) if token not in adapter.tokenizer.all_special_ids]
    chosen = content if positions is None else [content[p] for p in positions]
    total = 0.0
    with torch.inference_mode():
        for index in chosen:
            masked = ids.clone()
            masked[index] = adapter.tokenizer.mask_token_id
            logits = adapter.model(input_ids=masked[None]).logits[0, index]
            total += torch.log_softmax(logits.double(), dim=-1)[ids[index]].item()
    return total, len(chosen)


@pytest.fixture(scope="module")
def mlm(tiny_masked_lm):
    return load_model(str(tiny_masked_lm))


def crows_pairs(shared_data, n):
    with (shared_data / "crows_pairs" / "crows_pairs_anonymized.csv").open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    return [(row["sent_more"], row["sent_less"]) for row in rows[:n]]


def test_kind_and_requests(mlm):
    assert mlm.kind == "masked_lm" and mlm.answers == frozenset({RequestKind.PSEUDO_LOGLIKELIHOOD})
    assert mlm.info.architecture == "BertForMaskedLM"


def test_pseudo_loglikelihood_equals_a_direct_computation(mlm):
    responses = mlm.pseudo_loglikelihood(TEXTS, batch_size=5)
    for text, response in zip(TEXTS, responses):
        expected, count = direct_pll(mlm, text)
        assert response.n_tokens == count == len(mlm.tokenize(text))
        assert response.logprob == pytest.approx(expected, abs=1e-4) and response.logprob < 0


def test_chosen_positions_and_character_spans(mlm):
    text = TEXTS[3]
    positions = (0, 2, 5)
    (response,) = mlm.pseudo_loglikelihood([PseudoLoglikelihoodRequest(text, positions)])
    expected, count = direct_pll(mlm, text, positions)
    assert response.n_tokens == count == 3 and response.logprob == pytest.approx(expected, abs=1e-4)
    span = (text.index("carolina"), text.index("carolina") + len("carolina panthers"))
    chosen = mlm.token_positions(text, [span])
    pieces = mlm.tokenizer.convert_ids_to_tokens([mlm.tokenize(text)[p] for p in chosen])
    assert mlm.tokenizer.convert_tokens_to_string(pieces) == "carolina panthers"
    with pytest.raises(UsageError, match="position 99 is outside"):
        mlm.pseudo_loglikelihood([(text, [99])])


def test_batch_size_does_not_change_scores(mlm):
    one = mlm.pseudo_loglikelihood(TEXTS, batch_size=1)
    many = mlm.pseudo_loglikelihood(TEXTS, batch_size=16)
    assert [r.n_tokens for r in one] == [r.n_tokens for r in many]
    assert [r.logprob for r in one] == pytest.approx([r.logprob for r in many], abs=1e-4)


def test_text_longer_than_the_model_is_scored_in_windows(mlm):
    text = " ".join(TEXTS * 12)
    tokens = len(mlm.tokenize(text))
    assert tokens > mlm.window_tokens
    (response,) = mlm.pseudo_loglikelihood([text], batch_size=64)
    assert response.n_tokens == tokens and response.logprob < 0
    # The first window's tokens score exactly as that window's text scored alone.
    first = mlm.tokenizer.decode(mlm.tokenize(text)[: mlm.window_tokens])
    (window,) = mlm.pseudo_loglikelihood([PseudoLoglikelihoodRequest(text, tuple(range(mlm.window_tokens)))])
    assert mlm.tokenize(first) == mlm.tokenize(text)[: mlm.window_tokens]
    assert window.logprob == pytest.approx(mlm.pseudo_loglikelihood([first])[0].logprob, abs=1e-4)


def test_crows_pairs_shared_tokens_as_in_nangia_et_al(mlm, shared_data):
    for index, (more, less) in enumerate(crows_pairs(shared_data, 6)):
        shared_more, shared_less = mlm.shared_positions(more, less)
        ids_more, ids_less = mlm.tokenize(more), mlm.tokenize(less)
        assert [ids_more[p] for p in shared_more] == [ids_less[p] for p in shared_less]
        assert 0 < len(shared_more) < len(ids_more) or ids_more == ids_less
        # The reference metric.py: difflib over the encodings with special tokens, "equal"
        # blocks, then the first and last template entries ([CLS], [SEP]) skipped.
        full_more = mlm.tokenizer(more)["input_ids"]
        full_less = mlm.tokenizer(less)["input_ids"]
        template = [
            i for op in difflib.SequenceMatcher(None, [str(x) for x in full_more], [str(x) for x in full_less]).get_opcodes()
            if op[0] == "equal" for i in range(op[1], op[2])
        ][1:-1]
        assert [p + 1 for p in shared_more] == template
        if index > 0:
            continue  # scoring against the slow direct loop once is enough
        scored = mlm.pseudo_loglikelihood([(more, shared_more), (less, shared_less)])
        for response, text, positions in zip(scored, (more, less), (shared_more, shared_less)):
            expected, count = direct_pll(mlm, text, positions)
            assert response.n_tokens == count and response.logprob == pytest.approx(expected, abs=1e-4)


METRIC_OF_KIND = {"language_modeling": "token_perplexity", "generation": "chrf"}


def write_lm_task(tmp_path, kind="language_modeling", fields=("text",)):
    with (tmp_path / "lm.jsonl").open("w", encoding="utf-8") as stream:
        for index, text in enumerate(TEXTS):
            row = {"id": f"t{index}", **{name: text for name in fields}}
            if kind == "generation":
                row["references"] = [text]
            stream.write(json.dumps(row) + "\n")
    (tmp_path / "tasks").mkdir(exist_ok=True)
    (tmp_path / "tasks" / f"{kind}_mini.yaml").write_text(
        f"version: 1\nkind: {kind}\ndata: {{local: {{files: [lm.jsonl], format: jsonl}}}}\nmetrics: [{METRIC_OF_KIND[kind]}]\n",
        encoding="utf-8",
    )


def test_run_end_to_end_language_modeling(cli, tmp_path, mlm, tiny_masked_lm):
    write_lm_task(tmp_path)
    out = tmp_path / "run"
    result = cli("run", "--model", str(tiny_masked_lm), "--tasks", "language_modeling_mini", "--tasks-dir",
                 str(tmp_path / "tasks"), "--data-dir", str(tmp_path), "--output", str(out))
    assert result.returncode == 0, result.stderr
    task = load_record(out).tasks["language_modeling_mini"]
    assert task.formulation == "pseudo_loglikelihood" and "Salazar" in task.settings["score"]
    samples = read_samples(out, "language_modeling_mini")
    direct = mlm.pseudo_loglikelihood(TEXTS)
    for sample, response in zip(samples, direct):
        assert sample["prediction"]["n_tokens"] == response.n_tokens
        assert sample["prediction"]["logprob"] == pytest.approx(response.logprob, abs=1e-4)


def test_masked_lm_cannot_run_generation(cli, tmp_path, tiny_masked_lm):
    write_lm_task(tmp_path, kind="generation", fields=("source",))
    result = cli("run", "--model", str(tiny_masked_lm), "--tasks", "generation_mini", "--tasks-dir",
                 str(tmp_path / "tasks"), "--data-dir", str(tmp_path), "--output", str(tmp_path / "run"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "masked_lm checkpoint cannot run this generation task" in result.stderr
    assert "cannot answer 'generate' requests" in result.stderr


def test_model_kind_override_is_checked(tmp_path, tiny_masked_lm):
    """Even when the kind mismatch and the random QA head are let through, the forced kind must
    still answer the task (a masked LM forced to extractive_qa is refused without them)."""
    write_lm_task(tmp_path)
    config = RunConfig(model=str(tiny_masked_lm), tasks=["language_modeling_mini"], tasks_dirs=[tmp_path / "tasks"],
                       data_dir=tmp_path, output=tmp_path / "run", model_kind="extractive_qa",
                       allow_kind_mismatch=True, allow_random_weights=True)
    with pytest.raises(UnsupportedTaskError, match="extractive_qa checkpoint cannot run this language_modeling task"):
        run_evaluation(config)
