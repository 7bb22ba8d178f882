"""The site's task and model pages (see ``site``)."""

from __future__ import annotations

from evalharness.report.board_charts import WhiskerRow, whisker_chart
from evalharness.report.render import render_page
from evalharness.report.site import Site

__all__ = ["model_page", "task_page"]


def task_page(site: Site, task: str) -> None:
    """Each metric of ``task`` ranked on its own with the board's rule, charted."""
    board = site.board
    sections = []
    for column in [c for c in board.columns if c.task == task]:
        ranking = site.column_ranking(column.key)
        _, notes = site.ranking(column.key)
        rows = [WhiskerRow(r["display"], r["value"], r["low"], r["high"], r["cluster"], r["rank"]) for r in ranking]
        chart = whisker_chart(rows, title=f"{task} {column.metric}", reference=column.ideal if column.direction == "ideal" else None)
        sections.append({"column": column, "ranking": ranking, "chart": chart, "notes": notes})
    html = render_page("site_task.html.j2", title=f"{task} — {board.title}", board_title=board.title, task=task, sections=sections)
    site.write(site.task_pages[task], html)


def model_page(site: Site, model: str) -> None:
    """One row: its metadata and badges, the command that reproduces it, its scores."""
    board = site.board
    info = site.metadata[model]
    cells = []
    for column in board.columns:
        ranks = {row["model"]: row["rank"] for row in site.column_ranking(column.key)}
        cells.append({"column": column, "href": "../" + site.task_pages[column.task], "rank": ranks.get(model, "–"), **site.cell(model, column.key)})
    aggregates = [{"aggregate": a, **site.cell(model, a.key)} for a in board.aggregates]
    facts = [*info.facts, ("overall rank", f"{board.rank_label(model)} (by {board.label_of(board.rank_by)})")]
    others = [m for m in board.model_ids if m != model]
    html = render_page(
        "site_model.html.j2",
        title=f"{board.display(model)} — {board.title}",
        board_title=board.title,
        model=board.display(model),
        facts=facts,
        badges=info.badges,
        reproduce="\n".join(info.reproduce),
        aggregates=aggregates,
        cells=cells,
        compare=[(board.display(m), f"../compare.html#a={_fragment(model)}&b={_fragment(m)}") for m in others],
        reports=[("../" + href, label) for href, label in site.reports.get(model, [])],
    )
    site.write(site.model_pages[model], html)


def _fragment(model: str) -> str:
    from urllib.parse import quote

    return quote(model, safe="")
