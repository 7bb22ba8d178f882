"""Reports and the leaderboard site in real headless Chromium (Debian's, via Playwright).

Every page is opened from ``file://`` with every request recorded: only the page itself may
be requested, and the console must stay free of errors. Screenshots go to
``test-artifacts/`` (gitignored). Skipped with a message when Chromium cannot start.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from evalharness.leaderboard import build_leaderboard
from evalharness.report import write_report
from evalharness.report.site import write_site
from tests.conftest import REPO
from tests.publish_fixtures import HOSTILE_MODEL, HOSTILE_PREDICTION, HOSTILE_TASK, tiny_runs, write_big_run, write_hostile_run  # noqa: F401
from tests.record_factory import metric, task, write_run

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser tests skipped: {CHROMIUM} not found (scripts/setup.sh --test installs Debian's chromium)")
    manager = sync_api.sync_playwright().start()
    try:
        instance = manager.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    except Exception as exc:  # any launch failure means: no usable browser here
        manager.stop()
        pytest.skip(f"browser tests skipped: chromium cannot be launched ({str(exc).splitlines()[0]})")
    yield instance
    instance.close()
    manager.stop()


def wait_until(condition, timeout: float = 10.0) -> None:
    """Poll from Python: the pages' CSP (rightly) forbids the eval behind wait_for_function."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


class Visit:
    """A page opened from a file, with every request and console problem recorded.

    ``bypass_csp`` switches the page's Content-Security-Policy off, to show that escaping
    alone keeps injected markup inert."""

    def __init__(self, browser, path: Path, *, bypass_csp: bool = False):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=bypass_csp)
        self.requests: list[str] = []
        self.problems: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", lambda message: message.type in ("error", "warning") and self.problems.append(message.text))
        self.page.on("pageerror", lambda error: self.problems.append(str(error)))
        self.url = path.resolve().as_uri()
        self.page.goto(self.url)
        self.page.wait_for_load_state("load")

    def assert_offline_and_clean(self) -> None:
        assert self.requests == [self.url], self.requests
        assert self.problems == []

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / name), full_page=True)

    def close(self) -> None:
        self.page.close()


def _texts(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "nodes => nodes.map(n => n.textContent)")


def test_report_example_browser_filters_and_paginates(browser, tmp_path, tiny_runs):
    path = write_report(tiny_runs["candidate"], tmp_path / "report.html", baseline=tiny_runs["baseline"])
    visit = Visit(browser, path)
    page = visit.page
    root = "#example-browser"
    assert page.text_content(f"{root} .b-count") == "120 of 120 shown"
    assert page.text_content(f"{root} .b-page") == "page 1 of 3"
    assert len(page.query_selector_all(f"{root} tbody tr")) == 50
    first_ids = _texts(page, f"{root} tbody td.id")
    page.click(f"{root} .b-next")
    assert page.text_content(f"{root} .b-page") == "page 2 of 3"
    assert _texts(page, f"{root} tbody td.id")[0] not in first_ids
    page.select_option(f"{root} .b-filter", "errors")
    rows = page.query_selector_all(f"{root} tbody tr")
    errors = int(page.text_content(f"{root} .b-count").split()[0])
    assert 0 < errors < 120 and page.text_content(f"{root} .b-page").startswith("page 1 of")
    for row in rows:
        assert row.get_attribute("class") == "error"
        assert row.query_selector("td.prediction").text_content() != row.query_selector("td.gold").text_content()
    page.select_option(f"{root} .b-filter", "all")
    page.fill(f"{root} .b-search", "was not")
    wait_until(lambda: page.text_content(f"{root} .b-count") != "120 of 120 shown")
    inputs = _texts(page, f"{root} tbody td:nth-child(2)")
    assert inputs and all("was not" in text for text in inputs)
    changed = page.text_content("#changed-browser .b-count")
    assert changed.endswith("shown") and page.title().startswith("Evaluation report: candidate vs baseline")
    visit.screenshot("report.png")
    visit.assert_offline_and_clean()
    visit.close()


def test_report_with_10000_examples_stays_responsive(browser, tmp_path):
    path = write_report(write_big_run(tmp_path / "big"), tmp_path / "big.html")
    started = time.perf_counter()
    visit = Visit(browser, path)
    page = visit.page
    root = "#example-browser"
    assert page.text_content(f"{root} .b-count") == "10000 of 10000 shown"
    assert page.text_content(f"{root} .b-page") == "page 1 of 200"
    assert len(page.query_selector_all("tbody tr")) <= 300  # paginated: the DOM stays small
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    page.fill(f"{root} .b-search", "topic 42")
    matching = sum(1 for i in range(10000) if i % 97 == 42)
    wait_until(lambda: page.text_content(f"{root} .b-count") == f"{matching} of 10000 shown")
    searched = time.perf_counter() - started
    page.select_option(f"{root} .b-filter", "errors")
    assert page.text_content(f"{root} .b-count") == f"{sum(1 for i in range(10000) if i % 7 == 0 and i % 97 == 42)} of 10000 shown"
    # Generous bounds for a shared 2-core machine; typically well under a second.
    assert loaded < 20 and searched < 5, (loaded, searched)
    visit.assert_offline_and_clean()
    visit.close()


