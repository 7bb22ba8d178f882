"""Golden: ``evalharness score`` on the official WMT system outputs reproduces the official
automatic scores.

Provenance: ``wmt21/scores/automatic-scores.tsv`` (wmt-conference/wmt21-news-systems @
f41750d) and ``wmt23/scores/automatic-scores.tsv`` (wmt-conference/wmt23-news-systems @
99b5b9d), computed by WMT with sacrebleu 2.2.1 defaults (``autoWMT23.tex`` states the
signatures ``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.2.1`` and
``nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.2.1``). We run sacrebleu 2.6.0;
BLEU, chrF, the 13a tokenizer and multi-reference handling did not change between them, and
every score is reproduced to the last printed digit (exact float equality), single-reference
(WMT21 ``bleu-A``, WMT23 ``bleu-refA``) and multi-reference (``bleu-all``, ``chrf-all``).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from evalharness.records.record import load_record
from tests.inprocess import main  # noqa: F401 - pytest fixture
from tests.wmt_runs import WMT, scored_runs, system_outputs

pytestmark = pytest.mark.shared_data

# task -> the official metric name of each of our result keys (folders and pairs: tests/wmt_runs.py)
_WMT21 = {"bleu": "bleu-all", "chrf": "chrf-all", "bleu-refA": "bleu-A", "chrf-refA": "chrf-A"}
_WMT23 = {"bleu": "bleu-all", "chrf": "chrf-all", "bleu-refA": "bleu-refA", "chrf-refA": "chrf-refA"}
TASKS = {"translation/wmt21_de_en": _WMT21, "translation/wmt21_en_de": _WMT21, "translation/wmt23_de_en": _WMT23, "translation/wmt23_en_de": _WMT23}


def official_scores(shared_data: Path, task: str) -> dict[str, dict[str, float]]:
    """system -> official metric -> score, from the WMT repository's TSV."""
    folder, _, pair = WMT[task]
    scores: dict[str, dict[str, float]] = {}
    with open(shared_data / folder / "scores" / "automatic-scores.tsv", encoding="utf-8", newline="") as stream:
        for row in csv.DictReader(stream, delimiter="\t"):
            if row["pair"] == pair:
                scores.setdefault(row["system"], {})[row["metric"]] = float(row["score"])
    return scores


def system_output(shared_data: Path, task: str, system: str) -> Path:
    return system_outputs(shared_data, task)[system]


