"""``compare`` on real WMT21 system outputs agrees with sacrebleu's own significance tests.

Golden reference: sacrebleu 2.x ``significance.PairedTest`` (``test_type="bs"``, 1000
resamples, and ``"ar"``, 10000 trials) with its default seed 12345, on the same hypotheses
and references (``../shared/data/wmt21``, newstest2021 as released by WMT). Our run records
are written through the normal scoring path, then compared from their samples files only.

BLEU is the registry's ``bleu`` (sacrebleu's per-segment statistics, summed).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from run_factory import GENERATION_TASK, TaskRun, write_run

from evalharness.comparison.compare import CompareSettings, compare_runs
from evalharness.metrics.registry import METRICS
from evalharness.types import Example

pytestmark = pytest.mark.shared_data


@pytest.fixture
def bleu_registered(monkeypatch):
    monkeypatch.delenv("SACREBLEU_SEED", raising=False)  # sacrebleu's default seed 12345
    assert "bleu" in METRICS


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _system_run(tmp_path: Path, wmt: Path, pair: str, system: str, refs: list[str]) -> tuple[Path, list[str], list[list[str]]]:
    source, target = pair.split("-")
    hyps = _lines(wmt / "system-outputs" / f"newstest2021.{pair}.hyp.{system}.{target}")
    streams = [_lines(wmt / "references" / f"newstest2021.{pair}.ref.{ref}.{target}") for ref in refs]
    sources = _lines(wmt / "sources" / f"newstest2021.{pair}.src.{source}")
    examples = [
        Example(id=str(i), fields={"source": src, "references": [stream[i] for stream in streams]}) for i, src in enumerate(sources)
    ]
    run = write_run(tmp_path / system, [TaskRun(f"wmt21/{pair}", GENERATION_TASK, examples, hyps)], model=system)
    return run, hyps, streams


def _published_bleu(wmt: Path, pair: str, system: str, column: str) -> float:
    with (wmt / "scores" / "automatic-scores.tsv").open(encoding="utf-8") as stream:
        for row in csv.DictReader(stream, delimiter="\t"):
            if (row["pair"], row["system"], row["metric"]) == (pair, system, column):
                return float(row["score"])
    raise LookupError(f"{pair} {system} {column}")


CASES = [
    # pair, refs, published column, baseline, system
    ("en-de", ["A"], "bleu-A", "Facebook-AI", "VolcTrans-GLAT"),
    ("en-de", ["A"], "bleu-A", "Online-A", "Online-B"),
    ("en-de", ["A"], "bleu-A", "UEdin", "Facebook-AI"),
    ("de-en", ["A", "B"], "bleu-all", "Borderline", "Online-W"),
]


@pytest.mark.parametrize("pair, refs, column, baseline, system", CASES)
def test_paired_bootstrap_agrees_with_sacrebleu(tmp_path, shared_data, bleu_registered, pair, refs, column, baseline, system):
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    wmt = shared_data / "wmt21"
    run_a, hyps_a, streams = _system_run(tmp_path, wmt, pair, baseline, refs)
    run_b, hyps_b, _ = _system_run(tmp_path, wmt, pair, system, refs)

    bootstrap = compare_runs(run_a, run_b, settings=CompareSettings(bootstrap_pvalue="sacrebleu")).get(f"wmt21/{pair}", "bleu")
    _, bs = PairedTest([(baseline, hyps_a), (system, hyps_b)], {"BLEU": BLEU()}, streams, test_type="bs", n_samples=1000)()

    # The corpus scores are sacrebleu's and the published WMT21 numbers.
    assert bootstrap.value_a == pytest.approx(bs["BLEU"][0].score, abs=1e-9)
    assert bootstrap.value_b == pytest.approx(bs["BLEU"][1].score, abs=1e-9)
    assert bootstrap.value_a == pytest.approx(_published_bleu(wmt, pair, baseline, column), abs=1e-6)
    # Same resampling, same seed, same p-value definition: the same p-value, exactly.
    assert bootstrap.test == "paired-bootstrap" and bootstrap.n == len(hyps_a)
    assert bootstrap.p_value == bs["BLEU"][1].p_value
    # sacrebleu's bootstrap CI of B's score (mean +- half-width of the 95% range) brackets
    # B's value as our CI of the difference brackets the observed difference.
    assert bootstrap.ci[0] <= bootstrap.difference <= bootstrap.ci[1]
    assert abs(bs["BLEU"][1].mean - bootstrap.value_b) < bs["BLEU"][1].ci


@pytest.mark.parametrize("baseline, system", [("Facebook-AI", "VolcTrans-GLAT"), ("Online-A", "Online-B")])
def test_approximate_randomization_agrees_with_sacrebleu(tmp_path, shared_data, bleu_registered, baseline, system):
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    wmt = shared_data / "wmt21"
    run_a, hyps_a, streams = _system_run(tmp_path, wmt, "en-de", baseline, ["A"])
    run_b, hyps_b, _ = _system_run(tmp_path, wmt, "en-de", system, ["A"])
    randomization = compare_runs(run_a, run_b, settings=CompareSettings(test="permutation")).get("wmt21/en-de", "bleu")
    _, ar = PairedTest([(baseline, hyps_a), (system, hyps_b)], {"BLEU": BLEU()}, streams, test_type="ar", n_samples=10000)()
    # Same swap draws (rng.integers(2, (R, n), dtype=bool), seed 12345), same count.
    assert randomization.test == "paired-permutation"
    assert randomization.p_value == ar["BLEU"][1].p_value


def test_default_two_sided_pvalue_on_a_clear_and_an_unclear_difference(tmp_path, shared_data, bleu_registered):
    wmt = shared_data / "wmt21"
    runs = {name: _system_run(tmp_path, wmt, "en-de", name, ["A"])[0] for name in ("UEdin", "Facebook-AI", "WeChat-AI")}
    clear = compare_runs(runs["UEdin"], runs["Facebook-AI"]).get("wmt21/en-de", "bleu")
    unclear = compare_runs(runs["WeChat-AI"], runs["Facebook-AI"]).get("wmt21/en-de", "bleu")
    # Facebook-AI is 1.36 BLEU above UEdin (no resample reverses it) and 0.06 below WeChat-AI.
    assert clear.verdict == "improved" and clear.p_value == pytest.approx(1 / 1001)
    assert unclear.verdict == "no significant change" and unclear.p_value > 0.5
