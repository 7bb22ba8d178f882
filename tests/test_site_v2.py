"""Leaderboard site v2 in real Chromium at 1280×800, on a 20-system WMT21 board scored from
the official system outputs, and WMT21 de-en rank clusters next to the official ranking.

The WMT runs are scored once per session and shared with ``tests/test_wmt_golden.py``
(``tests/wmt_runs.py``), and skipped cleanly without the shared data; the browser tests skip when Chromium cannot start. Screenshots go to
``test-artifacts/``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from evalharness.leaderboard import build_leaderboard
from evalharness.leaderboard.ranking import rank_clusters
from evalharness.records.record import read_samples
from evalharness.report.site import write_site
from tests.conftest import run_cli
from tests.publish_fixtures import HOSTILE_MODEL, HOSTILE_PREDICTION, HOSTILE_TASK, SCRIPT, write_hostile_run
from tests.record_factory import metric, task, write_run
from tests.test_browser import ARGS, ARTIFACTS, CHROMIUM, browser, wait_until  # noqa: F401 - browser: a pytest fixture
from tests.wmt_runs import scored_runs

EN_DE, DE_EN = "translation/wmt21_en_de", "translation/wmt21_de_en"
PAIRS = {EN_DE: "en-de", DE_EN: "de-en"}
LONG_NAME = "Facebook-AI (WMT21 primary submission, big ensemble)"


# -- the WMT21 boards, scored once per session (tests/wmt_runs.py) ----------------------------------


@pytest.fixture(scope="session")
def wmt21_en_de_runs(shared_data, tmp_path_factory) -> Path:
    return scored_runs(shared_data, tmp_path_factory, EN_DE)


@pytest.fixture(scope="session")
def wmt21_de_en_runs(shared_data, tmp_path_factory) -> Path:
    return scored_runs(shared_data, tmp_path_factory, DE_EN)


@pytest.fixture(scope="module")
def wmt_site(wmt21_en_de_runs, tmp_path_factory) -> Path:
    """The 20-system en-de board's site, built by the command line as a user would."""
    site = tmp_path_factory.mktemp("wmt-site") / "site"
    result = run_cli("leaderboard", str(wmt21_en_de_runs), "--rank-by", f"{EN_DE}:bleu", "--title", "WMT21 English→German",
                     "--name", f"Facebook-AI={LONG_NAME}", "--site", str(site), "--no-reports")
    assert result.returncode == 0, result.stderr
    return site


# -- the browser -----------------------------------------------------------------------------


class Page:
    """A page at 1280×800 from a file URL, with every request and console problem recorded."""

    def __init__(self, browser, url: str, *, bypass_csp: bool = False):
        self.page = browser.new_page(viewport={"width": 1280, "height": 800}, bypass_csp=bypass_csp)
        self.requests: list[str] = []
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", lambda message: message.type in ("error", "warning") and self.problems.append(message.text))
        self.page.on("pageerror", lambda error: self.problems.append(str(error)))
        self.page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        self.page.goto(url)
        self.page.wait_for_load_state("load")

    def assert_offline_and_clean(self) -> None:
        assert all(url.startswith("file://") and "#" not in url.split("/")[-1].split("#")[0] for url in self.requests), self.requests
        assert len({url.split("#")[0] for url in self.requests}) == 1, self.requests
        assert self.problems == [] and self.dialogs == []

    def texts(self, selector: str) -> list[str]:
        return self.page.eval_on_selector_all(selector, "nodes => nodes.map(n => n.textContent)")

    def visible_models(self) -> list[str]:
        return self.page.eval_on_selector_all("#leaderboard tbody tr", "rows => rows.filter(r => !r.hidden).map(r => r.dataset.model)")

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / name))


def _url(path: Path, fragment: str = "") -> str:
    return path.resolve().as_uri() + (f"#{fragment}" if fragment else "")


