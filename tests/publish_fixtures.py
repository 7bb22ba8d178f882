"""Run directories for the leaderboard, report and site tests.

``tiny_runs``: two tiny random-init classifiers evaluated with ``evalharness run`` on a
small synthetic ``demo/sentiment`` set, built once per test session and shared by the
xdist workers (a file lock guards the build). The other helpers hand-build records with
hostile names and with 10,000 examples.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from tests.conftest import CORPUS, run_cli
from tests.record_factory import metric, task, write_run

# Executable if ever parsed as markup: each would set a global and change the title.
SCRIPT = "<script>window.__pwned = 1; document.title = 'pwned';</script>"
HOSTILE_PREDICTION = "</script><script>window.__pwned = 2; document.title = 'pwned';</script><!-- <img src=x onerror=\"window.__pwned=3\">"
HOSTILE_MODEL = f"evil {SCRIPT}"
HOSTILE_TASK = "evil/<img src=x onerror=\"window.__pwned=4;document.title='pwned'\">"


def _shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _build_tiny_runs(root: Path) -> None:
    from evalharness.testing.demo import generate_sentiment_data
    from evalharness.testing.tiny import build_classifier, build_wordpiece_tokenizer

    data_dir = root / "data"
    generate_sentiment_data(data_dir / "demo" / "sentiment", n_train=10, n_test=120, seed=5)
    tokenizer = build_wordpiece_tokenizer(CORPUS, vocab_size=300)
    for name, seed in (("baseline", 0), ("candidate", 7)):
        model = build_classifier(root / "models" / name, tokenizer, ["negative", "positive"], seed=seed)
        result = run_cli("run", "--model", str(model), "--tasks", "demo/sentiment", "--data-dir", str(data_dir),
                         "--output", str(root / "runs" / name))
        if result.returncode != 0:
            raise RuntimeError(f"evalharness run failed: {result.stderr}")


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> dict[str, Path]:
    """``{"baseline": run_dir, "candidate": run_dir}`` made by ``evalharness run``."""
    root = _shared_root(tmp_path_factory) / "tiny-runs"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / ".done").exists():
            _build_tiny_runs(root)
            (root / ".done").touch()
    return {name: root / "runs" / name for name in ("baseline", "candidate")}


def write_hostile_run(directory: Path) -> Path:
    """A run whose model name, task name and predictions all carry markup."""
    rows = [
        {"id": "0", "input": f"input {SCRIPT}", "prediction": HOSTILE_PREDICTION, "gold": "positive",
         "scores": {"accuracy": 0.0}, "stats": {"accuracy": [0.0, 1.0]}},
        {"id": "1", "input": "a plain sentence", "prediction": "positive", "gold": "positive",
         "scores": {"accuracy": 100.0}, "stats": {"accuracy": [1.0, 1.0]}},
    ]
    return write_run(directory, model=HOSTILE_MODEL, tasks={HOSTILE_TASK: task({"accuracy": metric(50.0, n=2)}, n=2)},
                     samples={HOSTILE_TASK: rows})


def write_big_run(directory: Path, n: int = 10_000) -> Path:
    """A run with one task of ``n`` examples; every seventh one is wrong."""
    rows = [
        {"id": f"ex-{i}", "input": f"sentence number {i} about topic {i % 97}", "prediction": "negative" if i % 7 == 0 else "positive",
         "gold": "positive", "scores": {"accuracy": 0.0 if i % 7 == 0 else 100.0}, "stats": {"accuracy": [float(i % 7 != 0), 1.0]}}
        for i in range(n)
    ]
    wrong = sum(1 for i in range(n) if i % 7 == 0)
    value = 100.0 * (n - wrong) / n
    return write_run(directory, model="big", tasks={"big/task": task({"accuracy": metric(value, n=n)}, n=n)}, samples={"big/task": rows})
