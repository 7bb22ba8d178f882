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
from typing import Any

import numpy as np

from evalharness.leaderboard.paired import PairedTests, verdict_of
from evalharness.report.outcomes import example_outcomes, text_of
from evalharness.report.render import render_page
from evalharness.report.site_model import Site, number
from evalharness.stats import adjust_pvalues

__all__ = ["compare_page"]

# Above this many characters of example text a task's examples are not embedded (the page
# says so and points to the per-run reports) rather than making a page no browser can open.
EXAMPLE_BUDGET = 30_000_000


def _flipped(test: Any) -> Any:
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


def _pair_tests(site: Site, paired: PairedTests | None) -> dict[str, Any]:
    """``"i|j"`` (board positions, i < j) -> rows of tests of B = j against A = i, or the
    reasons the pair was not tested."""
    board = site.board
    position = {model: index for index, model in enumerate(board.model_ids)}
    found: dict[str, list[Any]] = {}
    untested: dict[str, list[str]] = {}
    if paired is None:
        return {"tests": {}, "untested": {}, "correction": "", "alpha": None}
    for column_index, column in enumerate(board.columns):
        ranked, _ = site.ranking(column.key)
        order = [m for m in ranked.sort_values("order").index if number(board.values.at[m, column.key]) is not None]
        tests = paired.column(column.key, order)
        for (a, b), test in tests.tests.items():
            i, j = sorted((position[a], position[b]))
            found.setdefault(f"{i}|{j}", []).append((column_index, test if position[a] == i else _flipped(test)))
        for (a, b), reason in tests.untested.items():
            i, j = sorted((position[a], position[b]))
            untested.setdefault(f"{i}|{j}", []).append(f"{column.task} {column.metric}: {reason}")
    settings = paired.settings
    rows: dict[str, list[list[Any]]] = {}
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


def _task_examples(site: Site, task: str, key: str, paired: PairedTests) -> dict[str, Any]:
    """One task's examples: ids, inputs and references once; each model's outputs."""
    board = site.board
    data = board.data[board.data["task"] == task].drop_duplicates("model_id")
    run_of = {row.model_id: Path(str(row.run_dir)) for row in data.itertuples(index=False)}
    entry: dict[str, Any] = {"name": task, "metric": key, "problems": [], "models": {}}
    ids: list[str] = []
    inputs: dict[str, str] = {}
    golds: dict[str, str] = {}
    size = 0
    for index, model in enumerate(board.model_ids):
        if model not in run_of:
            continue
        rows = paired.loader.rows(run_of[model], task)
        if isinstance(rows, str):
            entry["problems"].append(f"{board.display(model)}: examples unavailable ({rows})")
            continue
        record = paired.loader.record(run_of[model])
        outcomes = example_outcomes(record.tasks[task], rows, key)
        if outcomes is None:
            continue
        entry.setdefault("kind", outcomes.kind)
        entry.setdefault("rule", outcomes.rule)
        entry.setdefault("higher_is_better", outcomes.higher_is_better)
        entry.setdefault("ideal", outcomes.ideal)
        by_id = {}
        for row, score, error in zip(rows, outcomes.scores, outcomes.errors, strict=True):
            example = text_of(row.get("id"))
            if example not in inputs:
                ids.append(example)
                inputs[example], golds[example] = text_of(row.get("input")), text_of(row.get("gold"))
                size += len(inputs[example]) + len(golds[example])
            prediction = text_of(row.get("prediction"))
            size += len(prediction)
            by_id[example] = (prediction, score, None if error is None else int(error))
        entry["models"][str(index)] = by_id
    if size > EXAMPLE_BUDGET:
        return {"name": task, "metric": key, "problems": entry["problems"] + [
            f"the examples of {task} ({size:,} characters) are too large to embed here; see each run's report"], "models": {}, "ids": []}
    entry["ids"], entry["inputs"], entry["golds"] = ids, [inputs[i] for i in ids], [golds[i] for i in ids]
    for model, by_id in entry["models"].items():
        empty = (None, None, None)
        entry["models"][model] = [list(column) for column in zip(*(by_id.get(i, empty) for i in ids), strict=True)] if ids else [[], [], []]
    return entry


def compare_page(site: Site) -> None:
    board = site.board
    paired = board.paired or PairedTests(board.data)
    tests = _pair_tests(site, board.paired)
    data = {
        "models": [{"id": m, "name": board.display(m), "href": site.model_pages[m]} for m in board.model_ids],
        "columns": [{"task": c.task, "metric": c.metric, "better": c.direction_label} for c in board.columns],
        "tests": tests["tests"],
        "untested": tests["untested"],
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
