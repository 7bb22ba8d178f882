"""Speed without new numbers (issue 18): every optimisation gives the scores of the
unoptimised path, to float tolerance, across batch sizes (not timed).

The optimised layouts (``models.packing``: several sequences per row, a multiple-choice
context computed once for all its options, only scored positions projected onto the
vocabulary) are compared with the reference layout (``batching_scope(packing=False)``: one
padded row per sequence) on tiny checkpoints, for every request kind they answer; the probe
that turns packing on is shown to keep the reference layout for a model it cannot trust;
the engine's planning keeps a question's options together, tokenizes a text once and
``--check-determinism`` reruns through the reference layout.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalharness.execution.engine import Engine, _token_chunks
from evalharness.models import load_model
from evalharness.models.batching import BatchStats, batching_scope, packing_enabled
from evalharness.models.encoders import EncoderBatches
from evalharness.models.packing import layout, pack, prefix_trees, sequence_tree
from evalharness.models.rows import RowScorer
from evalharness.types import (
    ClassifyRequest,
    GenerationOptions,
    LoglikelihoodRequest,
    RequestKind,
    RollingOptions,
)
from tests.conftest import CORPUS

TOLERANCE = 1e-4  # float32 forward passes: summed log-probabilities agree to ~1e-6
WORDS = " ".join(CORPUS[:8]).split()
LONG = " ".join(WORDS * 6)  # well over the tiny models' 128 positions
BATCH_SIZES = (1, 3, 64)


def _reference(call):
    with batching_scope(packing=False):
        return call()


def _choice_requests() -> list[LoglikelihoodRequest]:
    """Multi-token options sharing a context (and leading tokens), single-token options, an
    empty context, a duplicate, a context that must lose tokens on the left, whitespace."""
    requests = []
    for n, sentence in enumerate(CORPUS[:6]):
        context = f"{sentence}\nQuestion: is it good?\nAnswer:"
        requests += [LoglikelihoodRequest(context, option) for option in (" very good indeed", " very bad", " no", " yes")]
        requests.append(LoglikelihoodRequest(context + " ", "the plot was dull" if n % 2 else "a"))
    requests += [LoglikelihoodRequest("", CORPUS[1]), LoglikelihoodRequest("", CORPUS[2]), LoglikelihoodRequest(LONG, " the end"),
                 LoglikelihoodRequest(LONG, " the movie"), LoglikelihoodRequest(CORPUS[0], " a")]
    return requests + requests[:3]


@pytest.mark.parametrize("checkpoint", ["tiny_causal_lm", "tiny_llama", "tiny_causal_lm_no_bos"])
def test_packed_loglikelihoods_with_shared_contexts_equal_padded_rows_at_every_batch_size(checkpoint, request):
    adapter = load_model(str(request.getfixturevalue(checkpoint)))
    assert adapter.info.notes["layout"].startswith("packed rows")
    requests = _choice_requests()
    reference = _reference(lambda: adapter.loglikelihood(requests, batch_size=64))
    assert any(r.truncated for r in reference) and any(r.n_tokens > 1 for r in reference)
    for size in BATCH_SIZES:
        stats = BatchStats()
        with batching_scope(stats=stats):
            packed = adapter.loglikelihood(requests, batch_size=size)
        assert stats.shared > 0  # the packed layout answered
        for index, (got, want) in enumerate(zip(packed, reference)):
            assert got.logprob == pytest.approx(want.logprob, abs=TOLERANCE), (size, index, requests[index])
            assert (got.is_greedy, got.n_tokens, got.truncated) == (want.is_greedy, want.n_tokens, want.truncated), (size, index)


def test_a_context_shared_by_several_options_is_computed_once(tiny_causal_lm):
    adapter = load_model(str(tiny_causal_lm))
    requests = [LoglikelihoodRequest(f"{CORPUS[4]} Answer:", option) for option in (" very good indeed", " very bad", " awful")]
    packed_stats, padded_stats = BatchStats(), BatchStats()
    with batching_scope(stats=packed_stats):
        adapter.loglikelihood(requests, batch_size=8)
    with batching_scope(stats=padded_stats, packing=False):
        adapter.loglikelihood(requests, batch_size=8)
    context = len(adapter.tokenizer(f"{CORPUS[4]} Answer:")["input_ids"])
    assert packed_stats.shared >= 2 * (context - 1)  # the 2nd and 3rd option reuse the context
    assert packed_stats.real + packed_stats.shared == padded_stats.real
    assert packed_stats.efficiency == 1.0 and packed_stats.batches == 1


@pytest.mark.parametrize("options", [RollingOptions(), RollingOptions(window="sliding", max_length=32, stride=12), RollingOptions(append_eos=True)])
def test_rolling_windows_batched_across_documents_equal_padded_rows(tiny_causal_lm, options):
    adapter = load_model(str(tiny_causal_lm))
    texts = [LONG, "", CORPUS[0], " ".join(WORDS * 3), CORPUS[3], LONG[:200], *CORPUS[4:8]]
    reference = _reference(lambda: adapter.loglikelihood_rolling(texts, batch_size=64, options=options))
    for size in BATCH_SIZES:
        packed = adapter.loglikelihood_rolling(texts, batch_size=size, options=options)
        assert [r.n_tokens for r in packed] == [r.n_tokens for r in reference]
        for got, want in zip(packed, reference):
            assert got.logprob == pytest.approx(want.logprob, abs=TOLERANCE)


def test_packed_classifier_logits_equal_padded_rows_with_pairs_and_truncation(tiny_classifier):
    adapter = load_model(str(tiny_classifier))
    assert adapter.info.notes["layout"].startswith("packed rows")
    requests = [ClassifyRequest(text) for text in CORPUS[:8]] + [ClassifyRequest(a, b) for a, b in zip(CORPUS[:5], CORPUS[3:8])]
    requests += [ClassifyRequest(LONG), ClassifyRequest(CORPUS[0], LONG)]
    padded_stats = BatchStats()
    with batching_scope(stats=padded_stats, packing=False):
        reference = adapter.classify(requests, batch_size=64)
    assert reference[-1].truncated and reference[-2].truncated
    for size in BATCH_SIZES:
        stats = BatchStats()
        with batching_scope(stats=stats):
            packed = adapter.classify(requests, batch_size=size)
        if size > 1:  # the packed layout answered, with less padding
            assert stats.padded < padded_stats.padded and stats.efficiency > padded_stats.efficiency
        for got, want in zip(packed, reference):
            assert got.scores == pytest.approx(want.scores, abs=TOLERANCE) and got.truncated == want.truncated


def test_packed_qa_spans_and_masked_lm_scores_equal_padded_rows(tiny_qa_model, tiny_masked_lm):
    qa = load_model(str(tiny_qa_model))
    pairs = [("what was the movie ?", f"{CORPUS[2]} {CORPUS[4]}"), ("which film ?", CORPUS[3]), ("what ?", LONG)]
    reference = _reference(lambda: qa.answer(pairs, batch_size=64))
    for size in (1, 64):
        for got, want in zip(qa.answer(pairs, batch_size=size), reference):
            assert got.text == want.text and got.score == pytest.approx(want.score, abs=TOLERANCE)
    mlm = load_model(str(tiny_masked_lm))
    texts = CORPUS[:4]
    reference = _reference(lambda: mlm.pseudo_loglikelihood(texts, batch_size=64))
    for size in (1, 64):
        for got, want in zip(mlm.pseudo_loglikelihood(texts, batch_size=size), reference):
            assert got.logprob == pytest.approx(want.logprob, abs=TOLERANCE) and got.n_tokens == want.n_tokens


@pytest.mark.parametrize("checkpoint", ["tiny_causal_lm", "tiny_t5"])
def test_generated_text_is_identical_across_batch_sizes(checkpoint, request):
    adapter = load_model(str(request.getfixturevalue(checkpoint)))
    prompts = [CORPUS[i] for i in range(6)] + [LONG[:300]]
    options = GenerationOptions(max_new_tokens=6)
    reference = _reference(lambda: adapter.generate(prompts, batch_size=1, options=options))
    for size in (3, 64):
        assert adapter.generate(prompts, batch_size=size, options=options) == reference


# -- the probe: packing only where the model is shown to honour it ----------------------------------
def _probe_rows(adapter):
    return [(adapter.tokenizer(CORPUS[0])["input_ids"][:9], adapter.tokenizer(CORPUS[1])["input_ids"][:3])]


def test_a_model_that_ignores_position_ids_keeps_padded_rows(tiny_causal_lm):
    adapter = load_model(str(tiny_causal_lm))
    decoder = adapter.model.base_model
    original = decoder.forward
    decoder.forward = lambda *args, position_ids=None, **kwargs: original(*args, **kwargs)
    try:
        scorer = RowScorer(adapter.model, pad=adapter.tokenizer.pad_token_id, capacity=adapter.max_length, selected_logits=True)
    finally:
        del decoder.forward
    assert scorer.note.startswith("padded rows: packed rows did not reproduce") and not scorer.packs
    rows = _probe_rows(adapter)
    assert scorer.score(rows, 4) == adapter.rows.padded(rows, 4)


def test_an_attention_implementation_without_tree_masks_keeps_padded_rows(tiny_causal_lm, monkeypatch):
    adapter = load_model(str(tiny_causal_lm))
    monkeypatch.setattr(adapter.model.config, "_attn_implementation", "flash_attention_2", raising=False)
    scorer = RowScorer(adapter.model, pad=adapter.tokenizer.pad_token_id, capacity=adapter.max_length, selected_logits=True)
    assert "'flash_attention_2' attention implementation" in scorer.note and not scorer.packs


@pytest.mark.parametrize("field, value", [("sliding_window", 16), ("layer_types", ["sliding_attention", "full_attention"])])
def test_a_model_with_its_own_attention_window_keeps_padded_rows(tiny_llama, tiny_classifier, monkeypatch, field, value):
    """A probe of 24 tokens cannot see a 16-token window being ignored: such models never pack."""
    for checkpoint in (tiny_llama, tiny_classifier):
        adapter = load_model(str(checkpoint))
        monkeypatch.setattr(adapter.model.config, field, value, raising=False)
        note = RowScorer(adapter.model, pad=0, capacity=128, selected_logits=True).note if adapter.kind == "causal_lm" else \
            EncoderBatches(adapter.model, adapter.tokenizer, capacity=128).note
        assert note.startswith("padded rows: the model restricts attention itself") and field in note


# -- the layouts themselves ---------------------------------------------------------------------------
def test_packed_sequences_never_see_each_other_or_the_other_options():
    rows = [([1, 2, 3, 4], [4, 5]), ([1, 2, 3, 6, 7], [6, 7, 8]), ([9, 9], [9])]  # two options of [1, 2], one alone
    trees, placed = prefix_trees(rows, capacity=16)
    assert [tree.tokens for tree in trees] == [[1, 2, 3, 4, 6, 7], [9, 9]]  # [1, 2, 3] once: 3 is both options' first input
    assert placed[0] == (0, [2, 3]) and placed[1] == (0, [2, 4, 5]) and placed[2] == (1, [1])
    packed = layout(trees, [[0, 1]], causal=True, pad=0)
    mask = packed.mask[0, 0]
    assert packed.position_ids[0].tolist() == [0, 1, 2, 3, 3, 4, 0, 1]
    assert mask[4].tolist() == [True, True, True, False, True, False, False, False]  # option 2 sees the context, not option 1
    assert mask[7].tolist() == [False] * 6 + [True, True]  # the other tree sees only itself
    encoder = layout([sequence_tree([5, 6, 7]), sequence_tree([8])], [[0, 1]], causal=False, pad=0).mask[0, 0]
    assert encoder[0].tolist() == [True, True, True, False] and encoder[3].tolist() == [False, False, False, True]


def test_prefix_trees_never_exceed_the_model_length():
    rows = [([7] * 20 + [i, i + 1], [i, i + 1, i + 2]) for i in range(10)]
    trees, placed = prefix_trees(rows, capacity=30)
    assert len(trees) > 1 and all(len(tree) <= 30 for tree in trees)
    for (tokens, targets), (tree, path) in zip(rows, placed):
        assert [trees[tree].tokens[node] for node in path] == tokens[-len(targets):]
        assert [trees[tree].positions[node] for node in path] == list(range(len(tokens) - len(targets), len(tokens)))


def test_rows_stay_padded_where_packing_would_save_nothing(tiny_causal_lm, monkeypatch):
    adapter = load_model(str(tiny_causal_lm))
    packed: list[int] = []
    run_packed = adapter.rows._run_packed
    monkeypatch.setattr(adapter.rows, "_run_packed", lambda rows, *args: packed.append(len(rows)) or run_packed(rows, *args))
    full = [" ".join(WORDS * 2), " ".join(reversed(WORDS * 2))]  # every window fills its 40 positions
    adapter.loglikelihood_rolling(full, batch_size=8, options=RollingOptions(max_length=40))
    assert packed == []  # padded rows: a mask would only cost memory
    adapter.loglikelihood_rolling([*full, *CORPUS[:6]], batch_size=8, options=RollingOptions(max_length=40))
    assert len(packed) == 1  # short texts pack


def test_packing_is_deterministic_and_fills_rows_up_to_capacity():
    sizes = [9, 2, 7, 3, 5, 5, 1, 12]
    bins = pack(sizes, 10)
    assert bins == pack(sizes, 10) and sorted(i for b in bins for i in b) == list(range(8))
    assert all(sum(sizes[i] for i in b) <= 10 for b in bins if len(b) > 1) and [7] in bins  # too big: alone


# -- the engine ---------------------------------------------------------------------------------------
def test_the_options_of_a_question_are_never_split_across_chunks():
    requests = [LoglikelihoodRequest(f"context {n // 4}", f" option {n % 4}") for n in range(40)]
    chunks = _token_chunks(list(range(40)), requests, [10] * 40, rows=2, row_limit=None)
    assert len(chunks) > 1 and sorted(i for chunk in chunks for i in chunk) == list(range(40))
    assert all(len({requests[i].context for i in chunk}) * 4 == len(chunk) for chunk in chunks)


def test_long_documents_are_chunked_by_tokens_not_by_count():
    texts = ["a"] * 4 + ["b"] * 4
    lengths = [5000] * 4 + [50] * 4
    chunks = _token_chunks(list(range(8)), texts, lengths, rows=4, row_limit=128)
    assert chunks[0] == [0] and [4, 5, 6, 7] in chunks  # one article fills 4 rows of 128; paragraphs share a chunk


def test_the_engine_tokenizes_a_text_once(tiny_causal_lm, monkeypatch):
    adapter = load_model(str(tiny_causal_lm))
    seen: list[str] = []
    tokenize = adapter._tokenize
    monkeypatch.setattr(adapter, "_tokenize", lambda texts: seen.extend(texts) or tokenize(texts))
    texts = [LONG, CORPUS[0], CORPUS[1]]
    responses, _ = Engine(adapter, batch_size=2).run(RequestKind.LOGLIKELIHOOD_ROLLING, texts, RollingOptions())
    assert sorted(seen) == sorted(texts)  # planned and answered from one tokenization
    assert [r.logprob for r in responses] == pytest.approx([r.logprob for r in adapter.loglikelihood_rolling(texts)], abs=TOLERANCE)


def test_check_determinism_reruns_through_the_reference_layout(tiny_causal_lm, monkeypatch):
    adapter = load_model(str(tiny_causal_lm))
    layouts: list[bool] = []
    answer = adapter.loglikelihood
    monkeypatch.setattr(adapter, "loglikelihood", lambda requests, **kw: layouts.append(packing_enabled()) or answer(requests, **kw))
    requests = _choice_requests()
    engine = Engine(adapter, batch_size=8)
    responses, stats = engine.run(RequestKind.LOGLIKELIHOOD, requests, None)
    report = engine.check_determinism(RequestKind.LOGLIKELIHOOD, requests, responses, None, stats)
    assert set(layouts[:-1]) == {True} and layouts[-1] is False
    assert report["layout"].startswith("reference") and report["max_abs_diff"] < TOLERANCE
    assert report["non_numeric_mismatches"] == 0 and stats.to_record()["shared_prefix_tokens"] > 0


def test_an_enclosing_reference_scope_reaches_the_adapter_through_the_engine(tiny_causal_lm, monkeypatch):
    adapter = load_model(str(tiny_causal_lm))
    layouts: list[bool] = []
    answer = adapter.loglikelihood
    monkeypatch.setattr(adapter, "loglikelihood", lambda requests, **kw: layouts.append(packing_enabled()) or answer(requests, **kw))
    with batching_scope(packing=False):
        _, stats = Engine(adapter, batch_size=4).run(RequestKind.LOGLIKELIHOOD, _choice_requests(), None)
    assert layouts and not any(layouts) and stats.tokens.shared == 0


CHOICE_TASK = """\
version: 1
kind: classification
data:
  local:
    files: [d.tsv]
    format: tsv
    columns: {text: sentence, label: label}
