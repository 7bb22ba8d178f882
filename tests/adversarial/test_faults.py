"""Issue 14, class 8: faults of the machine and of the files evalharness is pointed at.

SIGTERM is handled like Ctrl-C (predictions kept, exit 143, resumable); a read-only output
directory, an output path that is a file, a full disk, a damaged cache and someone else's
SQLite database as ``--cache`` all exit 2 with a message, change nothing that is not ours and
lose nothing that is; a seed no consumer accepts is refused before any model loads.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalharness.records.record import load_record
from tests.adversarial.test_records import predictions_file, run_args, score_args, write_tasks
from tests.conftest import REPO
from tests.inprocess import main  # noqa: F401 - the in-process CLI fixture
from tests.record_factory import metric, task, write_run


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cached_rows(path: Path) -> int:
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])
    except sqlite3.Error:
        return 0


# -- signals -------------------------------------------------------------------------------------


def test_sigterm_mid_run_keeps_predictions_exits_143_and_resumes(main, tmp_path, tiny_classifier):
    root = write_tasks(tmp_path, ("alpha",), n=400)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "evalharness", *run_args(tiny_classifier, root, out, "mine/alpha", "--batch-size", "2")]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cache = out / "cache" / "predictions.sqlite"
    deadline = time.monotonic() + 120
    while _cached_rows(cache) < 10:
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "interrupted by SIGTERM" in stderr and "run the same command again to resume" in stderr
    assert "Traceback" not in stderr and not (out / "results.json").exists()
    kept = _cached_rows(cache)
    assert 10 <= kept < 400

    resumed = main(*run_args(tiny_classifier, root, out, "mine/alpha", "--batch-size", "64"))  # not part of the cache key
    assert resumed.returncode == 0, resumed.stderr
    assert load_record(out).tasks["mine/alpha"].execution["cache"]["hits"] >= kept


def test_ctrl_c_outside_a_run_exits_130_with_a_message_and_no_traceback(main, tmp_path, monkeypatch):
    run = write_run(tmp_path / "r", model="m", tasks={"t": task({"accuracy": metric(50.0, n=4)}, n=4)})

    def pressed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("evalharness.comparison.compare.compare_runs", pressed)
    result = main("compare", str(run), str(run))
    assert result.returncode == 130 and "interrupted by SIGINT" in result.stderr and "Traceback" not in result.stderr


# -- the output location -----------------------------------------------------------------------


def test_read_only_output_directory_is_refused_before_the_model_loads(main, tmp_path, tiny_classifier):
    """Mode 0555 is refused even for root (whom the kernel would let write)."""
    root = write_tasks(tmp_path)
    out = tmp_path / "readonly"
    out.mkdir()
    out.chmod(0o555)
    try:
        result = main(*run_args(tiny_classifier, root, out, "mine/alpha"))
    finally:
        out.chmod(0o755)
    assert result.returncode == 2, result.stderr
    assert f"run directory '{out}' is read-only" in result.stderr and "loading model" not in result.stderr
    assert list(out.iterdir()) == []


def test_read_only_record_in_the_output_directory_is_not_replaced(main, tmp_path, tiny_classifier):
    root = write_tasks(tmp_path)
    out = tmp_path / "run"
    assert main(*run_args(tiny_classifier, root, out, "mine/alpha")).returncode == 0
    (out / "results.json").chmod(0o444)
    before = (out / "results.json").read_bytes()
    result = main(*run_args(tiny_classifier, root, out, "mine/beta"))
    assert result.returncode == 2 and "results.json is read-only" in result.stderr, result.stderr
    assert "loading model" not in result.stderr and (out / "results.json").read_bytes() == before


def test_output_path_that_is_a_file_is_refused_and_left_alone(main, tmp_path, tiny_classifier):
    root = write_tasks(tmp_path)
    out = tmp_path / "notes.txt"
    out.write_text("my notes\n", encoding="utf-8")
    result = main(*run_args(tiny_classifier, root, out, "mine/alpha"))
    assert result.returncode == 2 and f"run directory '{out}' is a file" in result.stderr, result.stderr
    assert "loading model" not in result.stderr and out.read_text(encoding="utf-8") == "my notes\n"
    scored = main(*score_args(root, out, "alpha", predictions_file(root, "alpha")))
    assert scored.returncode == 2 and "is a file" in scored.stderr and out.read_text(encoding="utf-8") == "my notes\n"


def test_samples_folder_that_is_a_file_is_refused_before_the_model_loads(main, tmp_path, tiny_classifier):
    root = write_tasks(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    (out / "samples").write_text("in the way\n", encoding="utf-8")
    result = main(*run_args(tiny_classifier, root, out, "mine/alpha"))
    assert result.returncode == 2 and f"'{out / 'samples'}' is a file" in result.stderr, result.stderr
    assert "loading model" not in result.stderr and (out / "samples").read_text(encoding="utf-8") == "in the way\n"


def test_full_disk_while_writing_samples_keeps_the_previous_record_and_the_predictions(main, tmp_path, tiny_classifier, monkeypatch):
    root = write_tasks(tmp_path)
    out = tmp_path / "run"
    assert main(*run_args(tiny_classifier, root, out, "mine/alpha")).returncode == 0
    before = (out / "results.json").read_bytes()

    def full(handle):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr("evalharness.records.files.os.fsync", full)
        result = main(*run_args(tiny_classifier, root, out, "mine/beta"))
    assert result.returncode == 2, result.stderr
    assert "No space left on device" in result.stderr and "samples" in result.stderr and "resume" in result.stderr
    assert "Traceback" not in result.stderr and not list(out.rglob("*.tmp"))
    assert (out / "results.json").read_bytes() == before  # the previous record, untouched

    resumed = main(*run_args(tiny_classifier, root, out, "mine/beta"))
    assert resumed.returncode == 0, resumed.stderr
    record = load_record(out)
    assert record.tasks["mine/beta"].execution["cache"] == {"hits": 12, "misses": 0}
    assert set(record.tasks) == {"mine/alpha", "mine/beta"}


def test_full_disk_while_replacing_the_record_keeps_the_previous_record(tmp_path, monkeypatch):
    from evalharness.errors import RecordError
    from evalharness.records.store import update_record

    out = write_run(tmp_path / "run", model="m", tasks={"t": task({"accuracy": metric(50.0, n=4)}, n=4)})
    before = (out / "results.json").read_bytes()
    record = load_record(out)
    real_replace = os.replace

    def full(source, target):
        if str(target).endswith("results.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(RecordError, match="No space left on device.*previous record, unchanged"):
        update_record(out, lambda existing: record.model_copy(update={"seconds": 2.0}))
    assert (out / "results.json").read_bytes() == before and not list(out.rglob("*.tmp"))


# -- the prediction cache ----------------------------------------------------------------------


def _damage_row(cache: Path) -> None:
    data = bytearray(cache.read_bytes())
    at = data.index(b'"scores"')  # inside a stored response
    data[at + 1] = ord("X")
    cache.write_bytes(bytes(data))


def _damage_page(cache: Path) -> None:
    data = bytearray(cache.read_bytes())
    data[4096:4108] = b"\xff" * 12  # the b-tree page header of page 2
    cache.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_damage_row, _damage_page], ids=["row", "page_header"])
def test_corrupted_cache_is_refused_and_neither_it_nor_the_record_is_changed(main, tmp_path, tiny_classifier, damage):
    root = write_tasks(tmp_path)
    out = tmp_path / "run"
    assert main(*run_args(tiny_classifier, root, out, "mine/alpha")).returncode == 0
    cache = out / "cache" / "predictions.sqlite"
    assert not Path(f"{cache}-wal").exists()
    damage(cache)
    damaged, record = _digest(cache), (out / "results.json").read_bytes()
    result = main(*run_args(tiny_classifier, root, out, "mine/alpha"))
    assert result.returncode == 2, result.stderr
    assert str(cache) in result.stderr and "prediction cache" in result.stderr and "delete it" in result.stderr
    assert "Traceback" not in result.stderr
    assert _digest(cache) == damaged and (out / "results.json").read_bytes() == record


def test_cache_path_pointing_at_another_programs_database_is_refused_untouched(main, tmp_path, tiny_classifier):
    root = write_tasks(tmp_path)
    foreign = tmp_path / "app.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO users (name) VALUES ('ada')")
    db.close()
    before = _digest(foreign)
    out = tmp_path / "run"
    result = main(*run_args(tiny_classifier, root, out, "mine/alpha", "--cache", str(foreign)))
    assert result.returncode == 2, result.stderr
    assert str(foreign) in result.stderr and "not an evalharness prediction cache" in result.stderr
    assert "users" in result.stderr and "loading model" not in result.stderr
    assert _digest(foreign) == before and sorted(p.name for p in tmp_path.glob("app.db*")) == ["app.db"]
    assert not (out / "results.json").exists()


def test_cache_path_pointing_at_an_empty_database_of_another_program_is_refused_untouched(main, tmp_path, tiny_classifier):
    root = write_tasks(tmp_path)
    foreign = tmp_path / "fresh.db"
    with sqlite3.connect(foreign) as db:
        db.execute("PRAGMA user_version = 7")  # a database, but with no tables yet
    db.close()
    before = _digest(foreign)
    result = main(*run_args(tiny_classifier, root, tmp_path / "run", "mine/alpha", "--cache", str(foreign)))
    assert result.returncode == 2 and "not an evalharness prediction cache" in result.stderr, result.stderr
    assert _digest(foreign) == before


def test_cache_path_pointing_at_a_file_that_is_not_sqlite_is_refused_untouched(main, tmp_path, tiny_classifier):
    root = write_tasks(tmp_path)
    notes = tmp_path / "notes.sqlite"
    notes.write_text("not a database, but precious\n" * 10, encoding="utf-8")
    result = main(*run_args(tiny_classifier, root, tmp_path / "run", "mine/alpha", "--cache", str(notes)))
    assert result.returncode == 2 and "not an SQLite database" in result.stderr, result.stderr
    assert notes.read_text(encoding="utf-8") == "not a database, but precious\n" * 10


def test_cache_of_the_previous_layout_is_adopted_and_its_rows_still_served(tmp_path):
    from evalharness.execution.cache import PredictionCache
    from evalharness.types import GenerateResponse

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE predictions (key TEXT PRIMARY KEY, kind TEXT NOT NULL, value TEXT NOT NULL, "
                   "created REAL NOT NULL DEFAULT (julianday('now')))")
        db.execute("INSERT INTO predictions (key, kind, value) VALUES ('k', 'generate', ?)",
                   ('{"type": "GenerateResponse", "fields": {"text": "kept", "n_tokens": 1}}',))
    db.close()
    with PredictionCache(path) as cache:
        assert cache.get_many(["k"]) == {"k": GenerateResponse("kept", 1)}


# -- seeds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
@pytest.mark.parametrize("command", ["run", "score", "compare", "gate", "sweep"])
def test_seed_no_consumer_accepts_is_refused_before_any_work(cli, tmp_path, command, seed):
    root = write_tasks(tmp_path)
    run = write_run(tmp_path / "r", model="m", tasks={"t": task({"accuracy": metric(50.0, n=4)}, n=4)})
    policy = tmp_path / "gates.yaml"
    policy.write_text("rules:\n  - {task: t, metric: accuracy, min: 10}\n", encoding="utf-8")
    out = tmp_path / "out"
    args = {
        "run": run_args(Path("no-such-checkpoint"), root, out, "mine/alpha"),
        "score": score_args(root, out, "alpha", predictions_file(root, "alpha")),
        "compare": ["compare", str(run), str(run)],
        "gate": ["gate", "--candidate", str(run), "--baseline", str(run), "--policy", str(policy)],
        "sweep": ["sweep", "--models", "no-such-checkpoint", "--tasks", "mine/alpha", "--output", str(out)],
    }[command]
    result = cli(*args, "--seed", seed)
    assert result.returncode == 2, result.stderr
    assert "--seed" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_seed_out_of_range_in_the_library_is_refused_before_the_model_loads(tmp_path, monkeypatch):
    from evalharness.errors import UsageError
    from evalharness.evaluation.runner import RunConfig, run_evaluation

    root = write_tasks(tmp_path)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr("evalharness.models.loading.load_model", no_model)
    with pytest.raises(UsageError, match=r"--seed: .*4294967295 \(got 4294967296\)"):
        run_evaluation(RunConfig(model="m", tasks=["mine/alpha"], output=tmp_path / "out", data_dir=root, tasks_dirs=[root / "tasks"], seed=2**32))
    assert not (tmp_path / "out").exists()


def test_rescore_of_a_record_with_an_impossible_seed_is_refused(main, tmp_path):
    import json

    run = write_run(tmp_path / "r", model="m", tasks={"t": task({"accuracy": metric(50.0, n=4)}, n=4)})
    data = json.loads((run / "results.json").read_text(encoding="utf-8"))
    data["settings"]["seed"] = 2**40
    (run / "results.json").write_text(json.dumps(data), encoding="utf-8")
    result = main("rescore", str(run))
    assert result.returncode == 2 and "settings.seed: 1099511627776" in result.stderr, result.stderr
