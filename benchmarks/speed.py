"""Speed benchmark: evalharness vs the PyTorch floor, transformers pipelines and
lm-evaluation-harness, on local tiny-but-realistic checkpoints and real data, in one run.

    python benchmarks/speed.py --data-dir ../shared/data --quick     # smoke run, minutes
    python benchmarks/speed.py --data-dir ../shared/data             # full workloads
    python benchmarks/speed.py --data-dir ../shared/data --device cuda   # adds MFU figures

Builds the checkpoints (``speed_models.py``) and the peers' side venvs (``peer_envs.py``:
lm-eval; transformers 5.2.0 for the QA pipeline) under ``--cache`` (default
``benchmarks/.cache``, gitignored), runs every workload with each path interleaved per
repeat, checks that scores agree across batch sizes, cache hit/miss and the comparison
paths, measures peak RSS at 1x and 10x examples in subprocesses, and writes
``benchmarks/RESULTS.md`` plus raw JSON in ``benchmarks/results/speed.json``. Model loading is
never timed, on any side. ``--profile`` adds cProfile tops of evalharness runs.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import peer_envs  # noqa: E402
import speed_report  # noqa: E402
import speed_workloads as wl  # noqa: E402

SIZES = {  # workload -> (quick, full)
    "sst2": (200, 872), "qnli": (300, 5463), "squad": (60, 1000), "wikitext": (6, 62),
    "crows": (200, 1508), "wmt": (24, 200), "cnn": (8, 100),
}
WORKLOADS = list(SIZES)
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}  # dense bf16


def rss_child(args: argparse.Namespace) -> None:
    """Run one evaluation and print this process's peak RSS in KiB (ru_maxrss)."""
    from evalharness.evaluation.runner import RunConfig, run_evaluation

    model, task, limit = args.rss_child
    with tempfile.TemporaryDirectory() as out:
        run_evaluation(RunConfig(model=model, tasks=[task], output=Path(out), data_dir=args.data_dir, limit=int(limit),
                                 batch_size=args.batch_size, device=args.device))
    print(json.dumps({"maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def measure_rss(args: argparse.Namespace, model: Path, task: str, small: int) -> dict:
    values = {}
    for limit in (small, 10 * small):
        output = subprocess.run([sys.executable, __file__, "--rss-child", str(model), task, str(limit), "--data-dir", str(args.data_dir),
                                 "--batch-size", str(args.batch_size), "--device", args.device],
                                check=True, capture_output=True, text=True).stdout
        values[limit] = json.loads(output.strip().splitlines()[-1])["maxrss_kib"] / 1024
    small_mb, large_mb = values[small], values[10 * small]
    return {"task": task, "small": small, "large": 10 * small, "small_mb": small_mb, "large_mb": large_mb, "growth": large_mb / small_mb - 1}


def profile_run(ctx: dict, model: Path, task: str, limit: int, path: Path) -> list[str]:
    profiler = cProfile.Profile()
    profiler.enable()
    wl.eh_run(ctx, model, task, wl.new_dir(ctx, "profile"), limit=limit, batch_size=ctx["batch_size"])
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).strip_dirs()
    stats.sort_stats("tottime").print_stats(25)
    text.write("\n\n=== by cumulative time ===\n")
    stats.sort_stats("cumulative").print_stats(40)
    path.write_text(text.getvalue(), encoding="utf-8")
    return [line for line in text.getvalue().splitlines() if line.strip()][:40]


def run_lm_eval(args: argparse.Namespace, ctx: dict, results: dict, sizes: dict) -> dict:
    """All lm-eval jobs in one subprocess of its venv; for each, its best batch size."""
    python = peer_envs.peer_python(args.cache, "lm-eval")
    causal, t5 = str(ctx["models"]["causal"]), str(ctx["models"]["t5"])
    jobs = []
    for batch_size in args.lm_eval_batch_sizes:
        if "crows" in results:
            pairs = [["", s] for pair in wl.crows_pairs(args.data_dir, sizes["crows"]) for s in pair]
            jobs.append({"name": "crows", "kind": "loglikelihood", "model": causal, "batch_size": batch_size, "pairs": pairs, "max_length": 512})
        if "wikitext" in results:
            docs = wl.wikitext_documents(args.data_dir / "wikitext-2/wiki.test.tokens.txt")[: sizes["wikitext"]]
            jobs.append({"name": "wikitext", "kind": "rolling", "model": causal, "batch_size": batch_size, "documents": docs, "max_length": 512})
        for key in ("wmt", "cnn"):
            if key in results:
                jobs.append({"name": key, "kind": "generate", "model": t5, "backend": "seq2seq", "batch_size": batch_size,
                             "prompts": results[key]["sources"], "until": ["\n\n\n"], "max_length": 512,
                             "max_new_tokens": args.max_new_tokens[key]})
    folder = Path(tempfile.mkdtemp(prefix="lm-eval-", dir=ctx["runs"]))
    (folder / "request.json").write_text(json.dumps({"jobs": jobs, "repeats": args.repeats, "device": args.device, "dtype": ctx["dtype"]}))
    env = {**os.environ, "PYTHONPATH": "", "OMP_NUM_THREADS": str(ctx["threads"])}
    subprocess.run([str(python), str(HERE / "speed_lm_eval_side.py"), str(folder / "request.json"), str(folder / "result.json")], check=True, env=env)
    raw = json.loads((folder / "result.json").read_text())
    best: dict = {"version": raw["lm_eval_version"]}
    for run in raw["runs"].values():
        current = best.get(run["name"])
        if current is None or statistics.median(run["seconds"]) < statistics.median(current["seconds"]):
            best[run["name"]] = run
    return best


def attach_lm_eval(results: dict, peer: dict) -> None:
    import math

    if "crows" in results and "crows" in peer:
        r, p = results["crows"], peer["crows"]
        n = r["n"]
        r["seconds"]["lm_eval"], r["lm_eval_batch_size"] = p["seconds"], p["batch_size"]
        r["scores"]["lm_eval"] = 100 * sum(p["values"][2 * i] > p["values"][2 * i + 1] for i in range(n)) / n
        r["request_max_diff"]["lm_eval"] = wl.max_diff(r["values"]["evalharness"], p["values"])
    if "wikitext" in results and "wikitext" in peer:
        r, p = results["wikitext"], peer["wikitext"]
        r["seconds"]["lm_eval"], r["lm_eval_batch_size"] = p["seconds"], p["batch_size"]
        r["scores"]["lm_eval"] = math.exp(-math.fsum(p["values"]) / r["words"])
        r["doc_max_diff"] = {"lm_eval_vs_floor": wl.max_diff(r["values"]["floor"], p["values"])}
    for key in ("wmt", "cnn"):
        if key in results and key in peer:
            r, p = results[key], peer[key]
            r["seconds"]["lm_eval"], r["lm_eval_batch_size"] = p["seconds"], p["batch_size"]
            r["disagreements"]["lm_eval"] = sum(a.strip() != b.strip() for a, b in zip(r["predictions"], p["values"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=HERE / ".cache")
    parser.add_argument("--quick", action="store_true", help="small slices of every workload (smoke run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gen-repeats", type=int, default=1, help="repeats of the generation workloads")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lm-eval-batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[32],
                        help="lm-eval is timed at each; the fastest counts (its best batch setting)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workloads", type=lambda s: s.split(","), default=WORKLOADS)
    parser.add_argument("--no-peers", action="store_true", help="skip lm-eval and the QA pipeline venvs")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses")
    parser.add_argument("--profile", action="store_true", help="cProfile evalharness on qnli, wikitext")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--rss-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args)
        return 0

    import torch

    from speed_models import build_all

    sizes = {k: v[0] if args.quick else v[1] for k, v in SIZES.items()}
    args.max_new_tokens = {"wmt": 64, "cnn": 64}
    args.cache.mkdir(parents=True, exist_ok=True)
    runs = args.cache / "runs"
    runs.mkdir(exist_ok=True)
    dtype = "bfloat16" if args.device.startswith("cuda") and torch.cuda.is_bf16_supported() else "float32"
    ctx = {"data_dir": args.data_dir, "device": args.device, "dtype": dtype, "batch_size": args.batch_size, "repeats": args.repeats,
           "gen_repeats": args.gen_repeats, "runs": runs, "threads": torch.get_num_threads(),
           "invariance_n": 64 if args.quick else 256, "models": build_all(args.cache, args.data_dir)}
    if not args.no_peers and "squad" in args.workloads:
        ctx["qa_ref_python"] = peer_envs.peer_python(args.cache, "qa-ref")
    started = time.time()
    calls = {
        "sst2": lambda: wl.classification(ctx, "sst2", "glue/sst2", sizes["sst2"]),
        "qnli": lambda: wl.classification(ctx, "qnli", "glue/qnli", sizes["qnli"]),
        "squad": lambda: wl.qa_head(ctx, sizes["squad"]),
        "wikitext": lambda: wl.perplexity(ctx, sizes["wikitext"]),
        "crows": lambda: wl.crows(ctx, sizes["crows"]),
        "wmt": lambda: wl.generation(ctx, "wmt", "translation/wmt21_de_en", sizes["wmt"], args.max_new_tokens["wmt"]),
        "cnn": lambda: wl.generation(ctx, "cnn", "summarization/cnn_dailymail", sizes["cnn"], args.max_new_tokens["cnn"]),
    }
    results = {}
    for key in args.workloads:
        print(f"[speed] {key} ...", file=sys.stderr, flush=True)
        results[key] = calls[key]()
    peer_version = None
    if not args.no_peers:
        print("[speed] lm-evaluation-harness ...", file=sys.stderr, flush=True)
        peer = run_lm_eval(args, ctx, results, sizes)
        peer_version = peer.pop("version")
        attach_lm_eval(results, peer)
    print("[speed] peak RSS ...", file=sys.stderr, flush=True)
    # The small size fills several batches, so the comparison isolates what the data adds.
    rss = [] if args.no_rss else [measure_rss(args, ctx["models"]["qnli"], "glue/qnli", 100 if args.quick else 500)]
    if not args.quick and not args.no_rss:
        rss.append(measure_rss(args, ctx["models"]["causal"], "lm/wikitext2", 6))
    profiles = {}
    if args.profile:
        for key, model, task, limit in (("qnli", "qnli", "glue/qnli", sizes["qnli"]), ("wikitext", "causal", "lm/wikitext2", sizes["wikitext"])):
            print(f"[speed] profiling {task} ...", file=sys.stderr, flush=True)
            profiles[key] = profile_run(ctx, ctx["models"][model], task, limit, HERE / "results" / f"speed_profile_{key}.txt")
    meta = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(), "torch_threads": ctx["threads"], "device": args.device, "dtype": dtype,
        "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "transformers": version("transformers"),
                     "evalharness": version("evalharness") if _installed("evalharness") else "checkout", "lm_eval": peer_version},
        "quick": args.quick, "repeats": args.repeats, "gen_repeats": args.gen_repeats, "batch_size": args.batch_size,
        "lm_eval_batch_sizes": args.lm_eval_batch_sizes, "minutes": round((time.time() - started) / 60, 1),
        "has_cache": "cache" in wl.run_config_fields(), "peak_tflops": _peak(args.device),
    }
    for result in results.values():
        for bulky in ("sources", "predictions", "values"):
            result.pop(bulky, None)
    raw = {"meta": meta, "results": results, "rss": rss, "profiles": profiles}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / (("speed" if args.output.name == "RESULTS.md" else args.output.stem) + ("_quick" if args.quick else "") + ".json")).write_text(json.dumps(raw, indent=2, default=str) + "\n")
    args.output.write_text(speed_report.render(raw), encoding="utf-8")
    print(f"[speed] wrote {args.output}", file=sys.stderr)
    return 0


def _installed(name: str) -> bool:
    try:
        version(name)
        return True
    except Exception:
        return False


def _peak(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    import torch

    name = torch.cuda.get_device_name(0)
    return next((value for key, value in PEAK_TFLOPS.items() if key in name), None)


if __name__ == "__main__":
    sys.exit(main())