@pytest.mark.browser
def test_wmt21_index_shows_the_chart_first_and_a_readable_model_column_at_1280x800(browser, wmt_site):
    visit = Page(browser, _url(wmt_site / "index.html"))
    page = visit.page
    chart = page.query_selector("svg.whiskers")
    box = chart.bounding_box()
    assert chart.is_visible() and box["y"] < 800 and box["width"] > 400  # the first thing on screen
    assert len(page.query_selector_all("svg.whiskers circle")) == 20 and page.query_selector("svg.heatmap").is_visible()
    page.query_selector("#leaderboard").scroll_into_view_if_needed()
    cells = page.query_selector_all("#leaderboard tbody td.model")
    assert len(cells) == 20
    for cell in cells:
        width, height, line, overflow = cell.evaluate(
            "c => [c.getBoundingClientRect().width, c.getBoundingClientRect().height, "
            "parseFloat(getComputedStyle(c).lineHeight) || 20, c.scrollWidth > c.clientWidth]"
        )
        assert width >= 150 and height < 2 * line + 10, (cell.text_content(), width, height)  # one line, wide enough
        assert not overflow or cell.get_attribute("title").startswith(cell.text_content())
    assert LONG_NAME in visit.texts("#leaderboard td.model")
    before = page.query_selector("#leaderboard tbody td.model").bounding_box()["x"]
    page.eval_on_selector(".table-wrap:has(#leaderboard)", "wrap => { wrap.scrollLeft = wrap.scrollWidth; }")
    assert page.query_selector("#leaderboard tbody td.model").bounding_box()["x"] == pytest.approx(before, abs=1)  # sticky
    visit.screenshot("site-v2-wmt21-index.png")
    visit.assert_offline_and_clean()


@pytest.mark.browser
def test_wmt21_filter_and_sort_state_round_trips_through_the_url(browser, wmt_site):
    visit = Page(browser, _url(wmt_site / "index.html"))
    page = visit.page
    page.fill("#model-filter", "online")
    page.select_option("#task-filter", EN_DE)
    page.uncheck("#show-meta")
    page.click(f"#leaderboard th[data-key='{EN_DE}:chrf']")
    page.click(f"#leaderboard th[data-key='{EN_DE}:chrf']")  # second click: worst first
    shown = visit.visible_models()
    assert shown and all(m.startswith("Online-") for m in shown) and page.text_content("#row-count") == f"{len(shown)} of 20 model(s)"
    url = page.url
    assert "#" in url and "q=online" in url and "sort=" in url and "dir=asc" in url
    again = Page(browser, url)
    assert again.page.input_value("#model-filter") == "online" and again.page.input_value("#task-filter") == EN_DE
    assert not again.page.is_checked("#show-meta") and again.visible_models() == shown
    assert again.page.get_attribute(f"#leaderboard th[data-key='{EN_DE}:chrf']", "aria-sort") == "ascending"
    assert again.page.text_content("#row-count") == f"{len(shown)} of 20 model(s)"
    assert again.page.is_hidden("#leaderboard th.meta") and again.page.is_visible("#leaderboard tbody tr:not([hidden]) td.model")
    visit.assert_offline_and_clean()
    again.assert_offline_and_clean()


def _changed(runs: Path, a: str, b: str, needle: str = "") -> list[str]:
    """Ids whose sentence BLEU moved between two systems (and that contain ``needle``)."""
    rows_a = {r["id"]: r for r in read_samples(runs / a, EN_DE)}
    found = []
    for row in read_samples(runs / b, EN_DE):
        other = rows_a[row["id"]]
        if row["scores"]["bleu"] == other["scores"]["bleu"]:
            continue
        refs = row["gold"] if len(row["gold"]) > 1 else row["gold"][:1]
        gold = "\n".join(f"[{i}] {r}" for i, r in enumerate(refs, start=1)) if len(refs) > 1 else refs[0]
        haystack = "\0".join([row["id"], row["input"], gold, other["prediction"], row["prediction"]]).lower()
        if needle.lower() in haystack:
            found.append(row["id"])
    return found


