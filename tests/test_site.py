"""The leaderboard command, definitions and the static site, on runs made by ``evalharness
run`` with tiny models and on hand-built records (hostile names included)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from evalharness.leaderboard import build_leaderboard, load_runs
from evalharness.records.record import load_record
from evalharness.report.site import write_site
from tests.conftest import REPO
from tests.publish_fixtures import HOSTILE_MODEL, HOSTILE_TASK, tiny_runs, write_hostile_run  # noqa: F401
from tests.record_factory import metric, task, write_run


def test_frame_and_board_from_tiny_model_runs(tiny_runs):
    frame = load_runs(list(tiny_runs.values()))
    assert len(frame) == 2 and set(frame["task"]) == {"demo/sentiment"}
    for name, run_dir in tiny_runs.items():
        record = load_record(run_dir)
        row = frame[frame["run_id"] == record.run_id].iloc[0]
        entry = record.tasks["demo/sentiment"].metrics["accuracy"]
        assert row["value"] == entry.value and (row["ci_low"], row["ci_high"]) == tuple(entry.ci)
        assert row["model_fingerprint"] == record.model.fingerprint and row["n"] == 120
        assert row["data_fingerprint"] == record.tasks["demo/sentiment"].data.fingerprint
        assert row["source"] == "checkpoint" and row["model"] == record.model.name == name
    board = build_leaderboard(frame)
    values = frame.set_index("model")["value"]
    assert board.model_ids == sorted(values.index, key=lambda m: -values[m])


def _hrefs(page: Path) -> list[str]:
    return re.findall(r'href="([^"#]+)"', page.read_text())


def test_site_pages_link_to_each_other_and_to_reports(tmp_path, tiny_runs):
    board = build_leaderboard(list(tiny_runs.values()), title="Tiny board")
    index = write_site(board, tmp_path / "site")
    site = tmp_path / "site"
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    assert "index.html" in pages and len([p for p in pages if p.startswith("reports/")]) == 2
    assert len([p for p in pages if p.startswith("models/")]) == 2 and len([p for p in pages if p.startswith("tasks/")]) == 1
    for page in site.rglob("*.html"):
        for href in _hrefs(page):
            if href.startswith("data:"):
                continue
            assert not href.startswith(("http:", "https:", "/")), href
            assert (page.parent / href).resolve().is_file(), f"{page}: broken link {href}"
    model_page = next(site.glob("models/candidate-*.html"))
    assert any(href.startswith("../reports/") for href in _hrefs(model_page))
    downloads = json.loads((site / "data" / "leaderboard.json").read_text())
    assert downloads["title"] == "Tiny board" and len(downloads["rows"]) == 2
    assert pd.read_csv(site / "data" / "leaderboard.csv")["model_id"].tolist() == board.model_ids
    assert "Tiny board" in index.read_text()


def test_names_cannot_escape_the_output_directories(tmp_path):
    runs = tmp_path / "runs"
    names = ["../../escaped-model", "/etc/evil", "..", "ok"]
    for index, name in enumerate(names):
        write_run(runs / f"r{index}", model=name, tasks={"../../../escaped-task": task({"accuracy": metric(50.0 + index)}),
                                                         "..": task({"accuracy": metric(40.0)})})
    write_hostile_run(runs / "hostile")
    board = build_leaderboard([runs], allow_incomparable=True)
    out = tmp_path / "out"
    site = out / "site"
    write_site(board, site)
    from evalharness.leaderboard import write_leaderboard

    write_leaderboard(board, out / "files")
    written = sorted(p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(runs))
    assert written and all(p.is_relative_to(out) for p in written)
    assert all(re.fullmatch(r"[a-z0-9-]+\.html", p.name) for p in site.rglob("*.html") if p.name != "index.html")
    assert not list(tmp_path.parent.glob("escaped-*")) and not Path("/etc/evil").exists()
    index = (site / "index.html").read_text()
    assert "&lt;script&gt;window.__pwned" in index and "<script>window.__pwned" not in index
    assert HOSTILE_MODEL not in index and HOSTILE_TASK not in index


def test_a_samples_row_whose_scores_is_not_an_object_leaves_its_examples_out_saying_why(tmp_path):
    rows = [{"id": str(i), "input": "x", "prediction": "a", "gold": "a", "scores": [100.0], "stats": {"accuracy": [1, 1]}}
            for i in range(2)]
    write_run(tmp_path / "runs" / "a", model="a", tasks={"t": task({"accuracy": metric(100.0, n=2)}, n=2)}, samples={"t": rows})
    write_run(tmp_path / "runs" / "b", model="b", tasks={"t": task({"accuracy": metric(50.0, n=2)}, n=2)})
    site = tmp_path / "site"
    write_site(build_leaderboard([tmp_path / "runs"], ranks="marginal"), site)
    compare = (site / "compare.html").read_text()
    assert "a: examples unavailable (t in " in compare and "samples row 0: scores: expected an object, got an array" in compare
    [report] = [p for p in (site / "reports").glob("a-*.html")]
    assert "t samples, row 0: scores: expected an object, got an array" in report.read_text()


def test_leaderboard_command_writes_every_format_and_prints(cli, tmp_path, tiny_runs):
    out = tmp_path / "out"
    result = cli("leaderboard", *map(str, tiny_runs.values()), "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "demo/sentiment accuracy" in result.stdout and "candidate" in result.stdout and "baseline" in result.stdout
    for name in ("leaderboard.csv", "leaderboard.md", "leaderboard.parquet", "leaderboard.json"):
        assert (out / name).is_file() and f"wrote {out / name}" in result.stdout
    parquet, csv = pd.read_parquet(out / "leaderboard.parquet"), pd.read_csv(out / "leaderboard.csv")
    assert list(parquet["model_id"]) == list(csv["model_id"]) and list(parquet["rank"]) in ([1, 2], [1, 1])
    assert parquet["demo/sentiment:accuracy"].tolist() == pytest.approx(csv["demo/sentiment:accuracy"].tolist())
    markdown = cli("leaderboard", str(tiny_runs["candidate"]), "--format", "markdown")
    assert markdown.returncode == 0 and markdown.stdout.startswith("## Leaderboard") and "| 1 | candidate |" in markdown.stdout


def test_leaderboard_command_refuses_incomparable_runs_unless_allowed(cli, tmp_path):
    write_run(tmp_path / "a", model="alpha", tasks={"t": task({"accuracy": metric(80.0)})}, run_id="run-a")
    write_run(tmp_path / "b", model="beta", tasks={"t": task({"accuracy": metric(70.0, n=60)}, n=60)}, run_id="run-b")
    refused = cli("leaderboard", str(tmp_path / "a"), str(tmp_path / "b"))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "example count differs" in refused.stderr and "run-a" in refused.stderr and "run-b" in refused.stderr
    allowed = cli("leaderboard", str(tmp_path / "a"), str(tmp_path / "b"), "--allow-incomparable", "--format", "markdown")
    assert allowed.returncode == 0, allowed.stderr
    assert "t accuracy†1" in allowed.stdout and "not comparable" in allowed.stdout


def test_shipped_demo_definition_builds_the_site(cli, tmp_path, tiny_runs):
    """``leaderboards/demo.yaml`` next to a ``demo-output/runs`` folder, as in a checkout."""
    shutil.copytree(REPO / "leaderboards", tmp_path / "leaderboards")
    for name, run_dir in tiny_runs.items():
        shutil.copytree(run_dir, tmp_path / "demo-output" / "runs" / name)
    site = tmp_path / "site"
    result = cli("leaderboard", "--definition", str(tmp_path / "leaderboards" / "demo.yaml"), "--site", str(site))
    assert result.returncode == 0, result.stderr
    assert "evalharness demo" in result.stdout and (site / "index.html").is_file()
    assert len(list((site / "reports").glob("*.html"))) == 2


def test_definition_errors_exit_2(cli, tmp_path):
    bad = tmp_path / "board.yaml"
    bad.write_text("title: x\nruns: []\nsort: mean\n")
    result = cli("leaderboard", "--definition", str(bad))
    assert result.returncode == 2 and f"{bad}:2: runs:" in result.stderr and f"{bad}:3: sort: unknown key" in result.stderr
    none = cli("leaderboard")
    assert none.returncode == 2 and "give run directories" in none.stderr


@pytest.mark.parametrize("command", [["leaderboard", "--help"], ["report", "--help"]])
def test_commands_have_help(cli, command):
    result = cli(*command)
    assert result.returncode == 0 and "usage: evalharness" in result.stdout


def test_leaderboard_report_and_site_never_import_models(tmp_path):
    """They read records only: building all three loads neither torch nor transformers."""
    import subprocess
    import sys

    write_run(tmp_path / "runs" / "a", model="alpha", tasks={"t": task({"accuracy": metric(80.0)})})
    write_run(tmp_path / "runs" / "b", model="beta", tasks={"t": task({"accuracy": metric(60.0)})})
    code = (
        "import sys\n"
        "from evalharness.leaderboard import build_leaderboard, write_leaderboard\n"
        "from evalharness.report import write_report\n"
        "from evalharness.report.site import write_site\n"
        f"board = build_leaderboard([{str(tmp_path / 'runs')!r}])\n"
        f"write_leaderboard(board, {str(tmp_path / 'out')!r})\n"
        f"write_report({str(tmp_path / 'runs' / 'a')!r}, {str(tmp_path / 'r.html')!r}, baseline={str(tmp_path / 'runs' / 'b')!r})\n"
        f"write_site(board, {str(tmp_path / 'site')!r})\n"
        "print('HEAVY', [m for m in ('torch', 'transformers', 'datasets') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").is_file() and (tmp_path / "r.html").is_file()