def _assert_not_executed(page) -> None:
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.title() != "pwned"


@pytest.mark.parametrize("bypass_csp", [False, True], ids=["with-csp", "escaping-alone"])
def test_injected_markup_in_a_report_is_text(browser, tmp_path, bypass_csp):
    path = write_report(write_hostile_run(tmp_path / "hostile"), tmp_path / "hostile.html")
    visit = Visit(browser, path, bypass_csp=bypass_csp)
    page = visit.page
    _assert_not_executed(page)
    assert page.title() == f"Evaluation report: {HOSTILE_MODEL}"
    assert page.text_content("#report-title") == f"Evaluation report: {HOSTILE_MODEL}"
    assert HOSTILE_PREDICTION in _texts(page, "#example-browser td.prediction")
    assert HOSTILE_TASK in page.text_content("section.task h2")
    assert any(HOSTILE_TASK in option for option in _texts(page, "#example-browser .b-task option"))
    page.fill("#example-browser .b-search", "</script>")
    wait_until(lambda: page.text_content("#example-browser .b-count").startswith("1 of"))
    _assert_not_executed(page)
    visit.screenshot(f"report-hostile-{'no-csp' if bypass_csp else 'csp'}.png")
    visit.assert_offline_and_clean()
    visit.close()


def _board(tmp_path, tiny_runs):
    """The tiny-model runs plus two hand-built models, one with hostile names."""
    extra = tmp_path / "extra"
    write_run(extra / "strong", model="strong", tasks={"other/task": task({"f1": metric(90.0, name="f1")})})
    write_run(extra / "weak", model="weak", tasks={"other/task": task({"f1": metric(30.0, name="f1")})})
    write_hostile_run(extra / "hostile")
    return build_leaderboard([*tiny_runs.values(), extra], title="Browser board", aggregates=["mean", "mean_win_rate"], rank_by="mean_win_rate")


def test_site_sorts_filters_and_stays_offline(browser, tmp_path, tiny_runs):
    board = _board(tmp_path, tiny_runs)
    index = write_site(board, tmp_path / "site")
    visit = Visit(browser, index)
    page = visit.page
    _assert_not_executed(page)
    assert page.title() == "Browser board"
    models = lambda: _texts(page, "#leaderboard tbody td.model")  # noqa: E731
    assert models() == board.model_ids
    column = "#leaderboard th:has-text('other/task f1')"
    page.click(column)  # best first
    assert models()[:2] == ["strong", "weak"] and page.get_attribute(column, "aria-sort") == "descending"
    page.click(column)  # worst first; models without a value stay last either way
    assert models()[:2] == ["weak", "strong"] and page.get_attribute(column, "aria-sort") == "ascending"
    page.click("#leaderboard th:has-text('model')")
    assert models() == sorted(board.model_ids, key=str.lower)
    page.fill("#model-filter", "cand")
    visible = page.eval_on_selector_all("#leaderboard tbody tr", "rows => rows.filter(r => !r.hidden).map(r => r.dataset.model)")
    assert visible == ["candidate"] and page.text_content("#row-count") == f"1 of {len(board.model_ids)} model(s)"
    page.fill("#model-filter", "")
    page.select_option("#task-filter", "demo/sentiment")
    hidden = page.eval_on_selector_all("#leaderboard th", "cells => cells.filter(c => c.hidden).map(c => c.textContent)")
    assert hidden == [f"{c.label} {c.arrow}" for c in board.columns if c.task != "demo/sentiment"] and len(hidden) == 2
    visit.screenshot("site-index.png")
    visit.assert_offline_and_clean()
    # Follow links: model page, then its report; every request stays inside the site folder.
    page.click("#leaderboard a:has-text('candidate')")
    page.wait_for_load_state("load")
    page.click("a:has-text('run ')")
    page.wait_for_load_state("load")
    assert page.title().startswith("Evaluation report: candidate")
    site = (tmp_path / "site").resolve().as_uri()
    assert all(url.startswith(site + "/") for url in visit.requests), visit.requests
    assert visit.problems == []
    visit.close()


def test_site_pages_with_hostile_names_do_not_run_them(browser, tmp_path, tiny_runs):
    board = _board(tmp_path, tiny_runs)
    write_site(board, tmp_path / "site")
    site = tmp_path / "site"
    pages = [site / "index.html", *sorted((site / "models").glob("evil-*.html")), *sorted((site / "tasks").glob("evil-*.html")),
             *sorted((site / "reports").glob("evil-*.html"))]
    assert len(pages) == 4
    for path in pages:
        visit = Visit(browser, path, bypass_csp=True)
        _assert_not_executed(visit.page)
        body = visit.page.text_content("body")
        assert "window.__pwned" in body  # shown as text
        visit.assert_offline_and_clean()
        visit.close()
