"""Speed benchmark: evalharness against lm-evaluation-harness as whole processes, against the
PyTorch floor and transformers pipelines for encoder heads, and against the machine's matmul
peak, on local checkpoints of realistic shape and real data, in one run.

    python benchmarks/speed.py --data-dir ../shared/data --quick     # smoke run
    python benchmarks/speed.py --data-dir ../shared/data             # full workloads (hours on 2 cores)
    python benchmarks/speed.py --data-dir ../shared/data --device cuda

Builds the checkpoints (``speed_models.py``) and the peers' side venvs (``peer_envs.py``)
under ``--cache`` (default ``benchmarks/.cache``, gitignored). For each causal-LM and
generation workload (``speed_process.WORKLOADS``) it times ``evalharness run`` and
``lm_eval`` (each of ``--lm-eval-batch-sizes``; the fastest counts) as whole processes on the
same documents, interleaved and alternating who goes first per repeat, compares their
per-request answers, and runs evalharness once more with the adapters' reference layout (the
"before" of time and padding efficiency) and once from its prediction cache. Encoder heads
run in-process against the floor and pipelines (``speed_workloads.py``). The dense matmul
peak is measured before every workload (``speed_peak.py``); model FLOP utilisation is the
forward passes' FLOPs over the task's engine seconds and the median peak. Writes
``benchmarks/RESULTS.md`` and raw JSON in ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
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

import peer_envs
import speed_peak
import speed_process as sp
import speed_report
import speed_workloads as wl

HEADS = {
    "sst2_head": (200, 872),
    "qnli_head": (300, 5463),
    "squad": (60, 1000),
}  # workload -> (quick, full)


def rss_child(args: argparse.Namespace) -> None:
    """Run one evaluation and print this process's peak RSS in KiB (ru_maxrss)."""
    from evalharness.evaluation.runner import RunConfig, run_evaluation

    model, task, limit = args.rss_child
    with tempfile.TemporaryDirectory() as out:
        run_evaluation(
            RunConfig(
                model=model,
                tasks=[task],
                output=Path(out),
                data_dir=args.data_dir,
                limit=int(limit),
                batch_size=args.batch_size,
                device=args.device,
            )
        )
    print(
        json.dumps({"maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss})
    )


def measure_rss(args: argparse.Namespace, model: Path, task: str, small: int) -> dict:
    values = {}
    for limit in (small, 10 * small):
        output = subprocess.run(
            [
                sys.executable,
                __file__,
                "--rss-child",
                str(model),
                task,
                str(limit),
                "--data-dir",
                str(args.data_dir),
                "--batch-size",
                str(args.batch_size),
                "--device",
                args.device,
            ],
            check=True,
            capture_output=True,
            text=True,
            env=sp.env_for(args.threads),
        ).stdout
        values[limit] = json.loads(output.strip().splitlines()[-1])["maxrss_kib"] / 1024
    small_mb, large_mb = values[small], values[10 * small]
    return {
        "task": task,
        "small": small,
        "large": 10 * small,
        "small_mb": small_mb,
        "large_mb": large_mb,
        "growth": large_mb / small_mb - 1,
    }


def _projected(w: sp.Workload, samples: list[dict]) -> int:
    """Positions evalharness projects onto the vocabulary: the scored tokens."""
    if w.peer in ("choice", "pairs"):
        return sum(sum(row["details"]["n_tokens"]) for row in samples)
    if w.peer == "rolling":
        return sum(row["prediction"]["n_tokens"] for row in samples)
    return 0


def process_workload(ctx: dict, w: sp.Workload, n: int) -> dict:
    """evalharness and lm-eval as whole processes on the same ``n`` examples of ``w``."""
    runs = ctx["runs"] / w.key
    cache = runs / "predictions.sqlite"
    # Untimed warm-up of each side (file caches; lm-eval's datasets cache, built from the whole
    # file even for two documents); evalharness's at batch size 5 checks batch-size invariance
    # and fills the prediction cache for the hit run.
    warm = sp.eh_process(ctx, w, runs / "warm-b5", limit=n, batch_size=5, cache=cache)
    include, task = sp.write_peer_task(ctx, w, warm["samples"])
    sizes = ctx["lm_eval_batch_sizes"]
    sp.lm_eval_process(
        ctx, w, include, task, runs / "lm-warm", batch_size=sizes[0], limit=2
    )
    seconds: dict[str, list[float]] = {
        "evalharness": [],
        **{f"lm_eval@{b}": [] for b in sizes},
    }
    ours: dict = {}
    peer: dict[int, dict] = {}
    task_seconds: list[float] = []
    engine_seconds: list[float] = []
    for repeat in range(ctx["repeats"]):
        order = [("evalharness", 0)] + [("lm_eval", b) for b in sizes]
        for side, batch in order if repeat % 2 == 0 else order[::-1]:
            if side == "evalharness":
                ours = sp.eh_process(ctx, w, runs / f"eh-{repeat}", limit=n)
                seconds["evalharness"].append(ours["seconds"])
                task_seconds.append(ours["task_seconds"])
                engine_seconds.append(ours["execution"]["seconds"])
            else:
                peer[batch] = sp.lm_eval_process(
                    ctx,
                    w,
                    include,
                    task,
                    runs / f"lm-{batch}-{repeat}",
                    batch_size=batch,
                )
                seconds[f"lm_eval@{batch}"].append(peer[batch]["seconds"])
    best = min(sizes, key=lambda b: statistics.median(seconds[f"lm_eval@{b}"]))
    reference = sp.eh_process(ctx, w, runs / "reference", limit=n, reference=True)
    hit = sp.eh_process(ctx, w, runs / "cache-hit", limit=n, cache=cache)
    values = sp.eh_values(w, ours["samples"])
    result = {
        "name": w.name,
        "kind": "process",
        "peer": w.peer,
        "n": len(ours["samples"]),
        "task": w.task,
        "model": w.model,
        "seconds": seconds,
        "lm_eval_batch_size": best,
        "task_seconds": statistics.median(task_seconds),
        "engine_seconds": statistics.median(engine_seconds),
        "execution": ours["execution"],
        "layout": ours["notes"].get("layout"),
        "metrics": ours["metrics"],
        "peer_metrics": peer[best]["metrics"],
        "reference": {
            "seconds": reference["seconds"],
            "task_seconds": reference["task_seconds"],
            "execution": reference["execution"],
            "max_diff": _diff(w, values, sp.eh_values(w, reference["samples"])),
            "rel_diff": _diff(
                w, values, sp.eh_values(w, reference["samples"]), relative=True
            ),
        },
        "batch_size_max_diff": _diff(w, sp.eh_values(w, warm["samples"]), values),
        "batch_size_rel_diff": _diff(
            w, sp.eh_values(w, warm["samples"]), values, relative=True
        ),
        "peer_max_diff": _diff(w, values, peer[best]["values"]),
        "peer_rel_diff": _diff(w, values, peer[best]["values"], relative=True),
        # the hit run reads what the batch-size-5 warm-up stored
        "cache": {
            "miss_task_seconds": statistics.median(task_seconds),
            "hit_task_seconds": hit["task_seconds"],
            "hits": hit["execution"].get("cache", {}).get("hits"),
            "max_diff": _diff(
                w, sp.eh_values(w, warm["samples"]), sp.eh_values(w, hit["samples"])
            ),
        },
        "projected": _projected(w, ours["samples"]),
        "params": ctx["params"][w.model],
        "notes": list(w.notes),
    }
    if w.peer == "rolling":
        result["words"] = sum(sp.words(row["gold"]) for row in ours["samples"])
    if w.peer == "generate":
        result["throughput"] = wl.generation_throughput(
            ctx, ctx["models"][w.model], [row["input"] for row in ours["samples"]], 64
        )
    return result


def _diff(w: sp.Workload, a: list, b: list, *, relative: bool = False) -> float:
    """Largest difference between per-request answers, absolute or relative to ``1 + |b|``
    (texts: how many differ)."""
    if w.peer == "generate":
        return float(
            sum(str(x).strip() != str(y).strip() for x, y in zip(a, b, strict=True))
        )
    if relative:
        return max(
            (abs(x - y) / (1 + abs(y)) for x, y in zip(a, b, strict=True)), default=0.0
        )
    return wl.max_diff(a, b)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, default=HERE.parent.parent / "shared" / "data"
    )
    parser.add_argument("--cache", type=Path, default=HERE / ".cache")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small slices of every workload (smoke run)",
    )
    parser.add_argument(
        "--max-examples",
        type=int,
        help="cap every workload's examples (a run that must fit a time budget)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--lm-eval-batch-sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[32, 64],
        help="lm-eval is timed at each; the fastest counts (its best batch setting)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads on every side (OMP_NUM_THREADS; default: one per core)",
    )
    parser.add_argument(
        "--workloads", type=lambda s: s.split(","), default=[*sp.WORKLOADS, *HEADS]
    )
    parser.add_argument(
        "--no-pipelines", action="store_true", help="skip the QA pipeline venv"
    )
    parser.add_argument(
        "--no-rss", action="store_true", help="skip the peak-RSS subprocesses"
    )
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--rss-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = sorted(set(args.workloads) - {*sp.WORKLOADS, *HEADS})
    if unknown:
        parser.error(
            f"unknown workloads {unknown}; known: {', '.join([*sp.WORKLOADS, *HEADS])}"
        )
    if args.rss_child:
        rss_child(args)
        return 0

    import torch
    from speed_models import build_all

    if args.threads:
        torch.set_num_threads(args.threads)
    args.cache = args.cache.resolve()
    runs = args.cache / "runs" / datetime.now().strftime("%Y%m%d-%H%M%S")
    runs.mkdir(parents=True, exist_ok=True)
    dtype = (
        "bfloat16"
        if args.device.startswith("cuda") and torch.cuda.is_bf16_supported()
        else "float32"
    )
    models = build_all(args.cache, args.data_dir)
    ctx = {
        "data_dir": args.data_dir.resolve(),
        "cache": args.cache,
        "device": args.device,
        "dtype": dtype,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "runs": runs,
        "threads": torch.get_num_threads(),
        "lm_eval_batch_sizes": args.lm_eval_batch_sizes,
        "invariance_n": 64 if args.quick else 256,
        "models": models,
        "gen_repeats": 1,
        "threads_arg": args.threads,
    }
    ctx["params"] = {
        role: speed_peak.parameter_counts(
            wl.load_hf(models[role], auto, "cpu", "float32")[0]
        )
        for role, auto in (
            ("causal", "AutoModelForCausalLM"),
            ("t5", "AutoModelForSeq2SeqLM"),
        )
    }
    if any(key in sp.WORKLOADS for key in args.workloads):
        ctx["lm_eval_python"] = peer_envs.peer_python(args.cache, "lm-eval")
        ctx["paragraph_task"] = sp.paragraph_task(ctx)
    if "squad" in args.workloads and not args.no_pipelines:
        ctx["qa_ref_python"] = peer_envs.peer_python(args.cache, "qa-ref")
    heads = {
        "sst2_head": lambda n: wl.classification(ctx, "sst2", "glue/sst2", n),
        "qnli_head": lambda n: wl.classification(ctx, "qnli", "glue/qnli", n),
        "squad": lambda n: wl.qa_head(ctx, n),
    }
    started, load_start = time.time(), os.getloadavg()
    results, peaks = {}, []
    for key in args.workloads:
        load = os.getloadavg()[0]
        peaks.append(speed_peak.matmul_peak(args.device, dtype))
        print(
            f"[speed] {key} (matmul peak {peaks[-1]['flops'] / 1e9:.0f} GFLOP/s) ...",
            file=sys.stderr,
            flush=True,
        )
        sizes = sp.WORKLOADS[key].sizes if key in sp.WORKLOADS else HEADS[key]
        n = min(sizes[0] if args.quick else sizes[1], args.max_examples or sys.maxsize)
        if key in sp.WORKLOADS:
            results[key] = process_workload(ctx, sp.WORKLOADS[key], n)
        else:
            results[key] = heads[key](n)
            results[key]["kind"] = "in-process"
        results[key]["load_average"] = [
            load,
            os.getloadavg()[0],
        ]  # 1-minute load before and after: other processes' noise
    peaks.append(speed_peak.matmul_peak(args.device, dtype))
    print("[speed] peak RSS ...", file=sys.stderr, flush=True)
    rss = (
        []
        if args.no_rss
        else [
            measure_rss(args, models["qnli"], "glue/qnli", 100 if args.quick else 500)
        ]
    )
    if not args.quick and not args.no_rss:
        rss.append(measure_rss(args, models["causal"], "lm/wikitext2", 6))
    meta = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(),
        "torch_threads": ctx["threads"],
        "device": args.device,
        "dtype": dtype,
        "gpu": torch.cuda.get_device_name(0)
        if args.device.startswith("cuda")
        else None,
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": version("transformers"),
            "evalharness": "checkout",
            "lm_eval": _peer_version(ctx),
        },
        "command": shlex.join(["python", "benchmarks/speed.py", *sys.argv[1:]]),
        "quick": args.quick,
        "max_examples": args.max_examples,
        "repeats": args.repeats,
        "batch_size": args.batch_size,
        "lm_eval_batch_sizes": args.lm_eval_batch_sizes,
        "minutes": round((time.time() - started) / 60, 1),
        "peaks": peaks,
        "peak_flops": statistics.median(p["flops"] for p in peaks),
    }
    for result in results.values():
        for bulky in ("sources", "predictions", "values"):
            result.pop(bulky, None)
    raw = {"meta": meta, "results": results, "rss": rss}
    (HERE / "results").mkdir(exist_ok=True)
    stem = ("speed" if args.output.name == "RESULTS.md" else args.output.stem) + (
        "_quick" if args.quick else ""
    )
    (HERE / "results" / f"{stem}.json").write_text(
        json.dumps(raw, indent=2, default=str) + "\n"
    )
    args.output.write_text(speed_report.render(raw), encoding="utf-8")
    print(f"[speed] wrote {args.output}", file=sys.stderr)
    return 0


def _peer_version(ctx: dict) -> str | None:
    python = ctx.get("lm_eval_python")
    if python is None:
        return None
    return subprocess.run(
        [
            str(python),
            "-c",
            "from importlib.metadata import version; print(version('lm_eval'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
