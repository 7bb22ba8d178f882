"""How much wider SQuAD intervals get when questions on one paragraph are not treated as
independent.

    python benchmarks/clustered_squad.py [--data-dir ../shared/data] [--seed 12345]

Reads the SQuAD v2.0 dev set reconstructed from the official explorer pages and the
published dev predictions of two leaderboard systems (shared/data/squad, see its
MANIFEST.md), scores every question with evalharness's official-script exact match and F1,
and prints, for each system's mean and for the paired difference between the two systems,
the 95% interval width treating questions as independent (t interval; paired t) and
clustered by paragraph and by article (CR1 cluster-robust t interval with G - 1 df), plus
the example and paragraph-cluster bootstrap of the paired F1 difference.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evalharness.inference import cluster_robust_mean, paired_bootstrap_difference, paired_difference  # noqa: E402
from evalharness.metrics import build_metric  # noqa: E402
from evalharness.stats import Scorer  # noqa: E402

DEV = "squad/dev_reconstructed_from_explorer_html/dev-v2.0.from_explorer_html.json"
PREDICTIONS = "squad/explorer_dev_predictions/v2.0/{}.json"
SYSTEMS = ("BERT_single_GoogleAI", "nlnet_single_MSRA")


def load(data_dir: Path) -> tuple[list[str], list[list[str]], list[str], list[str]]:
    """Question ids, gold answer lists, paragraph ids and article titles, in dev-set order."""
    document = json.loads((data_dir / DEV).read_text(encoding="utf-8"))
    ids, answers, paragraphs, articles = [], [], [], []
    for article in document["data"]:
        for number, paragraph in enumerate(article["paragraphs"]):
            for qa in paragraph["qas"]:
                ids.append(qa["id"])
                answers.append([answer["text"] for answer in qa["answers"]])
                paragraphs.append(f"{article['title']}#{number}")
                articles.append(article["title"])
    return ids, answers, paragraphs, articles


def statistics(data_dir: Path, system: str, ids: list[str], answers: list[list[str]], metric_name: str) -> np.ndarray:
    predictions = json.loads((data_dir / PREDICTIONS.format(system)).read_text(encoding="utf-8"))
    missing = [i for i in ids if i not in predictions]
    if missing:
        raise SystemExit(f"{system}: {len(missing)} dev questions have no prediction (e.g. {missing[0]})")
    return build_metric(metric_name).example_stats([predictions[i] for i in ids], answers)


def row(label: str, naive: float, clustered: dict[str, tuple[float, int]]) -> str:
    parts = [f"{label:<34} naive {naive:6.3f}"]
    for name, (width, groups) in clustered.items():
        parts.append(f"by {name} ({groups}) {width:6.3f} (x{width / naive:.2f})")
    return " | ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    if not (args.data_dir / DEV).is_file():
        raise SystemExit(f"SQuAD v2.0 dev data not found under {args.data_dir}")
    ids, answers, paragraphs, articles = load(args.data_dir)
    levels = {"paragraph": paragraphs, "article": articles}
    print(f"SQuAD v2.0 dev: {len(ids)} questions, {len(set(paragraphs))} paragraphs, {len(set(articles))} articles")
    print("95% interval widths (points); naive = questions independent; clustered = CR1 cluster-robust t, G - 1 df\n")
    for metric_name in ("squad_exact", "squad_f1"):
        stats = {system: statistics(args.data_dir, system, ids, answers, metric_name) for system in SYSTEMS}
        scores = {system: 100 * value[:, 0] for system, value in stats.items()}
        for system in SYSTEMS:
            naive = cluster_robust_mean(scores[system], np.arange(len(ids)))  # one question per cluster: the plain t interval
            clustered = {}
            for name, clusters in levels.items():
                estimate = cluster_robust_mean(scores[system], clusters)
                clustered[name] = (estimate.width, estimate.clusters)
            print(row(f"{metric_name} {system}", naive.high - naive.low, clustered) + f"  [mean {scores[system].mean():.3f}]")
        candidate, baseline = (scores[s] for s in SYSTEMS)
        naive = paired_difference(candidate, baseline, bounds=(0.0, 100.0))
        clustered = {}
        for name, clusters in levels.items():
            estimate = paired_difference(candidate, baseline, bounds=(0.0, 100.0), clusters=clusters)
            clustered[name] = (estimate.width, estimate.clusters)
        print(row(f"{metric_name} paired difference", naive.width, clustered) + f"  [{SYSTEMS[0]} - {SYSTEMS[1]} = {naive.estimate:.3f}]")
        metric = build_metric(metric_name)
        scorer = Scorer(metric.aggregate, metric.aggregate_sums)
        cand_stats, base_stats = (stats[s] for s in SYSTEMS)
        example = paired_bootstrap_difference(cand_stats, base_stats, scorer, rng=np.random.default_rng(args.seed), n_resamples=args.resamples)
        cluster = paired_bootstrap_difference(
            cand_stats, base_stats, scorer, rng=np.random.default_rng(args.seed), n_resamples=args.resamples, clusters=paragraphs
        )
        print(
            f"{metric_name + ' paired bootstrap':<34} examples {example.width:6.3f} | by paragraph ({cluster.clusters}) "
            f"{cluster.width:6.3f} (x{cluster.width / example.width:.2f})  [B={args.resamples}, seed {args.seed}]\n"
        )


if __name__ == "__main__":
    main()
