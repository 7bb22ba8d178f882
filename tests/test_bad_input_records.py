"""Corrupted, truncated, hand-edited and unknown-version run records fed to every command that
reads records (leaderboard, compare, gate, report): exit code 2 naming the file, no traceback,
and no output written as if the records were fine.

The loader's own messages are checked in tests/test_records.py; refusals of records from
incompatible runs in tests/test_leaderboard.py, test_compare.py and test_gate.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.inprocess import main  # noqa: F401 - pytest fixture
from tests.record_factory import default_samples, metric, task, write_run

POLICY = """\
rules:
  - task: t
    metric: accuracy
    min: 10
"""


def _edit(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def _truncate(run: Path) -> str:
    results = run / "results.json"
    results.write_bytes(results.read_bytes()[:200])
    return "truncated or corrupted"


def _unknown_version(run: Path) -> str:
    _edit(run / "results.json", lambda d: d.update(schema_version=99))
    return "schema_version 99"


def _wrong_type(run: Path) -> str:
    _edit(run / "results.json", lambda d: d["tasks"]["t"]["metrics"]["accuracy"].update(value="ninety"))
    return "tasks.t.metrics.accuracy.value"


def _unknown_field(run: Path) -> str:
    _edit(run / "results.json", lambda d: d.update(extra_field=1))
    return "extra_field"


def _not_a_record(run: Path) -> str:
    (run / "results.json").write_text('["just", "a", "list"]', encoding="utf-8")
    return "not an evalharness run record"


def _missing(run: Path) -> str:
    (run / "results.json").unlink()
    return "no run record"


def _not_utf8(run: Path) -> str:
    (run / "results.json").write_bytes(b'{"schema_version": 1, "run_id": "\xff"}')
    return "truncated or corrupted"


def _nan_value(run: Path) -> str:
    text = (run / "results.json").read_text(encoding="utf-8")
    (run / "results.json").write_text(text.replace('"value": 60.0', '"value": NaN', 1), encoding="utf-8")
    return "value"


CORRUPTIONS = {f.__name__.lstrip("_"): f for f in (_truncate, _unknown_version, _wrong_type, _unknown_field,
                                                     _not_a_record, _missing, _not_utf8, _nan_value)}


def _commands(tmp_path: Path, good: Path, bad: Path) -> dict[str, list[str]]:
    policy = tmp_path / "gates.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    return {
        "leaderboard": ["leaderboard", str(good), str(bad), "--output", str(tmp_path / "board")],
        "compare": ["compare", str(good), str(bad), "--output", str(tmp_path / "compare.json")],
        "gate": ["gate", "--candidate", str(bad), "--baseline", str(good), "--policy", str(policy),
                 "--output", str(tmp_path / "gate.json")],
        "report": ["report", str(bad), "--output", str(tmp_path / "report.html")],
    }


@pytest.mark.parametrize("command", ["leaderboard", "compare", "gate", "report"])
@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupted_record_is_refused_by_every_reader(main, tmp_path, corruption, command):
    good = write_run(tmp_path / "good", model="good", tasks={"t": task({"accuracy": metric(70.0, n=4)}, n=4)})
    bad = write_run(tmp_path / "bad", model="bad", tasks={"t": task({"accuracy": metric(60.0, n=4)}, n=4)})
    expected = CORRUPTIONS[corruption](bad)
    result = main(*_commands(tmp_path, good, bad)[command])
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert str(bad) in result.stderr, result.stderr
    if not (command == "leaderboard" and corruption == "missing"):  # "no run record here or below"
        assert str(bad / "results.json") in result.stderr and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    written = [p for p in tmp_path.iterdir() if p.name in {"board", "compare.json", "gate.json", "report.html"}]
    assert written == []


def _samples_file(run: Path) -> Path:
    return run / json.loads((run / "results.json").read_text())["tasks"]["t"]["samples"]


DAMAGE = {
    "truncated_line": "corrupted samples line",
    "missing_rows": "2 samples but the record says 4",
    "missing_file": "samples file missing",
    "path_outside_the_run": "points outside the run directory",
}


def _damage(tmp_path: Path, bad: Path, damage: str) -> None:
    samples = _samples_file(bad)
    lines = samples.read_text(encoding="utf-8").splitlines()
    if damage == "truncated_line":
        samples.write_text("\n".join(lines[:-1] + [lines[-1][:20]]) + "\n", encoding="utf-8")
    elif damage == "missing_rows":
        samples.write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")
    elif damage == "missing_file":
        samples.unlink()
    else:  # a hand-edited record pointing at a file elsewhere (here: the good run's samples)
        outside = tmp_path / "elsewhere.jsonl"
        outside.write_text("\n".join(lines) + "\n", encoding="utf-8")
        _edit(bad / "results.json", lambda d: d["tasks"]["t"].update(samples="../elsewhere.jsonl"))


def _runs(tmp_path: Path) -> tuple[Path, Path]:
    good = write_run(tmp_path / "good", model="good", tasks={"t": task({"accuracy": metric(70.0, n=4)}, n=4)})
    bad = write_run(tmp_path / "bad", model="bad", tasks={"t": task({"accuracy": metric(60.0, n=4)}, n=4)})
    return good, bad


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_compare_refuses_damaged_samples(main, tmp_path, damage):
    good, bad = _runs(tmp_path)
    _damage(tmp_path, bad, damage)
    result = main(*_commands(tmp_path, good, bad)["compare"])
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert str(bad) in result.stderr and DAMAGE[damage] in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "compare.json").exists()


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_report_states_damaged_samples_instead_of_showing_them(main, tmp_path, damage):
    """The report keeps the record's scores but says, in the task's section, why its
    examples are not shown; it never shows a partial or foreign example list as complete."""
    import html

    good, bad = _runs(tmp_path)
    _damage(tmp_path, bad, damage)
    result = main(*_commands(tmp_path, good, bad)["report"])
    assert result.returncode == 0, result.stderr
    page = html.unescape((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert DAMAGE[damage] in page
    assert "example sentence 0" not in page  # no rows from the damaged (or foreign) samples file


def test_a_samples_line_that_is_not_an_object_is_refused_naming_the_line(tmp_path):
    """A samples line holding other JSON (here an array) under a name whose sha256 matches is
    refused by the reader, naming the file and line, before any reader indexes it as a row."""
    from evalharness.errors import RecordError
    from evalharness.records.record import read_samples

    entry = task({"accuracy": metric(50.0, n=2)}, n=2)
    first = dict(default_samples(entry)[0])
    run = write_run(tmp_path / "run", model="m", tasks={"t": entry}, samples={"t": [first, ["not", "a", "row"]]})
    with pytest.raises(RecordError, match=r"\.jsonl:2: samples line: expected an object, got an array"):
        read_samples(run, "t")
