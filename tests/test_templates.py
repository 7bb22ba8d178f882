"""Prompt rendering: sandboxed, strict about missing fields, reproducible few-shot."""

from __future__ import annotations

import textwrap

import pytest

from evalharness.errors import SpecError
from evalharness.prompting.templates import build_prompt, render, select_demonstrations
from evalharness.spec import load_task
from evalharness.types import Example

SPEC = """\
version: 1
kind: classification
data: {local: {files: [x.tsv], format: tsv}}
labels: [negative, positive]
prompt:
  template: "Review: {{ text }}\\nSentiment:"
  target: " {{ label }}"
  few_shot: {n: 2, seed: 7, separator: "\\n\\n"}
metrics: [accuracy]
"""


@pytest.fixture
def task(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(SPEC))
    return load_task(path, "t")


POOL = [Example(str(i), {"text": f"text {i}", "label": ["negative", "positive"][i % 2]}) for i in range(10)]


def test_render_and_missing_field(task):
    assert render("{{ text }}!", POOL[0], task) == "text 0!"
    with pytest.raises(SpecError, match=r"prompt\.template: cannot render for example 0: 'tex' is undefined"):
        render("{{ tex }}", POOL[0], task)


def test_sandbox_blocks_python_internals(task):
    with pytest.raises(SpecError, match="cannot render"):
        render("{{ text.__class__.__mro__[1].__subclasses__() }}", POOL[0], task)


def test_demonstrations_are_reproducible_and_exclude_the_example(task):
    first = [d.id for d in select_demonstrations(POOL, 3, seed=1, example=POOL[4])]
    assert first == [d.id for d in select_demonstrations(POOL, 3, seed=1, example=POOL[4])]
    assert "4" not in first and len(set(first)) == 3
    # Another seed or another example draws another set (checked over several to avoid a fluke).
    others = {tuple(d.id for d in select_demonstrations(POOL, 3, seed=s, example=POOL[4])) for s in range(2, 8)}
    assert len(others | {tuple(first)}) > 1
    per_example = {tuple(d.id for d in select_demonstrations(POOL, 3, seed=1, example=e)) for e in POOL[:6]}
    assert len(per_example) > 1


def test_build_prompt_joins_demonstrations(task):
    prompt = build_prompt(task, POOL[0], POOL[1:3])
    assert prompt == "Review: text 1\nSentiment: positive\n\nReview: text 2\nSentiment: negative\n\nReview: text 0\nSentiment:"
