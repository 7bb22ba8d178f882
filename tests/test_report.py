"""HTML reports without a browser: self-contained output, escaping, contents, baselines.
(``test_browser.py`` opens the same pages in Chromium.)"""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest

from evalharness.records.record import load_record, read_samples
from evalharness.report import render_report, write_report
from evalharness.report.charts import Bar, BarGroup, bar_chart, nice_ticks
from evalharness.report.context import build_report, load_run_view
from evalharness.report.render import embed_json, slugify
from tests.publish_fixtures import HOSTILE_MODEL, HOSTILE_PREDICTION, HOSTILE_TASK, tiny_runs, write_hostile_run  # noqa: F401
from tests.record_factory import metric, task, write_run


def _scripts(html: str) -> list[str]:
    return re.findall(r"<script>(.*?)</script>", html, flags=re.S)


def test_embedded_json_cannot_close_its_script_element():
    payload = {"text": "</script><script>alert(1)</script><!-- \u2028 & done"}
    embedded = str(embed_json(payload))
    assert "<" not in embedded and ">" not in embedded and "&" not in embedded and "\u2028" not in embedded
    assert json.loads(embedded) == payload


def test_slugs_are_safe_file_names():
    for name in ["../../etc/passwd", "/abs/path", "..", "", "a/b", "a-b", "<script>", "C:\\x"]:
        slug = slugify(name)
        assert re.fullmatch(r"[a-z0-9-]+", slug), slug
    assert slugify("a/b") != slugify("a-b")


def test_report_is_one_self_contained_file(tmp_path, tiny_runs):
    output = write_report(tiny_runs["candidate"], tmp_path / "report.html", baseline=tiny_runs["baseline"])
    html = output.read_text()
    # No external resource of any kind: only the SVG namespace names a URL.
    assert re.findall(r"https?://[^\s\"'<>]+", html) == ["http://www.w3.org/2000/svg"] * html.count("<svg")
    assert not re.search(r"<(script|img|link|iframe)[^>]*\s(src|href)=\"(?!data:)", html)
    # The policy lets exactly the page's own scripts run (by hash) and nothing be fetched.
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1).replace("&#39;", "'")
    assert "default-src 'none'" in policy
    for script in _scripts(html):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy


def test_report_shows_metadata_scores_and_every_example(tmp_path, tiny_runs):
    record = load_record(tiny_runs["candidate"])
    baseline = load_record(tiny_runs["baseline"])
    html = render_report(tiny_runs["candidate"], tiny_runs["baseline"])
    accuracy = record.tasks["demo/sentiment"].metrics["accuracy"]
    for text in (record.model.fingerprint, record.run_id, accuracy.signature.format(), record.tasks["demo/sentiment"].data.fingerprint,
                 f"{accuracy.value:.2f}", f"{baseline.tasks['demo/sentiment'].metrics['accuracy'].value:.2f}",
                 record.environment["packages"]["torch"]):
        assert text in html
    data = json.loads(re.search(r'<script type="application/json" id="page-data">(.*?)</script>', html, re.S).group(1))
    (entry,) = data["tasks"]
    samples = read_samples(tiny_runs["candidate"], "demo/sentiment")
    assert len(entry["rows"]) == len(samples) == 120
    assert [row[0] for row in entry["rows"]] == [s["id"] for s in samples]
    # Errors are the wrong answers; changed examples are those whose correctness flipped.
    assert [bool(row[5]) for row in entry["rows"]] == [s["prediction"] != s["gold"] for s in samples]
    base = {s["id"]: s for s in read_samples(tiny_runs["baseline"], "demo/sentiment")}
    flipped = [s["id"] for s in samples if (s["prediction"] == s["gold"]) != (base[s["id"]]["prediction"] == s["gold"])]
    assert [row[0] for row in entry["changed"]] == flipped
    for row in entry["changed"]:
        assert row[7] == ("improved" if row[6] > row[5] else "regressed")