@pytest.mark.browser
def test_wmt21_model_vs_model_page_lists_changed_examples_and_search_filters_them(browser, wmt_site, wmt21_en_de_runs):
    visit = Page(browser, _url(wmt_site / "compare.html", "a=Online-W&b=Facebook-AI"))
    page = visit.page
    assert page.input_value("#pick-a") != page.input_value("#pick-b")
    tests = page.query_selector_all("#tests tbody tr")
    assert len(tests) == 4 and all("paired-bootstrap-B" in row.text_content() for row in tests)
    expected = _changed(wmt21_en_de_runs, "Online-W", "Facebook-AI")
    root = "#changed-browser"
    assert page.text_content(f"{root} .b-count") == f"{len(expected)} of {len(expected)} shown" and expected
    needle = "Polizei"
    page.fill(f"{root} .b-search", needle)
    matching = _changed(wmt21_en_de_runs, "Online-W", "Facebook-AI", needle)
    wait_until(lambda: page.text_content(f"{root} .b-count") == f"{len(matching)} of {len(expected)} shown")
    assert 0 < len(matching) < len(expected)
    for row in page.query_selector_all(f"{root} tbody tr"):
        assert needle.lower() in row.text_content().lower()
    # Several references read one per line, long ones collapsed to their start.
    gold = page.query_selector(f"{root} tbody td.gold details")
    assert gold is not None and gold.query_selector("summary").text_content().endswith("characters)")
    assert "\n[2] " in gold.query_selector("div.full").text_content()
    assert gold.evaluate("d => getComputedStyle(d.closest('td')).whiteSpace") == "pre-wrap"
    page.select_option("#pick-b", label="ICL")
    assert page.url.endswith("#a=Online-W&b=ICL") and page.text_content(f"{root} .b-count").endswith("shown")
    visit.screenshot("site-v2-wmt21-compare.png")
    visit.assert_offline_and_clean()


@pytest.mark.browser
def test_wmt21_report_offers_no_error_filter_for_bleu_and_sorts_the_worst_examples_first(browser, wmt21_en_de_runs, tmp_path):
    """BLEU has no per-example right or wrong: the report says so instead of calling every
    example below the best sentence score an error, and sorts by score instead."""
    output = tmp_path / "report.html"
    result = run_cli("report", str(wmt21_en_de_runs / "ICL"), "--baseline", str(wmt21_en_de_runs / "Online-W"), "--output", str(output))
    assert result.returncode == 0, result.stderr
    visit = Page(browser, _url(output))
    page = visit.page
    root = "#example-browser"
    assert "no per-example right or wrong" in page.text_content(f"{root} .b-note")
    assert page.eval_on_selector_all(f"{root} .b-filter option", "options => options.filter(o => !o.hidden).map(o => o.value)") == ["all"]
    assert page.query_selector_all(f"{root} tbody tr.error") == []
    page.select_option(f"{root} .b-sort", "worst")
    scores = [float(text.split("\n")[0].split(": ")[1]) for text in visit.texts(f"{root} tbody td.scores")]
    assert scores == sorted(scores) and scores[0] < scores[-1]
    assert page.query_selector("td.delta.worse") is not None and page.text_content("td.delta.worse").startswith("▼")
    visit.assert_offline_and_clean()


# -- hostile strings ---------------------------------------------------------------------------


def _hostile_board(tmp_path: Path):
    runs = tmp_path / "runs"
    write_hostile_run(runs / "hostile")
    rows = [
        {"id": "0", "input": f"input {SCRIPT}", "prediction": "positive", "gold": "positive", "scores": {"accuracy": 100.0}, "stats": {"accuracy": [1.0, 1.0]}},
        {"id": "1", "input": "a plain sentence", "prediction": "positive", "gold": "positive", "scores": {"accuracy": 100.0}, "stats": {"accuracy": [1.0, 1.0]}},
    ]
    write_run(runs / "other", model="other <svg onload=\"window.__pwned=5\">", tasks={HOSTILE_TASK: task({"accuracy": metric(100.0, n=2)}, n=2)},
              samples={HOSTILE_TASK: rows})
    names = {HOSTILE_MODEL: "<img src=x onerror=\"window.__pwned=6;document.title='pwned'\">"}
    return build_leaderboard([runs], title=f"board {SCRIPT}", names=names)


