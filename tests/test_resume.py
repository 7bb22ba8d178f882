"""Crash safety (issue 9): a run killed with SIGKILL mid-task resumes from the prediction
cache and ends with the same record and samples as an uninterrupted run; two runs on one
output directory never interleave."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalharness.records.record import load_record
from tests.conftest import CORPUS, REPO
from tests.inprocess import main  # noqa: F401 - the in-process CLI fixture

TASK = """\
version: 1
kind: classification
data: {local: {files: [reviews.tsv], format: tsv}}
labels: [negative, positive]
metrics: [accuracy, {name: f1, settings: {positive_label: positive}}]
"""
N_EXAMPLES = 160


def _write_task(root: Path) -> Path:
    (root / "tasks").mkdir(parents=True, exist_ok=True)
    (root / "tasks" / "reviews.yaml").write_text(TASK, encoding="utf-8")
    lines = ["text\tlabel"]
    for i in range(N_EXAMPLES):
        words = CORPUS[i % 8].split()
        lines.append(f"{' '.join(words[: 2 + (i * 5) % len(words)])} {i}\t{'positive' if i % 3 else 'negative'}")
    (root / "reviews.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _args(model: Path, root: Path, out: Path, *extra: str) -> list[str]:
    return [
        "run", "--model", str(model), "--tasks", "reviews", "--tasks-dir", str(root / "tasks"),
        "--data-dir", str(root), "--output", str(out), "--batch-size", "2", *extra,
    ]


def _command(model: Path, root: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "evalharness", *_args(model, root, out, *extra)]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _cached_rows(path: Path) -> int:
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


def _wait_for(condition, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "timed out waiting for the run"
        time.sleep(0.02)


def _comparable(out: Path) -> dict:
    """The record without what may differ between runs (ids, times, how predictions were got)."""
    record = json.loads((out / "results.json").read_text(encoding="utf-8"))
    for key in ("run_id", "created", "seconds", "environment"):
        record.pop(key)
    for task in record["tasks"].values():
        task.pop("seconds"), task.pop("execution")
    return record


def test_run_killed_mid_task_resumes_to_the_uninterrupted_result(tmp_path, tiny_classifier, main):
    root = _write_task(tmp_path)
    killed = tmp_path / "killed"
    process = subprocess.Popen(_command(tiny_classifier, root, killed), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cache = killed / "cache" / "predictions.sqlite"
    _wait_for(lambda: _cached_rows(cache) >= 10, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    done_before_kill = _cached_rows(cache)
    assert not (killed / "results.json").exists(), "the run finished before it could be killed"
    assert 10 <= done_before_kill < N_EXAMPLES

    resumed = main(*_args(tiny_classifier, root, killed))  # in-process: no second interpreter start-up
    assert resumed.returncode == 0, resumed.stderr
    execution = load_record(killed).tasks["reviews"].execution
    assert execution["cache"]["hits"] >= done_before_kill and execution["cache"]["misses"] == N_EXAMPLES - execution["cache"]["hits"]

    clean = tmp_path / "clean"
    uninterrupted = main(*_args(tiny_classifier, root, clean))
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    assert load_record(clean).tasks["reviews"].execution["cache"]["hits"] == 0
    assert _comparable(killed) == _comparable(clean)
    samples = load_record(killed).tasks["reviews"].samples  # content-addressed: same bytes, same name
    assert (killed / samples).read_bytes() == (clean / samples).read_bytes()
    assert not list(killed.rglob("*.tmp"))  # no half-written file left behind


def test_second_run_on_the_same_output_directory_is_refused_with_the_holders_pid(tmp_path, tiny_classifier, main):
    root = _write_task(tmp_path)
    out = tmp_path / "run"
    first = subprocess.Popen(_command(tiny_classifier, root, out), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: (out / ".lock").is_file() and (out / ".lock").read_text().strip() == str(first.pid), first)
        second = main(*_args(tiny_classifier, root, out))
        assert second.returncode == 2
        assert str(out) in second.stderr and f"pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.kill()
        first.wait(timeout=30)


def test_fresh_recomputes_everything_and_determinism_is_checked(tmp_path, tiny_classifier, main):
    root = _write_task(tmp_path)
    out = tmp_path / "run"
    args = ("--limit", "20", "--batch-size", "8")
    assert main(*_args(tiny_classifier, root, out, *args)).returncode == 0
    again = main(*_args(tiny_classifier, root, out, *args))
    assert again.returncode == 0 and "cache hits 20/20" in again.stderr
    assert load_record(out).tasks["reviews"].execution["cache"] == {"hits": 20, "misses": 0}
    fresh = main(*_args(tiny_classifier, root, out, *args, "--fresh", "--check-determinism", "--progress"))
    execution = load_record(out).tasks["reviews"].execution
    assert fresh.returncode == 0 and execution["cache"] == {"hits": 0, "misses": 20}
    assert "req/s" in fresh.stderr and "20/20" in fresh.stderr  # the progress bar, forced on
    determinism = execution["determinism"]
    assert determinism["sample"] == 20 and determinism["batch_size"] == 4  # half of --batch-size 8
    assert determinism["max_abs_diff"] < 1e-5 and determinism["non_numeric_mismatches"] == 0