def test_report_escapes_names_and_predictions(tmp_path):
    run = write_hostile_run(tmp_path / "hostile")
    html = render_report(run)
    assert len(_scripts(html)) == 1  # only report.js; none from the data
    assert "<script>window.__pwned" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned = 1;" in html  # the model name, as text
    data = json.loads(re.search(r'id="page-data">(.*?)</script>', html, re.S).group(1))
    assert data["tasks"][0]["rows"][0][2] == HOSTILE_PREDICTION and data["tasks"][0]["name"] == HOSTILE_TASK
    assert f"Evaluation report: {HOSTILE_MODEL}".replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#39;") in html


def test_group_breakdowns_and_ideal_are_charted(tmp_path):
    groups = {"gender": (58.0, 52.0, 64.0, 262), "race-color": (61.0, 57.0, 65.0, 516)}
    run = write_run(tmp_path / "bias", model="lm", tasks={
        "bias/crows": task({"stereotype": metric(60.0, name="stereotype_score", ideal=50.0, higher=False, groups=groups)}, n=800)})
    html = render_report(run)
    assert "stereotype by group (2 groups)" in html
    assert "gender (n=262)" in html and "race-color (n=516)" in html and "ideal 50" in html
    assert "closest to 50" in html


def test_missing_samples_still_give_a_report(tmp_path):
    run = write_run(tmp_path / "r", model="m", tasks={"t": task({"accuracy": metric(80.0)})})
    (run / load_record(run).tasks["t"].samples).unlink()
    view = load_run_view(run)
    context, data = build_report(view)
    assert data["tasks"] == [] and "samples file missing" in context["tasks"][0]["problem"]
    assert "Examples unavailable" in render_report(run)


def test_a_samples_row_whose_scores_is_not_an_object_is_stated_as_the_tasks_problem(tmp_path):
    rows = [{"id": "0", "input": "x", "prediction": "a", "gold": "a", "scores": [100.0], "stats": {"accuracy": [1, 1]}}]
    run = write_run(tmp_path / "r", model="m", tasks={"t": task({"accuracy": metric(100.0, n=1)}, n=1)}, samples={"t": rows})
    context, data = build_report(load_run_view(run))
    assert data["tasks"] == [] and "t samples, row 0: scores: expected an object, got an array" in context["tasks"][0]["problem"]


def test_baseline_on_different_data_is_not_compared_example_by_example(tmp_path):
    a = write_run(tmp_path / "a", model="a", tasks={"t": task({"accuracy": metric(80.0)})})
    b = write_run(tmp_path / "b", model="b", tasks={"t": task({"accuracy": metric(70.0)}, data="sha256:other")})
    _, data = build_report(load_run_view(a), load_run_view(b))
    assert data["tasks"][0]["changed"] == [] and "different data" in data["tasks"][0]["changed_note"]


def test_bar_chart_escapes_labels_and_draws_intervals():
    svg = str(bar_chart([BarGroup("<b>x</b>", [Bar(50.0, 40.0, 60.0), Bar(None, series=1)])], series=["run", "<i>base</i>"]))
    assert "<b>" not in svg and "&lt;b&gt;x&lt;/b&gt;" in svg and "&lt;i&gt;base&lt;/i&gt;" in svg
    assert 'class="ci"' in svg and "50.00 [40.00, 60.00]" in svg and "n/a" in svg
    assert nice_ticks(0, 97) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(-0.3, 0.7) == [-0.4, -0.2, 0.0, 0.2, 0.4, 0.6, 0.8]


def test_report_command(cli, tmp_path, tiny_runs):
    output = tmp_path / "out" / "report.html"
    result = cli("report", str(tiny_runs["candidate"]), "--baseline", str(tiny_runs["baseline"]), "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert output.is_file() and str(output) in result.stdout
    missing = cli("report", str(tmp_path / "nope"), "--output", str(tmp_path / "x.html"))
    assert missing.returncode == 2 and "no run record here" in missing.stderr and "Traceback" not in missing.stderr
