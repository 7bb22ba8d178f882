"""Shared fixtures: offline mode, the shared data folder, and tiny checkpoints built once per
test session (random init from a config, tokenizer trained locally; nothing downloads)."""

from __future__ import annotations

import os

# Before anything imports huggingface_hub/datasets/transformers: never touch the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("EVALHARNESS_SHARED_DATA", REPO.parent / "shared" / "data"))

# Words the tiny tokenizer knows: enough English for SST-2-like sentences to tokenize into
# real word pieces, so tests exercise normal (not all-[UNK]) inputs.
CORPUS = [
    "it 's a charming and often affecting journey .",
    "unflinchingly bleak and desperate",
    "the movie was great but the plot was dull .",
    "this film is not good , and the acting is awful .",
    "a wonderful , moving and funny story about love and loss .",
    "what a boring , tedious and forgettable script .",
    "is the question answered by the sentence ? the answer is in the text .",
    "two sentences that mean the same thing are paraphrases of each other .",
] * 5


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real evaluation data in ../shared/data; tests using it skip when it is absent."""
    if not (SHARED_DATA / "MANIFEST.md").is_file():
        pytest.skip(f"shared evaluation data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from evalharness.testing.tiny import build_wordpiece_tokenizer

    return build_wordpiece_tokenizer(CORPUS, vocab_size=300)


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory, tiny_tokenizer) -> Path:
    """A random-init 2-label BERT classifier with id2label {0: negative, 1: positive}."""
    from evalharness.testing.tiny import build_classifier

    return build_classifier(tmp_path_factory.mktemp("classifier"), tiny_tokenizer, ["negative", "positive"], seed=0)


@pytest.fixture(scope="session")
def tiny_generic_classifier(tmp_path_factory, tiny_tokenizer) -> Path:
    """A classifier whose labels are transformers' defaults (LABEL_0, LABEL_1)."""
    from evalharness.testing.tiny import build_classifier

    return build_classifier(tmp_path_factory.mktemp("generic"), tiny_tokenizer, ["LABEL_0", "LABEL_1"], seed=1)


@pytest.fixture(scope="session")
def tiny_regressor(tmp_path_factory, tiny_tokenizer) -> Path:
    from evalharness.testing.tiny import build_classifier

    return build_classifier(tmp_path_factory.mktemp("regressor"), tiny_tokenizer, ["score"], seed=2)


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python -m evalharness`` in a subprocess, as a user would from a shell."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "evalharness", *args],
        cwd=cwd or REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def cli():
    return run_cli


# --- tiny causal LMs (byte-level BPE tokenizers trained on CORPUS) ----------------------


@pytest.fixture(scope="session")
def tiny_causal_lm(tmp_path_factory) -> Path:
    """GPT-2 style: '<|endoftext|>' is BOS and EOS, no pad token, no BOS added to inputs."""
    from evalharness.testing.tiny import build_byte_bpe_tokenizer, build_causal_lm

    tokenizer = build_byte_bpe_tokenizer(CORPUS)
    return build_causal_lm(tmp_path_factory.mktemp("causal_gpt2"), tokenizer, architecture="gpt2", seed=0)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """Llama style: the tokenizer prepends BOS '<s>' to every input; EOS '</s>'; no pad."""
    from evalharness.testing.tiny import build_byte_bpe_tokenizer, build_causal_lm

    tokenizer = build_byte_bpe_tokenizer(CORPUS, bos_token="<s>", eos_token="</s>", add_bos=True)
    return build_causal_lm(tmp_path_factory.mktemp("causal_llama"), tokenizer, architecture="llama", seed=3)


@pytest.fixture(scope="session")
def tiny_causal_lm_no_bos(tmp_path_factory) -> Path:
    """A tokenizer with an EOS token '</s>' and no BOS (nor pad) token."""
    from evalharness.testing.tiny import build_byte_bpe_tokenizer, build_causal_lm

    tokenizer = build_byte_bpe_tokenizer(CORPUS, bos_token=None, eos_token="</s>")
    return build_causal_lm(tmp_path_factory.mktemp("causal_nobos"), tokenizer, architecture="llama", seed=5)
