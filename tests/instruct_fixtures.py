"""Shared fixtures and helpers of the instruct-model and adapter tests (issue 16): tiny chat
models of each template style, tiny LoRA adapters, and a small review task with its data.

Imported by ``tests/test_chat_format.py``, ``tests/test_peft_adapters.py`` and
``tests/test_model_args.py`` (fixtures are registered in each module that imports them).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import CORPUS
from tests.test_prompted_formulations import CLASSIFICATION, REVIEWS, write_reviews

__all__ = [
    "CHAT_CORPUS",
    "GENERATION",
    "LANGUAGE_MODELING",
    "chat_model",
    "review_task",
    "run_in_process",
]

# The chat markers' words, so that they tokenize into real pieces.
CHAT_CORPUS = CORPUS + ["user assistant system model review sentiment answer : negative positive be brief ."] * 3

GENERATION = """\
version: 1
kind: generation
data: {local: {files: [gen/data.jsonl], format: jsonl}}
prompt:
  template: "Review: {{ source }}\\nIn one word:"
  target: " {{ references[0] }}"
  stop: ["\\n"]
generation: {max_new_tokens: 6}
metrics: [bleu]
"""

# The reviews as running text (perplexity: no prompt, so raw whatever the model).
LANGUAGE_MODELING = """\
version: 1
kind: language_modeling
data: {local: {files: [reviews/test.tsv], format: tsv, columns: {text: sentence}}}
metrics: [word_perplexity]
"""

_BUILT: dict[tuple[str, bool, str], Path] = {}


@pytest.fixture(scope="session")
def chat_model(tmp_path_factory):
    """``chat_model(style, instruct=True, name=...)``: a tiny Llama with the chat template of
    ``style`` (``testing.instruct.CHAT_STYLES``), built once per session and name."""
    from evalharness.testing.instruct import build_chat_model, build_chat_tokenizer

    def build(style: str = "chatml", *, instruct: bool = True, name: str | None = None) -> Path:
        key = (style, instruct, name or "")
        if key not in _BUILT or not _BUILT[key].exists():
            folder = tmp_path_factory.mktemp("chat") / (name or f"tiny-{style}-{'instruct' if instruct else 'base'}")
            _BUILT[key] = build_chat_model(folder, build_chat_tokenizer(CHAT_CORPUS, style=style), instruct=instruct, seed=7)
        return _BUILT[key]

    return build


@pytest.fixture(scope="session")
def review_task(tmp_path_factory) -> tuple[Path, Path]:
    """``(tasks_dir, data_dir)`` with ``mine/reviews`` (classification by choices),
    ``mine/review_words`` (the same reviews, answered by generation) and ``mine/words`` (their
    text's perplexity)."""
    root = tmp_path_factory.mktemp("reviews")
    data_dir = write_reviews(root / "data")
    (data_dir / "gen").mkdir()
    rows = [{"id": str(i), "source": text, "references": [label]} for i, (text, label) in enumerate(REVIEWS)]
    (data_dir / "gen" / "data.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    tasks = root / "tasks" / "mine"
    tasks.mkdir(parents=True)
    (tasks / "reviews.yaml").write_text(CLASSIFICATION % {"extra": ""}, encoding="utf-8")
    (tasks / "review_words.yaml").write_text(GENERATION, encoding="utf-8")
    (tasks / "words.yaml").write_text(LANGUAGE_MODELING, encoding="utf-8")
    return root / "tasks", data_dir


def run_in_process(model: Path | str, tasks: list[str], review_task: tuple[Path, Path], output: Path, **settings):
    """``evalharness run`` in this process (the CLI path minus argument parsing)."""
    from evalharness.evaluation.runner import RunConfig, run_evaluation

    tasks_dir, data_dir = review_task
    config = RunConfig(model=str(model), tasks=tasks, tasks_dirs=[tasks_dir], data_dir=data_dir, output=output, **settings)
    return run_evaluation(config)
