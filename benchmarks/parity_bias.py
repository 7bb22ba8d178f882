"""Parity of ``bias/crows_pairs`` (causal LMs) with lm-evaluation-harness ``crows_pairs_english``.

Same local checkpoint (the small GPT-2 that ``parity_lm_eval.py`` trains), same pairs (the
CrowS-Pairs CSV in ``../shared/data``), scored by ``evalharness run --tasks bias/crows_pairs``
and by lm-evaluation-harness (``lm_eval_crows_side.py`` in the peer venv that
``parity_lm_eval.py`` creates: ``HFLM.loglikelihood`` on the task's own instances, scored with
its own ``process_results``). Compared pair by pair: both log-likelihoods, the preference,
and the aggregate stereotype score (``pct_stereotype`` x100) and ``likelihood_diff``.

Usage (from the repository root): ``python benchmarks/parity_bias.py --data-dir ../shared/data``.
Results go to ``benchmarks/results/parity_bias.json``; ``benchmarks/PARITY.md`` reports them.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    from parity_lm_eval import build_parity_model, ensure_peer_venv

    from evalharness.records.record import read_samples
    from evalharness.evaluation.runner import RunConfig, run_evaluation

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None, help="first N pairs (default: all 1,508)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--work-dir", type=Path, default=REPO / ".eh-cache" / "parity")
    parser.add_argument("--venv", type=Path, default=REPO / ".eh-cache" / "parity-venv")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "parity_bias.json")
    args = parser.parse_args()

    args.work_dir.mkdir(parents=True, exist_ok=True)
    model_dir = build_parity_model(args.work_dir / "model", args.data_dir, steps=args.train_steps)
    peer_python = ensure_peer_venv(args.venv)
    with (args.data_dir / "crows_pairs" / "crows_pairs_anonymized.csv").open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))[: args.limit]
    pairs = [{"sent_more": row["sent_more"], "sent_less": row["sent_less"]} for row in rows]
    requests_path, peer_results = args.work_dir / "crows_requests.json", args.work_dir / "crows_lm_eval.json"
    requests_path.write_text(json.dumps({"model": str(model_dir), "batch_size": args.batch_size, "pairs": pairs}))
    subprocess.run([str(peer_python), str(REPO / "benchmarks" / "lm_eval_crows_side.py"), str(requests_path), str(peer_results)], check=True)
    theirs = json.loads(peer_results.read_text(encoding="utf-8"))

    with tempfile.TemporaryDirectory() as run_dir:
        record = run_evaluation(RunConfig(model=str(model_dir), tasks=["bias/crows_pairs"], data_dir=args.data_dir,
                                          output=Path(run_dir), limit=args.limit, batch_size=args.batch_size, device="cpu"))
        entry = record.record.tasks["bias/crows_pairs"]
        samples = read_samples(Path(run_dir), "bias/crows_pairs")
    ll_diffs = [max(abs(s["prediction"]["more"] - t["ll_more"]), abs(s["prediction"]["less"] - t["ll_less"]))
                for s, t in zip(samples, theirs["per_pair"], strict=True)]
    disagreements = [i for i, (s, t) in enumerate(zip(samples, theirs["per_pair"]))
                     if (s["prediction"]["more"] > s["prediction"]["less"]) != bool(t["pct_stereotype"])]
    report = {
        "n_pairs": len(samples),
        "lm_eval_version": theirs["lm_eval_version"],
        "max_abs_loglikelihood_difference": max(ll_diffs),
        "preference_disagreements": disagreements,
        "stereotype_score": {"evalharness": entry.metrics["stereotype_score"].value, "lm_eval": 100 * theirs["pct_stereotype"]},
        "likelihood_diff": {"evalharness": entry.metrics["likelihood_diff"].value, "lm_eval": theirs["likelihood_diff"]},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    same = not disagreements and max(ll_diffs) < 1e-3
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
