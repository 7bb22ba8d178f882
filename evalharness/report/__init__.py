"""Self-contained HTML reports and the static leaderboard site.

A report is one HTML file per run (optionally against a baseline run): metadata, scores
with intervals, SVG charts, and a paginated per-example browser. It opens offline in any
browser: CSS, scripts, data and charts are inline and its Content-Security-Policy forbids
every network request. Reads run records only; never models.

    from evalharness.report import write_report
    write_report("runs/candidate", "report.html", baseline="runs/baseline")
"""

from __future__ import annotations

from pathlib import Path

from evalharness.leaderboard.output import write_public_text

__all__ = ["render_report", "write_report"]


def render_report(
    run_dir: str | Path,
    baseline: str | Path | None = None,
    *,
    back_href: str | None = None,
    back_label: str = "back",
) -> str:
    """The report of ``run_dir`` (against ``baseline`` when given) as an HTML string."""
    from evalharness.report.context import build_report, load_run_view
    from evalharness.report.render import render_page

    run = load_run_view(run_dir)
    base = load_run_view(baseline) if baseline is not None else None
    context, data = build_report(run, base)
    heading = f"Evaluation report: {run.record.model.name}"
    if base is not None:
        heading += f" vs {base.record.model.name}"
    return render_page(
        "report.html.j2",
        title=heading,
        heading=heading,
        scripts=["browser.js", "report.js"],
        data=data,
        back_href=back_href,
        back_label=back_label,
        **context,
    )


def write_report(run_dir: str | Path, output: str | Path, *, baseline: str | Path | None = None) -> Path:
    """Write the report of ``run_dir`` to ``output`` (one HTML file); returns its path."""
    output = Path(output)
    write_public_text(output, render_report(run_dir, baseline))
    return output