# -- extractive QA heads, masked LMs and seq2seq models (tests/test_qa_head.py, ...) ----------

# Every letter, digit and common punctuation mark, so that real SQuAD paragraphs tokenize into
# word pieces rather than [UNK], plus some prose for whole-word entries.
QA_CORPUS = CORPUS + [
    " ".join("abcdefghijklmnopqrstuvwxyz0123456789") + " ( ) ' \" - , . ; : ? ! % $ & / [ ]",
    "the super bowl was played on february 7 , 2016 at levi 's stadium in santa clara , california .",
    "the normans were the people who in the 10th and 11th centuries gave their name to normandy .",
    "which nfl team represented the afc at super bowl 50 ? who won the game and in what year ?",
    "the denver broncos defeated the carolina panthers 24 - 10 to earn their third title .",
] * 3


@pytest.fixture(scope="session")
def tiny_qa_tokenizer():
    """Deterministic vocabulary: the QA and masked-LM tests compare behaviour across runs."""
    from evalharness.testing.tiny import build_frequency_wordpiece_tokenizer

    return build_frequency_wordpiece_tokenizer(QA_CORPUS, vocab_size=400)


@pytest.fixture(scope="session")
def tiny_qa_model(tmp_path_factory, tiny_qa_tokenizer) -> Path:
    """A random-init BERT QA head (128 positions, peaked span logits)."""
    from evalharness.testing.tiny import build_qa_model

    return build_qa_model(tmp_path_factory.mktemp("qa"), tiny_qa_tokenizer, seed=0)


@pytest.fixture(scope="session")
def tiny_masked_lm(tmp_path_factory, tiny_qa_tokenizer) -> Path:
    """A random-init BERT masked LM (the QA tokenizer: real sentences become word pieces)."""
    from evalharness.testing.tiny import build_masked_lm

    return build_masked_lm(tmp_path_factory.mktemp("mlm"), tiny_qa_tokenizer, seed=3)


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory) -> Path:
    """A random-init T5 (model_type t5) with a Unigram T5Tokenizer."""
    from evalharness.testing.tiny import build_t5, build_unigram_tokenizer

    return build_t5(tmp_path_factory.mktemp("t5"), build_unigram_tokenizer(CORPUS, vocab_size=200), seed=4)


@pytest.fixture(scope="session")
def tiny_bart(tmp_path_factory) -> Path:
    """A random-init BART (model_type bart) with a byte-level BPE tokenizer."""
    from evalharness.testing.tiny import build_bart, build_bpe_tokenizer

    return build_bart(tmp_path_factory.mktemp("bart"), build_bpe_tokenizer(CORPUS, vocab_size=300), seed=5)


@pytest.fixture(scope="session")
def tiny_marian(tmp_path_factory) -> Path:
    """A random-init Marian MT model with a SentencePiece MarianTokenizer (not a fast one)."""
    pytest.importorskip("sentencepiece")
    from evalharness.testing.tiny import build_marian

    return build_marian(tmp_path_factory.mktemp("marian"), CORPUS, seed=6, vocab_size=120)


SQUAD_DEV = {
    "v1": "squad/dev_reconstructed_from_explorer_html/dev-v1.1.from_explorer_html.json",
    "v2": "squad/dev_reconstructed_from_explorer_html/dev-v2.0.from_explorer_html.json",
}


def squad_examples(shared_data: Path, version: str, *, paragraphs: int, start: int = 0) -> list[dict]:
    """Flat SQuAD rows (id, title, question, context, answers) from the first article's
    paragraphs ``start .. start + paragraphs`` of the reconstructed dev set (read in place)."""
    import json

    document = json.loads((shared_data / SQUAD_DEV[version]).read_text(encoding="utf-8"))
    article = document["data"][0]
    return [
        {
            "id": qa["id"],
            "title": article["title"],
            "question": qa["question"],
            "context": paragraph["context"],
            "answers": [answer["text"] for answer in qa["answers"]],
        }
        for paragraph in article["paragraphs"][start : start + paragraphs]
        for qa in paragraph["qas"]
    ]