@pytest.mark.browser
def test_hostile_strings_on_every_site_v2_page_stay_inert(browser, tmp_path):
    board = _hostile_board(tmp_path)
    site = tmp_path / "site"
    write_site(board, site, reports=False)
    write_site(build_leaderboard([tmp_path / "runs" / "hostile"], title=f"v2 {SCRIPT}"), site, reports=False)  # a history entry
    fragment = "q=" + "%3Cimg%20src%3Dx%20onerror%3Dwindow.__pwned%3D7%3E" + "&sort=%3Cscript%3E&task=%3C%2Fselect%3E"
    pages = [_url(site / "index.html", fragment), _url(site / "history.html"),
             _url(site / "compare.html", "a=" + "%3Cscript%3Ewindow.__pwned%3D8%3C%2Fscript%3E"),
             *[_url(p) for p in sorted((site / "models").glob("*.html"))], *[_url(p) for p in sorted((site / "tasks").glob("*.html"))]]
    write_site(board, site, reports=False)
    for url in pages:
        visit = Page(browser, url, bypass_csp=True)  # escaping alone must keep it inert
        page = visit.page
        page.wait_for_timeout(100)
        assert page.evaluate("typeof window.__pwned") == "undefined" and page.title() != "pwned", url
        assert "window.__pwned" in page.text_content("body") or "history.html" in url, url
        visit.assert_offline_and_clean()
        page.close()
    visit = Page(browser, _url(site / "compare.html"), bypass_csp=True)
    page = visit.page
    assert HOSTILE_PREDICTION in visit.texts("#changed-browser td.output-a") + visit.texts("#changed-browser td.output-b")
    page.fill("#changed-browser .b-search", "</script>")
    wait_until(lambda: page.text_content("#changed-browser .b-count").startswith("1 of"))
    assert page.evaluate("typeof window.__pwned") == "undefined"
    visit.assert_offline_and_clean()


# -- WMT21 de-en clusters next to the official ranking ------------------------------------------

# The official WMT21 German→English human ranking (DA z-scores) and its pairwise significance
# (Wilcoxon rank-sum, "*" = p < 0.05), from wmt-conference/wmt21-news-systems @ 124f238,
# humaneval/newstest2021-toen/ad-sys-ranking-de-en-z-names.csv and
# ad-DA-diff-wilcoxon-rs-deen.csv (HUMAN, the human translation, left out). The shared data
# (txt/ and scores/ of that repository) does not include the human evaluation, so it is
# quoted here; the official clusters are derived from it with WMT's stated rule (a cluster
# boundary where every system above significantly outperforms every system below).
OFFICIAL_HUMAN = [  # system, z-score, systems it significantly outperforms
    ("Borderline", 0.126, "Facebook-AI ICL Online-G Online-B Online-Y VolcTrans-GLAT P3AI SMU UEdin NVIDIA-NeMo Manifold Watermelon happypoet HuaweiTSC"),
    ("Online-A", 0.124, "ICL Online-B Online-Y VolcTrans-GLAT P3AI SMU UEdin NVIDIA-NeMo Manifold Watermelon happypoet HuaweiTSC"),
    ("Online-W", 0.122, "VolcTrans-AT Facebook-AI ICL Online-G Online-B Online-Y VolcTrans-GLAT P3AI SMU UEdin NVIDIA-NeMo Manifold Watermelon happypoet HuaweiTSC"),
    ("UF", 0.113, "VolcTrans-AT Facebook-AI ICL Online-G Online-B Online-Y VolcTrans-GLAT P3AI SMU UEdin NVIDIA-NeMo Manifold Watermelon happypoet HuaweiTSC"),
    ("VolcTrans-AT", 0.106, "Online-B Online-Y VolcTrans-GLAT SMU UEdin NVIDIA-NeMo Manifold Watermelon happypoet HuaweiTSC"),
    ("Facebook-AI", 0.100, "Online-B Online-Y VolcTrans-GLAT SMU UEdin NVIDIA-NeMo Manifold Watermelon happypoet HuaweiTSC"),
    ("ICL", 0.068, "Online-B SMU UEdin NVIDIA-NeMo Manifold Watermelon HuaweiTSC"),
    ("Online-G", 0.048, "SMU UEdin NVIDIA-NeMo Manifold Watermelon happypoet HuaweiTSC"),
    ("Online-B", 0.016, "Watermelon HuaweiTSC"),
    ("Online-Y", 0.016, "Watermelon HuaweiTSC"),
    ("VolcTrans-GLAT", 0.010, "Watermelon HuaweiTSC"),
    ("P3AI", 0.007, "Manifold Watermelon HuaweiTSC"),
    ("SMU", -0.008, "HuaweiTSC"),
    ("UEdin", -0.008, "Watermelon HuaweiTSC"),
    ("NVIDIA-NeMo", -0.010, "Watermelon HuaweiTSC"),
    ("Manifold", -0.035, "HuaweiTSC"),
    ("Watermelon", -0.043, ""),
    ("happypoet", -0.061, "HuaweiTSC"),
    ("HuaweiTSC", -0.120, ""),
]


