"""Inputs for the invariance suite over every metric (collected from ``tests/metric_cases_*.py``).

Per metric: ``settings``, ``references`` (generation examples carry a list of references
each), ``perfect`` predictions (equal to the first reference: BLEU/chrF/ROUGE 100, TER 0)
and ``imperfect`` predictions (partly wrong, so strictly worse than perfect). Sentences are
long enough (>= 4 tokens) for BLEU's 4-grams to be defined.
"""

from __future__ import annotations

_REFERENCES = [
    ["The committee approved the new budget on Tuesday.", "On Tuesday the committee passed the new budget."],
    ["Heavy snow closed several roads in the north.", "Several northern roads were closed by heavy snow."],
    ["The museum will reopen to visitors next spring.", "Next spring the museum opens again to visitors."],
    ["Scientists found water ice near the lunar south pole.", "Water ice was found near the Moon's south pole."],
    ["The team won its third title in five years.", "It was the team's third title in five years."],
    ["Local farmers expect a smaller harvest this autumn.", "This autumn farmers expect to harvest less."],
]
_PERFECT = [refs[0] for refs in _REFERENCES]
_IMPERFECT = [
    "The committee rejected a budget on Monday.",
    "Snow closed some roads in the south.",
    "The museum will stay closed next spring.",
    "Scientists found rocks near the lunar north pole.",
    "The team lost its third final in five years.",
    "Farmers expect a larger harvest this autumn.",
]

# ROUGE-Lsum examples: multi-sentence summaries, sentences on separate lines.
_SUMMARY_REFERENCES = [[p + "\n" + refs[1]] for p, refs in zip(_PERFECT, _REFERENCES)]
_SUMMARY_PERFECT = [refs[0] for refs in _SUMMARY_REFERENCES]
_SUMMARY_IMPERFECT = [i + "\n" + "Officials gave no further details." for i in _IMPERFECT]


def _case(settings: dict, perfect: list[str] = _PERFECT, references: list[list[str]] = _REFERENCES, imperfect: list[str] = _IMPERFECT) -> dict:
    return {"settings": settings, "perfect": perfect, "references": references, "imperfect": imperfect}


CASES = {
    "bleu": _case({"trg_lang": "en"}),
    "chrf": _case({}),
    "chrf++": _case({"references": [0]}),
    "ter": _case({}),
    "rouge1": _case({"use_stemmer": True}),
    "rouge2": _case({"use_stemmer": True}),
    "rougeL": _case({"use_stemmer": True}),
    "rougeLsum": _case(
        {"use_stemmer": True, "sentence_split": "auto"}, _SUMMARY_PERFECT, _SUMMARY_REFERENCES, _SUMMARY_IMPERFECT
    ),
}
