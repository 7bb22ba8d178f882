"""hf against vLLM on a GPU: the same workloads through the same engine, timed and compared.

    python benchmarks/gpu_backends.py --model /path/to/causal-lm [--dtype bfloat16] \
        [--prompts 512] [--max-new-tokens 128] [--batch-size auto] [--output results/gpu_backends.json]

Needs a CUDA GPU and ``pip install 'evalharness[vllm]'``; refuses clearly otherwise. Both
backends answer through :class:`evalharness.execution.engine.Engine` without a cache, so
``--batch-size auto`` gives ``hf`` its out-of-memory back-off (256 rows, halved on OOM)
and vLLM schedules each chunk itself (continuous batching). Workloads, on deterministic
synthetic English prompts of varied length:

- ``generate``: greedy generation of ``--max-new-tokens`` tokens (translation-like and
  summarization-like prompt lengths);
- ``loglikelihood``: four choices per prompt (multiple-choice scoring);
- ``loglikelihood_rolling``: whole texts, disjoint windows.

Writes seconds, requests/s and the parity of the answers (largest |Δ log-probability|,
generated texts that differ) per workload to ``--output`` and prints a table. bf16 kernels
differ between the engines, so small log-probability differences and a few differing
generations are expected; the point is to measure them.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evalharness.backends import BackendConfig, BackendRequest, load_backend
from evalharness.execution.engine import Engine, EngineStats
from evalharness.models.loading import load_model
from evalharness.types import (
    GenerationOptions,
    LoglikelihoodRequest,
    RequestKind,
    RollingOptions,
)

WORDS = ["the", "a", "report", "said", "market", "city", "council", "river", "school", "museum", "night", "train", "policy", "research", "team", "result", "water", "energy", "season", "player", "study", "model", "system", "people", "government", "company", "history", "music", "science", "language", "world"]


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def workloads(n: int, seed: int) -> dict[str, tuple[RequestKind, list, object]]:
    rng = random.Random(seed)
    translate = [f"Translate into German.\nEnglish: {sentence(rng, rng.randint(8, 40))}\nGerman:" for _ in range(n // 2)]
    summarize = [f"Article: {' '.join(sentence(rng, rng.randint(10, 30)) for _ in range(rng.randint(5, 15)))}\nSummary:" for _ in range(n - n // 2)]
    choices = [LoglikelihoodRequest(f"Question: {sentence(rng, 12)}\nAnswer:", f" {sentence(rng, rng.randint(1, 6))}") for _ in range(n * 4)]
    texts = [" ".join(sentence(rng, rng.randint(10, 30)) for _ in range(rng.randint(10, 60))) for _ in range(max(1, n // 4))]
    return {
        "generate": (RequestKind.GENERATE, translate + summarize, None),
        "loglikelihood": (RequestKind.LOGLIKELIHOOD, choices, None),
        "loglikelihood_rolling": (RequestKind.LOGLIKELIHOOD_ROLLING, texts, RollingOptions()),
    }


def run(adapter: object, kind: RequestKind, requests: list, options: object, batch_size: int | str) -> tuple[list, float, EngineStats]:
    engine = Engine(adapter, batch_size=batch_size)
    started = time.perf_counter()
    responses, stats = engine.run(kind, requests, options)
    return responses, time.perf_counter() - started, stats


def parity(a: list, b: list) -> dict[str, object]:
    if hasattr(a[0], "text"):
        differ = sum(x.text != y.text for x, y in zip(a, b))
        return {"texts_differing": differ, "share_differing": differ / len(a)}
    return {"max_abs_logprob_diff": max(abs(x.logprob - y.logprob) for x, y in zip(a, b))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a causal LM checkpoint directory")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", default="auto", help="hf rows per batch, or auto (OOM back-off)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "gpu_backends.json")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/gpu_backends.py needs a CUDA GPU (vLLM runs on GPUs only)")
    batch_size = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    options = {"generate": GenerationOptions(max_new_tokens=args.max_new_tokens, stop=("\n",))}
    loads = workloads(args.prompts, args.seed)
    results: dict[str, dict[str, object]] = {name: {} for name in loads}
    answers: dict[str, dict[str, list]] = {name: {} for name in loads}
    backends = {
        "hf": lambda: load_model(args.model, device="cuda", dtype=args.dtype),
        "vllm": lambda: load_backend(BackendConfig(name="vllm"), BackendRequest(args.model, in_process=lambda: None, dtype=args.dtype, seed=args.seed)),
    }
    for backend, load in backends.items():  # one engine in memory at a time
        adapter = load()
        for name, (kind, requests, default_options) in loads.items():
            responses, seconds, stats = run(adapter, kind, requests, options.get(name, default_options), batch_size)
            answers[name][backend] = responses
            results[name][backend] = {
                "seconds": round(seconds, 3), "requests_per_second": round(len(requests) / seconds, 2),
                "batch_size_final": stats.batch_size_final, "oom_backoffs": stats.oom_backoffs,
            }
        del adapter
        torch.cuda.empty_cache()
    for name in loads:
        results[name]["parity"] = parity(answers[name]["hf"], answers[name]["vllm"])
        results[name]["speedup"] = round(results[name]["hf"]["seconds"] / results[name]["vllm"]["seconds"], 2)
    report = {"model": args.model, "dtype": args.dtype, "gpu": torch.cuda.get_device_name(), "prompts": args.prompts, "workloads": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    for name, row in results.items():
        print(f"{name:<22} hf {row['hf']['seconds']:8.1f} s  vllm {row['vllm']['seconds']:8.1f} s  x{row['speedup']:<5}  {row['parity']}")
    print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