def score_system(main, shared_data: Path, task: str, system: str, run_dir: Path) -> dict:
    result = main(
        "score", "--task", task, "--predictions", str(system_output(shared_data, task, system)),
        "--data-dir", str(shared_data), "--run-dir", str(run_dir / system), "--name", system, "--n-resamples", "100",
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_reproduces(printed: dict, official: dict[str, float], task: str) -> None:
    """``printed``: what ``score`` printed, or a record's values in the same shape."""
    for key, official_name in TASKS[task].items():
        assert printed["metrics"][key]["value"] == official[official_name], (task, printed["system"], key)


def record_values(record, task: str) -> dict:
    """A run record's values of ``task`` in the shape ``score`` prints them."""
    return {"system": record.model.name, "metrics": {key: {"value": entry.value} for key, entry in record.tasks[task].metrics.items()}}


@pytest.mark.parametrize(
    ("task", "system"),
    [
        ("translation/wmt21_de_en", "Borderline"),  # bleu-all 51.628, bleu-A 34.918 (MANIFEST)
        ("translation/wmt21_en_de", "Facebook-AI"),  # bleu-all 61.996 (refs A, C, D), bleu-A 31.258
        ("translation/wmt23_de_en", "ONLINE-W"),  # BLEU 51.7646, chrF 72.0679
        ("translation/wmt23_en_de", "AIRC"),  # BLEU 26.4817
    ],
)
def test_score_reproduces_the_official_wmt_scores(main, shared_data, tmp_path, task, system):
    printed = score_system(main, shared_data, task, system, tmp_path)
    assert_reproduces(printed, official_scores(shared_data, task)[system], task)
    n_refs = {"translation/wmt21_de_en": 2, "translation/wmt21_en_de": 3}.get(task, 1)
    assert f"sacrebleu:[nrefs:{n_refs}|case:mixed|eff:no|tok:13a|smooth:exp|version:" in printed["metrics"]["bleu"]["signature"]["text"]
    assert "sacrebleu:[nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:" in printed["metrics"]["chrf-refA"]["signature"]["text"]
    record = load_record(tmp_path / system)
    assert record.model.name == system and record.model.source == "predictions"
    assert record.tasks[task].metrics["bleu"].value == printed["metrics"]["bleu"]["value"]


def test_one_run_directory_per_system_across_both_directions(main, shared_data, tmp_path):
    """A leaderboard row per system: ONLINE-W's de-en and en-de outputs join one record."""
    for task in ("translation/wmt23_de_en", "translation/wmt23_en_de"):
        assert_reproduces(score_system(main, shared_data, task, "ONLINE-W", tmp_path), official_scores(shared_data, task)["ONLINE-W"], task)
    record = load_record(tmp_path / "ONLINE-W")
    assert sorted(record.tasks) == ["translation/wmt23_de_en", "translation/wmt23_en_de"]
    # MANIFEST: de-en ONLINE-W BLEU 51.7646 / chrF 72.0679; en-de ONLINE-W 47.8153 / 71.8186.
    assert round(record.tasks["translation/wmt23_de_en"].metrics["bleu"].value, 4) == 51.7646
    assert round(record.tasks["translation/wmt23_en_de"].metrics["chrf"].value, 4) == 71.8186


def test_agrees_with_the_sacrebleu_command_line(main, shared_data, tmp_path):
    """The sacrebleu CLI (``sacrebleu REF_A REF_B -i HYP -m bleu chrf``) on a multi-reference system."""
    task, system = "translation/wmt21_de_en", "Borderline"
    references = [shared_data / "wmt21" / "references" / f"newstest2021.de-en.ref.{r}.en" for r in "AB"]
    completed = subprocess.run(
        [sys.executable, "-m", "sacrebleu", *map(str, references), "-i", str(system_output(shared_data, task, system)), "-m", "bleu", "chrf", "-w", "4"],
        capture_output=True, text=True, timeout=300, check=True,
    )
    cli_bleu, cli_chrf = json.loads(completed.stdout)
    printed = score_system(main, shared_data, task, system, tmp_path)
    assert round(printed["metrics"]["bleu"]["value"], 4) == cli_bleu["score"] == 51.6283
    assert round(printed["metrics"]["chrf"]["value"], 4) == cli_chrf["score"]
    assert printed["metrics"]["bleu"]["signature"]["extras"]["sacrebleu"] == f"[{cli_bleu['signature']}]"
    assert printed["metrics"]["chrf"]["signature"]["extras"]["sacrebleu"] == f"[{cli_chrf['signature']}]"


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_official_system_is_reproduced_and_ranks_as_published(shared_data, tmp_path_factory, task):
    """All 19 + 20 WMT21 and 13 + 12 WMT23 systems, every metric, as their run records keep
    them; then a leaderboard from the run directories (one per system) ranks the systems
    exactly as the official BLEU does. The runs are scored once per session and shared with
    the site tests (``tests/wmt_runs.py``)."""
    import pandas as pd

    official = official_scores(shared_data, task)
    runs = scored_runs(shared_data, tmp_path_factory, task)
    systems = sorted(system_outputs(shared_data, task))
    assert len(systems) == {"translation/wmt21_de_en": 19, "translation/wmt21_en_de": 20}.get(task, 13 if "de_en" in task else 12)
    records = {system: load_record(runs / system) for system in systems}
    for system, record in records.items():
        assert record.model.name == system
        assert_reproduces(record_values(record, task), official[system], task)
    rows = [{"system": system, **{key: entry.value for key, entry in record.tasks[task].metrics.items()}} for system, record in records.items()]
    board = pd.DataFrame(rows).sort_values("bleu", ascending=False)
    official_order = sorted(systems, key=lambda s: -official[s]["bleu-all"])
    assert list(board["system"]) == official_order
