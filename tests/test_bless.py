"""Issue 19, baselines by name: ``evalharness bless RUN --as NAME --store URL`` records a
released run with its provenance on any fsspec filesystem, and ``gate --baseline`` accepts a
run directory, the URL of a run or ``NAME@STORE``, verifying every file. Tested on the local
and the ``memory://`` filesystems."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import numpy as np
import pytest
from run_factory import classification, correct_to_predictions, write_run

from evalharness.cli import main
from evalharness.errors import RecordError, UsageError
from evalharness.records.baselines import bless, resolve_run

POLICY = "rules:\n  - {task: glue/sst2, metric: accuracy, noninferior: {margin: 5}}\n"


@pytest.fixture
def runs(tmp_path) -> dict[str, Path]:
    golds = list(np.random.default_rng(0).choice(["negative", "positive"], 200))
    correct = np.random.default_rng(1).random(200) < 0.8
    worse = correct & (np.random.default_rng(2).random(200) < 0.9)
    return {
        name: write_run(tmp_path / name, [classification("glue/sst2", golds, correct_to_predictions(golds, values))], model=name)
        for name, values in (("release", correct), ("candidate", worse), ("next", correct))
    }


@pytest.fixture
def policy(tmp_path) -> Path:
    path = tmp_path / "gates.yaml"
    path.write_text(POLICY)
    return path


def test_bless_to_a_folder_and_gate_against_name_at_store(tmp_path, runs, policy, cli):
    store = tmp_path / "store"
    result = cli("bless", str(runs["release"]), "--as", "release-1.0", "--store", str(store), "--who", "ci-bot")
    assert result.returncode == 0, result.stderr
    provenance = json.loads((store / "release-1.0" / "provenance.json").read_text())
    assert provenance["blessed_by"] == "ci-bot" and provenance["source"] == str(runs["release"].resolve())
    samples = json.loads((runs["release"] / "results.json").read_text())["tasks"]["glue/sst2"]["samples"]
    assert set(provenance["files"]) == {"results.json", samples}
    assert provenance["run_id"] == "release-run" and provenance["blessed_at"]
    output = tmp_path / "gate.json"
    result = cli("gate", "--candidate", str(runs["candidate"]), "--baseline", f"release-1.0@{store}", "--policy", str(policy), "--output", str(output))
    assert result.returncode in (0, 1), result.stderr
    baseline = json.loads(output.read_text())["baseline"]
    assert baseline["path"] == f"release-1.0@{store}" and baseline["provenance"]["record_sha256"] == provenance["record_sha256"]


def test_reblessing_a_name_needs_replace_and_keeps_the_previous_run(tmp_path, runs):
    store = str(tmp_path / "store")
    first = bless(runs["release"], name="last-release", store=store)
    with pytest.raises(UsageError, match="'last-release' is already blessed; pass --replace"):
        bless(runs["next"], name="last-release", store=store)
    second = bless(runs["next"], name="last-release", store=store, replace=True)
    assert second.provenance["model"] == "next" and second.superseded is not None
    kept = json.loads((Path(second.superseded) / "provenance.json").read_text())
    assert kept["record_sha256"] == first.provenance["record_sha256"]
    assert resolve_run(f"last-release@{store}", workdir=tmp_path / "w").provenance["model"] == "next"


def test_a_copy_changed_after_blessing_is_refused(tmp_path, runs, policy, cli):
    store = tmp_path / "store"
    bless(runs["release"], name="v1", store=str(store))
    record = json.loads((store / "v1" / "results.json").read_text())
    samples = store / "v1" / record["tasks"]["glue/sst2"]["samples"]
    samples.write_text(samples.read_text().replace('"prediction": "positive"', '"prediction": "negative"', 1))
    result = cli("gate", "--candidate", str(runs["candidate"]), "--baseline", f"v1@{store}", "--policy", str(policy))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{samples.name}: SHA-256" in result.stderr and "changed after blessing" in result.stderr


def test_memory_filesystem_round_trip_through_the_gate(tmp_path, runs, policy, capsys):
    store = "memory://evalharness-test-baselines"
    try:
        blessed = bless(runs["release"], name="rc", store=store)
        assert fsspec.filesystem("memory").exists("/evalharness-test-baselines/rc/provenance.json")
        code = main(["gate", "--candidate", str(runs["candidate"]), "--baseline", f"rc@{store}", "--policy", str(policy), "--json"])
        assert code in (0, 1)
        report = json.loads(capsys.readouterr().out)
        assert report["baseline"]["provenance"]["record_sha256"] == blessed.provenance["record_sha256"]
        # A plain URL of a run works too (here the blessed copy itself).
        resolved = resolve_run(f"{store}/rc", workdir=tmp_path / "plain")
        assert (resolved.path / "results.json").is_file() and resolved.provenance is not None
    finally:
        fsspec.filesystem("memory").rm("/evalharness-test-baselines", recursive=True)


def test_unblessed_run_by_url_is_fetched_and_checked_whole(tmp_path, runs):
    resolved = resolve_run(runs["release"].as_uri(), workdir=tmp_path / "w")
    samples = json.loads((runs["release"] / "results.json").read_text())["tasks"]["glue/sst2"]["samples"]
    assert resolved.provenance is None and (resolved.path / samples).read_bytes() == (runs["release"] / samples).read_bytes()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "results.json").write_text((runs["release"] / "results.json").read_text())
    with pytest.raises(RecordError, match="not found"):
        resolve_run(broken.as_uri(), workdir=tmp_path / "w2")


def test_missing_name_and_incomplete_runs_are_refused(tmp_path, runs, policy, cli):
    store = tmp_path / "store"
    store.mkdir()
    result = cli("gate", "--candidate", str(runs["candidate"]), "--baseline", f"nothing@{store}", "--policy", str(policy))
    assert result.returncode == 2 and f"nothing@{store}: no blessed run 'nothing'" in result.stderr
    record = json.loads((runs["next"] / "results.json").read_text())
    samples = runs["next"] / record["tasks"]["glue/sst2"]["samples"]
    samples.write_text("\n".join(samples.read_text().splitlines()[:-3]) + "\n")  # a run cut short
    result = cli("bless", str(runs["next"]), "--as", "cut", "--store", str(store))
    assert result.returncode == 2 and str(samples.name) in result.stderr and "Traceback" not in result.stderr
    assert not (store / "cut").exists()
    result = cli("bless", str(runs["release"]), "--as", "../escape", "--store", str(store))
    assert result.returncode == 2 and "a baseline name is letters" in result.stderr


def test_a_provenance_that_is_not_an_object_is_refused_naming_the_file(tmp_path, runs):
    """A provenance.json holding other JSON (an array) is refused as damaged, by the gate's
    reader and by a re-blessing that would move the run it describes."""
    store = tmp_path / "store"
    bless(runs["release"], name="v1", store=str(store))
    (store / "v1" / "provenance.json").write_text('["results.json"]')
    with pytest.raises(RecordError, match=r"v1/provenance.json: the provenance is damaged: expected an object, got an array"):
        resolve_run(f"v1@{store}", workdir=tmp_path / "w")
    with pytest.raises(RecordError, match=r"v1/provenance.json: the provenance is damaged: expected an object, got an array"):
        bless(runs["next"], name="v1", store=str(store), replace=True)
