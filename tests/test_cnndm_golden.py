"""Golden: ``evalharness score`` on See et al.'s (2017) CNN/DailyMail test outputs.

Provenance:
- data: the official ``test_output`` release of "Get To The Point" (See et al. 2017), shared
  data ``cnndm_see2017_pointer_generator/`` (priyankmodiPM/Abstractive-Summarization @
  d404712; members byte-identical to the repository blobs): 11,490 references and the
  ``NNNNNN_decoded.txt`` outputs of three systems, lowercased and PTB-tokenized, one
  sentence per line.
- published ROUGE-1.5.5 full-length F1 (See et al. 2017, arXiv:1704.04368, Table 1; ROUGE-L
  there is computed on sentence-per-line files, i.e. rouge-score's rougeLsum).
- rouge-score 0.1.2 on the same files, Porter stemmer on (MANIFEST; its "bootstrap mid"
  approximates the mean F1 that we report to within ~0.01).

Our scores must equal rouge-score's, example by example, with the same settings, and lie
within 0.4 of the published Perl numbers (the usual tokenization difference; MANIFEST
measured ~0.3). Timing (2 CPU cores, unloaded): ~6 s per system for all four ROUGE types
on 11,490 examples, against ~48 s for rouge-score itself (benchmarks/metric_speed.py). Each
system is scored on all 11,490 examples and its corpus scores checked; rouge-score itself
runs on a third of them per system, a different third each, so across the three systems every
example index is compared once (the whole comparison, three times over, was 3 minutes of the
suite's CPU).
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from rouge_score import rouge_scorer

from evalharness.metrics.summarization import SENTENCE_SPLITS
from evalharness.records.record import read_samples
from tests.inprocess import main  # noqa: F401 - pytest fixture

pytestmark = pytest.mark.shared_data

TASK = "summarization/cnn_dailymail"
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
# R-1 / R-2 / R-L(sum), See et al. 2017, Table 1.
PUBLISHED = {
    "baseline": (31.33, 11.81, 28.83),
    "pointer-gen": (36.44, 15.66, 33.42),
    "pointer-gen-cov": (39.53, 17.28, 36.38),
}
# rouge-score 0.1.2 (stemmer on, rougeLsum, bootstrap mid F1) as stated in shared/data/MANIFEST.md.
ROUGE_SCORE_MANIFEST = {
    "baseline": (31.08, 11.77, 28.64),
    "pointer-gen": (36.18, 15.62, 33.22),
    "pointer-gen-cov": (39.26, 17.23, 36.17),
}


def read_release(path: Path) -> dict[str, str]:
    """index -> text straight from a release tarball (independent of evalharness's reader)."""
    texts = {}
    with tarfile.open(path) as archive:
        for member in archive:
            if member.isfile():
                texts[member.name.rsplit("/", 1)[1][:6]] = archive.extractfile(member).read().decode("utf-8")
    return texts


def direct_rouge(references: dict[str, str], outputs: dict[str, str], ids: list[str]) -> dict[str, list[float]]:
    """rouge-score itself: F1 x100 per example and type. ROUGE-Lsum gets the texts with the
    task's sentence rule applied ('auto': newlines kept; a text without any is split)."""
    plain = rouge_scorer.RougeScorer(list(ROUGE_TYPES[:3]), use_stemmer=True)
    lsum = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True)
    prepare = SENTENCE_SPLITS["auto"]
    scores: dict[str, list[float]] = {name: [] for name in ROUGE_TYPES}
    for index in ids:
        for name, score in plain.score(references[index], outputs[index]).items():
            scores[name].append(100 * score.fmeasure)
        scores["rougeLsum"].append(100 * lsum.score(prepare(references[index]), prepare(outputs[index]))["rougeLsum"].fmeasure)
    return scores


def score_system(main, shared_data: Path, system: str, run_dir: Path) -> dict:
    result = main(
        "score", "--task", TASK, "--data-dir", str(shared_data), "--run-dir", str(run_dir), "--name", system,
        "--predictions", str(shared_data / "cnndm_see2017_pointer_generator" / f"{system}.tar.gz"), "--n-resamples", "200",
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def check_system(main, shared_data: Path, tmp_path: Path, system: str, compared: slice) -> None:
    printed = score_system(main, shared_data, system, tmp_path / system)
    assert printed["n"] == 11490 and printed["predictions"]["format"] == "decoded_files"
    values = {name: printed["metrics"][name]["value"] for name in ROUGE_TYPES}
    for name, published, manifest in zip(("rouge1", "rouge2", "rougeLsum"), PUBLISHED[system], ROUGE_SCORE_MANIFEST[system]):
        assert abs(values[name] - published) <= 0.4, (system, name, values[name], published)
        assert abs(values[name] - manifest) <= 0.02, (system, name, values[name], manifest)
    assert values["rougeL"] < values["rougeLsum"] - 5  # summary-level LCS on sentences, not one long text
    signature = printed["metrics"]["rougeLsum"]["signature"]
    assert signature["settings"]["use_stemmer"] is True and signature["settings"]["sentence_split"] == "auto" and "splitter" in signature["extras"]

    samples = read_samples(tmp_path / system, TASK)[compared]
    ids = [row["id"] for row in samples]
    references = read_release(shared_data / "cnndm_see2017_pointer_generator" / "reference.tar.gz")
    outputs = read_release(shared_data / "cnndm_see2017_pointer_generator" / f"{system}.tar.gz")
    expected = direct_rouge(references, outputs, ids)
    for name in ROUGE_TYPES:
        ours = [row["scores"][name] for row in samples]
        assert ours == expected[name], (system, name)


@pytest.mark.slow
@pytest.mark.parametrize("offset", range(len(PUBLISHED)), ids=sorted(PUBLISHED))
def test_every_see_et_al_system_matches_rouge_score_and_the_paper(main, shared_data, tmp_path, offset):
    """All 11,490 examples of each system scored (corpus scores against the paper and rouge-score's
    published run); every third example, from a different offset per system, equal to
    rouge-score's example by example, so every example index is compared once."""
    check_system(main, shared_data, tmp_path, sorted(PUBLISHED)[offset], slice(offset, None, len(PUBLISHED)))