def _official_bleu(shared_data: Path) -> dict[str, float]:
    with open(shared_data / "wmt21" / "scores" / "automatic-scores.tsv", encoding="utf-8", newline="") as stream:
        return {row["system"]: float(row["score"]) for row in csv.DictReader(stream, delimiter="\t")
                if row["pair"] == "de-en" and row["metric"] == "bleu-all"}


def test_wmt21_de_en_clusters_from_paired_tests_next_to_the_official_ranking(wmt21_de_en_runs, shared_data, capsys):
    import pandas as pd

    key = f"{DE_EN}:bleu"
    board = build_leaderboard([wmt21_de_en_runs], rank_by=key)
    official = _official_bleu(shared_data)
    assert len(board.model_ids) == 19 and {m: board.values.at[m, key] for m in board.model_ids} == {m: official[m] for m in board.model_ids}
    assert board.model_ids == sorted(official, key=lambda m: -official[m])  # our order is the official BLEU order
    tests = board.paired.column(key, board.model_ids)
    assert len(tests.tests) == 171 and not tests.untested
    # Every cluster boundary is backed: each system above beats each system below after Holm.
    cluster = board.ranking["cluster"].to_dict()
    for (a, b), test in tests.tests.items():
        if cluster[a] != cluster[b]:
            assert test.verdict == "regressed" and test.p_adjusted < 0.05, (a, b)
    beats = {(system, other) for system, _, below in OFFICIAL_HUMAN for other in below.split()}
    human = pd.Series({system: z for system, z, _ in OFFICIAL_HUMAN})
    official_clusters = rank_clusters(human, lambda a, b: (a, b) in beats)
    lines = [f"WMT21 de-en: {len(board.model_ids)} systems, BLEU (refs A+B) clusters from paired bootstrap tests, Holm over 171 pairs",
             "official WMT21 human ranking (DA z, its order) and its clusters by WMT's rule on its Wilcoxon tests:",
             f"{'system':16} {'BLEU':>7} {'ours':>5} | {'human z':>8} {'z order':>7} {'official':>8}"]
    z_order = {system: i for i, (system, _, _) in enumerate(OFFICIAL_HUMAN, start=1)}
    for model in board.model_ids:
        lines.append(f"{model:16} {official[model]:7.3f} {board.rank_label(model):>5} | {human[model]:8.3f} {z_order[model]:>7} "
                     f"{('=' if official_clusters.at[model, 'tied'] else '') + str(official_clusters.at[model, 'rank']):>8}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert list(board.ranking["rank"]).count(1) >= 2  # close BLEU scores are not over-separated
    assert board.rank_label("happypoet") == "19"  # 3.4 BLEU below the next system: separated from all
    assert set(official_clusters["rank"]) == {1}  # WMT's rule on its own significance matrix: one cluster
