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
    from evalharness.tiny import build_wordpiece_tokenizer

    return build_wordpiece_tokenizer(CORPUS, vocab_size=300)


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory, tiny_tokenizer) -> Path:
    """A random-init 2-label BERT classifier with id2label {0: negative, 1: positive}."""
    from evalharness.tiny import build_classifier

    return build_classifier(tmp_path_factory.mktemp("classifier"), tiny_tokenizer, ["negative", "positive"], seed=0)


@pytest.fixture(scope="session")
def tiny_generic_classifier(tmp_path_factory, tiny_tokenizer) -> Path:
    """A classifier whose labels are transformers' defaults (LABEL_0, LABEL_1)."""
    from evalharness.tiny import build_classifier

    return build_classifier(tmp_path_factory.mktemp("generic"), tiny_tokenizer, ["LABEL_0", "LABEL_1"], seed=1)


@pytest.fixture(scope="session")
def tiny_regressor(tmp_path_factory, tiny_tokenizer) -> Path:
    from evalharness.tiny import build_classifier

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
    from evalharness.tiny import build_byte_bpe_tokenizer, build_causal_lm

    tokenizer = build_byte_bpe_tokenizer(CORPUS)
    return build_causal_lm(tmp_path_factory.mktemp("causal_gpt2"), tokenizer, architecture="gpt2", seed=0)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """Llama style: the tokenizer prepends BOS '<s>' to every input; EOS '</s>'; no pad."""
    from evalharness.tiny import build_byte_bpe_tokenizer, build_causal_lm

    tokenizer = build_byte_bpe_tokenizer(CORPUS, bos_token="<s>", eos_token="</s>", add_bos=True)
    return build_causal_lm(tmp_path_factory.mktemp("causal_llama"), tokenizer, architecture="llama", seed=3)


@pytest.fixture(scope="session")
def tiny_causal_lm_no_bos(tmp_path_factory) -> Path:
    """A tokenizer with an EOS token '</s>' and no BOS (nor pad) token."""
    from evalharness.tiny import build_byte_bpe_tokenizer, build_causal_lm

    tokenizer = build_byte_bpe_tokenizer(CORPUS, bos_token=None, eos_token="</s>")
    return build_causal_lm(tmp_path_factory.mktemp("causal_nobos"), tokenizer, architecture="llama", seed=5)