labels: [negative, positive]
prompt:
  template: "Review: {{ text }}\\nSentiment:"
  choices: [" quite negative overall", " very positive"]
  target: " {{ label }}"
metrics: [accuracy]
"""


def _choice_task(tmp_path: Path) -> tuple[Path, Path]:
    """The multiple-choice task (a context shared by its options) and 8 examples: (tasks, data)."""
    tasks, data = tmp_path / "tasks", tmp_path / "data"
    tasks.mkdir()
    data.mkdir()
    (tasks / "choice.yaml").write_text(CHOICE_TASK, encoding="utf-8")
    (data / "d.tsv").write_text("sentence\tlabel\n" + "".join(f"{s}\t{'positive' if i % 2 else 'negative'}\n" for i, s in enumerate(CORPUS[:8])),
                                encoding="utf-8")
    return tasks, data


def test_check_determinism_covers_the_packed_layout_end_to_end(cli, tiny_causal_lm, tmp_path: Path):
    tasks, data = _choice_task(tmp_path)
    out = tmp_path / "run"
    result = cli("run", "--model", str(tiny_causal_lm), "--tasks", "choice", "--tasks-dir", str(tasks), "--data-dir", str(data),
                 "--output", str(out), "--batch-size", "4", "--check-determinism")
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "results.json").read_text(encoding="utf-8"))
    execution = record["tasks"]["choice"]["execution"]
    assert execution["shared_prefix_tokens"] > 0 and execution["padding_efficiency"] >= 0.9
    assert execution["determinism"]["layout"].startswith("reference")
    assert execution["determinism"]["max_abs_diff"] < TOLERANCE and execution["determinism"]["non_numeric_mismatches"] == 0
    assert record["model"]["notes"]["layout"].startswith("packed rows")


def test_no_packing_runs_the_reference_layout_with_the_same_scores(cli, tiny_causal_lm, tmp_path: Path):
    tasks, data = _choice_task(tmp_path)
    records = {}
    for name, extra in (("packed", []), ("reference", ["--no-packing"])):
        out = tmp_path / name
        result = cli("run", "--model", str(tiny_causal_lm), "--tasks", "choice", "--tasks-dir", str(tasks), "--data-dir", str(data),
                     "--output", str(out), "--batch-size", "3", *extra)
        assert result.returncode == 0, result.stderr
        records[name] = json.loads((out / "results.json").read_text(encoding="utf-8"))
    packed, reference = (records[name]["tasks"]["choice"] for name in ("packed", "reference"))
    assert packed["execution"]["shared_prefix_tokens"] > 0 and reference["execution"]["shared_prefix_tokens"] == 0
    assert records["reference"]["settings"]["packing"] is False and "packing" not in records["packed"]["settings"]
    assert reference["metrics"]["accuracy"]["value"] == packed["metrics"]["accuracy"]["value"]
