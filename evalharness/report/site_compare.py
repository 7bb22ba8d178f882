"""The site's model-vs-model page: pick any two rows (the choice is kept in the URL), see
every metric they share with its paired test, and browse the examples whose outcome changed.

The tests are the board's pairwise tests (``leaderboard.paired``: ``evalharness compare``'s
tests on the same examples), with p-values adjusted across the pair's metrics as
``evalharness compare A B`` adjusts them. All pairs are computed when the site is built and
embedded with the examples (inputs and references once per task, each model's outputs once),
so the page needs no server. What an "outcome change" is depends on the task's metric (see
``report.outcomes``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import numpy as np

from evalharness.errors import RecordError
from evalharness.jsonvalues import JSONArray, JSONObject, finite_float_of
from evalharness.leaderboard.paired import PairedTests, verdict_of
from evalharness.report.outcomes import example_outcomes, text_of
from evalharness.report.render import render_page
from evalharness.report.site_model import Site
from evalharness.stats import adjust_pvalues

if TYPE_CHECKING:
    from evalharness.comparison.compare import MetricComparison

__all__ = ["compare_page"]

# Above this many characters of example text a task's examples are not embedded (the page
# says so and points to the per-run reports) rather than making a page no browser can open.
EXAMPLE_BUDGET = 30_000_000


class _PairTests(TypedDict):
    tests: dict[str, JSONArray]
    untested: dict[str, JSONArray]
    correction: str
    alpha: float | None


# One model's outputs, per example id: prediction, score, error (1, 0 or None).
_Output = tuple[str | None, float | None, int | None]


def _flipped(test: MetricComparison) -> MetricComparison:
    """The same test read the other way round (B against A instead of A against B)."""
    low, high = test.ci
    details = dict(test.details)
    if "only_a_correct" in details:
        details["only_a_correct"], details["only_b_correct"] = details["only_b_correct"], details["only_a_correct"]
    return replace(
        test, value_a=test.value_b, value_b=test.value_a,
        difference=None if test.difference is None else -test.difference,
        change=None if test.change is None else -test.change,
        ci=(None if high is None else -high, None if low is None else -low), details=details,
    )


def _pair_tests(site: Site, paired: PairedTests | None) -> _PairTests:
    """``"i|j"`` (board positions, i < j) -> rows of tests of B = j against A = i, or the
    reasons the pair was not tested."""
    board = site.board
    position = {model: index for index, model in enumerate(board.model_ids)}
    found: dict[str, list[tuple[int, MetricComparison]]] = {}
    untested: dict[str, JSONArray] = {}
    if paired is None:
        return {"tests": {}, "untested": {}, "correction": "", "alpha": None}
    for column_index, column in enumerate(board.columns):
        ranked, _ = site.ranking(column.key)
        order = [m for m in ranked.sort_values("order").index if finite_float_of(board.values.at[m, column.key]) is not None]
        tests = paired.column(column.key, order)
        for (a, b), test in tests.tests.items():
            i, j = sorted((position[a], position[b]))
            found.setdefault(f"{i}|{j}", []).append((column_index, test if position[a] == i else _flipped(test)))
        for (a, b), reason in tests.untested.items():
            i, j = sorted((position[a], position[b]))
            untested.setdefault(f"{i}|{j}", []).append(f"{column.task} {column.metric}: {reason}")
    settings = paired.settings
    rows: dict[str, JSONArray] = {}
    for pair, pair_tests in found.items():
        raw = np.array([np.nan if t.p_value is None else t.p_value for _, t in pair_tests])
        adjusted = adjust_pvalues(raw, settings.correction)
        rows[pair] = []
        for (column_index, test), p_adj in zip(pair_tests, adjusted, strict=True):
            p_adj = float(p_adj) if math.isfinite(p_adj) else None
            verdict = verdict_of(test.change, p_adj, settings.alpha, test.direction.lower_change_is_better)
            rows[pair].append([column_index, test.value_a, test.value_b, test.difference, test.change, test.ci[0], test.ci[1],
                               test.p_value, p_adj, test.method or test.test, verdict, test.n, test.compared_on])
    return {"tests": rows, "untested": untested, "correction": settings.correction, "alpha": settings.alpha}


def _task_examples(site: Site, task: str, key: str, paired: PairedTests) -> JSONObject:
    """One task's examples: ids, inputs and references once; each model's outputs."""
    board = site.board
    data = board.data[board.data["task"] == task].drop_duplicates("model_id")
    run_of = {str(model): Path(str(run_dir)) for model, run_dir in zip(data["model_id"], data["run_dir"])}
    problems: JSONArray = []
    outputs: dict[str, dict[str, _Output]] = {}  # board position -> its outputs
    described: JSONObject = {}  # what an error is, from the first model with outcomes
    ids: list[str] = []
    inputs: dict[str, str] = {}
    golds: dict[str, str] = {}
    size = 0
    for index, model in enumerate(board.model_ids):
        if model not in run_of:
            continue
        rows = paired.loader.rows(run_of[model], task)
        if isinstance(rows, str):
            problems.append(f"{board.display(model)}: examples unavailable ({rows})")
            continue
        record = paired.loader.record(run_of[model])
        try:
            outcomes = example_outcomes(record.tasks[task], rows, key)
        except RecordError as exc:  # a row's scores are not an object
            problems.append(f"{board.display(model)}: examples unavailable ({task} in {run_of[model]}: {exc})")
            continue
        if outcomes is None:
            continue
        described = described or {"kind": outcomes.kind, "rule": outcomes.rule, "higher_is_better": outcomes.higher_is_better,
                                  "ideal": outcomes.ideal}
        by_id: dict[str, _Output] = {}
        for row, score, error in zip(rows, outcomes.scores, outcomes.errors, strict=True):
            example = text_of(row.get("id"))
            if example not in inputs:
                ids.append(example)
                inputs[example], golds[example] = text_of(row.get("input")), text_of(row.get("gold"))
                size += len(inputs[example]) + len(golds[example])
            prediction = text_of(row.get("prediction"))
            size += len(prediction)
            by_id[example] = (prediction, score, None if error is None else int(error))
        outputs[str(index)] = by_id
    if size > EXAMPLE_BUDGET:
        return {"name": task, "metric": key, "problems": [*problems,
            f"the examples of {task} ({size:,} characters) are too large to embed here; see each run's report"], "models": {}, "ids": []}
    empty: _Output = (None, None, None)
    models: JSONObject = {
        model: [[*column] for column in zip(*(by_id.get(i, empty) for i in ids), strict=True)] if ids else [[], [], []]
        for model, by_id in outputs.items()
    }
    return {"name": task, "metric": key, "problems": problems, "models": models, **described,
            "ids": [*ids], "inputs": [inputs[i] for i in ids], "golds": [golds[i] for i in ids]}


def compare_page(site: Site) -> None:
    board = site.board
    paired = board.paired or PairedTests(board.data)
    tests = _pair_tests(site, board.paired)
    data: JSONObject = {
        "models": [{"id": m, "name": board.display(m), "href": site.model_pages[m]} for m in board.model_ids],
        "columns": [{"task": c.task, "metric": c.metric, "better": c.direction_label} for c in board.columns],
        "tests": {**tests["tests"]},
        "untested": {**tests["untested"]},
        "tasks": [_task_examples(site, task, column.metric_key, paired) for task, column in site.primary_columns().items()],
    }
    note = (
        f"Paired tests on the same examples, as <code>evalharness compare A B</code>: {tests['correction']}-adjusted across "
        f"the pair's metrics, α = {tests['alpha']:g}. The bootstrap runs with the resamples the board's ranks needed (in the "
        "test column; <code>--n-resamples</code> of <code>compare</code> reproduces it)."
        if board.paired is not None
        else "This board ranks with the marginal-interval rule (<code>--ranks marginal</code>); rebuild it with the default "
        "<code>--ranks paired</code> to see paired tests here."
    )
    from markupsafe import Markup

    html = render_page("site_compare.html.j2", title=f"Compare — {board.title}", scripts=["browser.js", "compare.js"],
                       data=data, board_title=board.title, note=Markup(note))
    site.write("compare.html", html)
