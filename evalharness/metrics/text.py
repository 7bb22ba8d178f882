"""Input checks shared by the text-generation metrics (translation and summarization).

Generation examples carry a *list* of references each (``spec.kinds``: ``references`` is
``text_list``). Metrics select which references to use by index (``references: [0]`` for a
single-reference variant such as WMT's "refA"); ``None`` means all of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, NonNegativeInt

from evalharness.config import StrictModel
from evalharness.errors import MetricInputError

__all__ = ["ReferenceSelection", "check_texts", "select_references"]


class ReferenceSelection(StrictModel):
    """Settings mix-in: which of each example's references to score against."""

    references: list[NonNegativeInt] | None = Field(
        default=None,
        min_length=1,
        description="0-based indices into each example's references (e.g. [0] = first only); null = all",
    )


def check_texts(name: str, predictions: Sequence[object]) -> list[str]:
    """Predictions must be strings: a missing generation is an error, never an empty string."""
    texts: list[str] = []
    for index, prediction in enumerate(predictions):
        if not isinstance(prediction, str):
            raise MetricInputError(
                f"{name}: prediction {index} should be the generated text (str), "
                f"got {type(prediction).__name__}"
            )
        texts.append(prediction)
    return texts


def select_references(
    name: str, references: Sequence[object], indices: Sequence[int] | None
) -> list[list[str]]:
    """Each example's references, restricted to ``indices``; checked to be non-empty text."""
    selected: list[list[str]] = []
    for index, refs in enumerate(references):
        if isinstance(refs, str) or not isinstance(refs, Sequence):
            raise MetricInputError(
                f"{name}: references of example {index} should be a list of strings, "
                f"got {type(refs).__name__}"
            )
        chosen: list[object]
        if indices is None:
            chosen = list(refs)
        else:
            missing = [i for i in indices if i >= len(refs)]
            if missing:
                raise MetricInputError(
                    f"{name}: example {index} has {len(refs)} reference(s); "
                    f"reference index {missing[0]} (setting 'references') does not exist"
                )
            chosen = [refs[i] for i in indices]
        if not chosen:
            raise MetricInputError(f"{name}: example {index} has no references")
        texts: list[str] = []
        for ref in chosen:
            if not isinstance(ref, str):
                raise MetricInputError(
                    f"{name}: a reference of example {index} is {type(ref).__name__}, not text"
                )
            texts.append(ref)
        selected.append(texts)
    return selected
