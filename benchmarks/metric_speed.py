"""How long translation and summarization metrics and their confidence intervals take.

    python benchmarks/metric_speed.py [--data-dir ../shared/data] [--segments 3000] [--resamples 1000]

Prints, for BLEU and chrF on ``--segments`` WMT21 en-de segments (the 1,002-segment test set
repeated; synthetic text when the shared data is absent):
- extracting sacrebleu's per-segment statistics once;
- evalharness's bootstrap interval (resample counts @ statistics, then one sacrebleu
  ``_compute_score_from_stats`` per replicate);
- sacrebleu's own ``corpus_score(n_bootstrap=...)`` (resamples statistics too);
- the naive alternative, re-scoring resampled text with ``corpus_bleu`` (measured on 10
  resamples and extrapolated).
And for ROUGE-1/2/L/Lsum on See et al.'s CNN/DailyMail outputs: evalharness against calling
``rouge_score.RougeScorer`` per example, on the same examples.
Timings are wall-clock seconds on whatever machine runs this; ratios matter more.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evalharness.metrics import build_metric  # noqa: E402
from evalharness.stats import bootstrap_interval  # noqa: E402


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def translation_corpus(data_dir: Path | None, segments: int) -> tuple[list[str], list[str]]:
    base = data_dir / "wmt21" if data_dir else None
    if base and base.is_dir():
        hyps = _lines(base / "system-outputs" / "newstest2021.en-de.hyp.Facebook-AI.de")
        refs = _lines(base / "references" / "newstest2021.en-de.ref.A.de")
    else:
        rng = np.random.default_rng(0)
        words = [f"w{i}" for i in range(2000)]
        refs = [" ".join(rng.choice(words, 25)) for _ in range(1000)]
        hyps = [" ".join(w if rng.random() < 0.6 else rng.choice(words) for w in r.split()) for r in refs]
    repeat = -(-segments // len(hyps))
    return (hyps * repeat)[:segments], (refs * repeat)[:segments]


def timed(label: str, function, *args, **kwargs):
    started = time.perf_counter()
    value = function(*args, **kwargs)
    print(f"  {label:<66} {time.perf_counter() - started:8.3f} s")
    return value


def translation(data_dir: Path | None, segments: int, resamples: int) -> None:
    import sacrebleu

    hyps, refs = translation_corpus(data_dir, segments)
    for name, corpus_metric in (("bleu", sacrebleu.corpus_bleu), ("chrf", sacrebleu.corpus_chrf)):
        print(f"{name}: {len(hyps)} segments x {resamples} resamples")
        metric = build_metric(name)
        stats = timed("per-segment statistics (sacrebleu, once)", metric.example_stats, hyps, [[r] for r in refs])
        interval = timed(
            "evalharness bootstrap (counts @ stats, sacrebleu per replicate)",
            bootstrap_interval, stats, aggregate=metric.aggregate, aggregate_sums=metric.aggregate_sums,
            rng=np.random.default_rng(0), n_resamples=resamples,
        )
        print(f"  {'':<66} value {metric.aggregate(stats):.2f}, 95% CI [{interval.low:.2f}, {interval.high:.2f}]")
        scorer = sacrebleu.BLEU() if name == "bleu" else sacrebleu.CHRF()
        timed("sacrebleu corpus_score(n_bootstrap) (text -> stats -> resamples)", scorer.corpus_score, hyps, [refs], n_bootstrap=resamples)
        rng = np.random.default_rng(0)

        def naive(n: int) -> None:
            for _ in range(n):
                index = rng.integers(0, len(hyps), len(hyps))
                corpus_metric([hyps[i] for i in index], [[refs[i] for i in index]])

        started = time.perf_counter()
        naive(10)
        per = (time.perf_counter() - started) / 10
        print(f"  {'naive: re-score resampled text (extrapolated)':<66} {per * resamples:8.1f} s")


def summarization(data_dir: Path | None, examples: int) -> None:
    folder = data_dir / "cnndm_see2017_pointer_generator" if data_dir else None
    if not folder or not folder.is_dir():
        print("rouge: shared CNN/DailyMail data not found; skipped")
        return
    from rouge_score import rouge_scorer

    def read(name: str) -> dict[str, str]:
        with tarfile.open(folder / name) as archive:
            return {m.name.rsplit("/", 1)[1][:6]: archive.extractfile(m).read().decode() for m in archive if m.isfile()}

    references, outputs = read("reference.tar.gz"), read("pointer-gen-cov.tar.gz")
    ids = sorted(references)[:examples]
    hyps, refs = [outputs[i] for i in ids], [[references[i]] for i in ids]
    print(f"rouge (pointer-gen-cov): {len(ids)} examples, stemmer on")
    total = 0.0
    for name in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        started = time.perf_counter()
        build_metric(name, {"use_stemmer": True}).example_stats(hyps, refs)
        seconds = time.perf_counter() - started
        total += seconds
        print(f"  {'evalharness ' + name:<66} {seconds:8.3f} s")
    print(f"  {'evalharness, all four':<66} {total:8.3f} s")
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    timed("rouge-score RougeScorer, all four in one scorer", lambda: [scorer.score(r[0], h) for h, r in zip(hyps, refs)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "data")
    parser.add_argument("--segments", type=int, default=3000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--rouge-examples", type=int, default=11490)
    args = parser.parse_args()
    data_dir = args.data_dir if args.data_dir.is_dir() else None
    translation(data_dir, args.segments, args.resamples)
    summarization(data_dir, args.rouge_examples)


if __name__ == "__main__":
    main()
