"""Parity of the causal-LM adapter with lm-evaluation-harness (``HFLM``), measured.

Same model, same documents, compared request by request:

1. builds a small GPT-2 locally (byte-level BPE trained on SST-2 train sentences and the
   WikiText-2 validation split, a few hundred training steps so that its predictions are
   not uniform) under ``--work-dir``;
2. creates a separate venv (``--venv``) and installs ``lm-eval[hf]`` from PyPI into it. The
   venv sees this interpreter's packages through a ``.pth`` file, so both sides run the very
   same torch and transformers (and no CUDA build of torch is downloaded); pip installs
   only what lm-eval adds, into the new venv;
3. scores with evalharness (``load_model(...).loglikelihood`` on the requests that
   ``evalharness run`` builds for ``glue/sst2``, and ``loglikelihood_rolling`` with disjoint
   windows on WikiText-2 test articles) and with lm-evaluation-harness (``lm_eval_side.py``:
   ``HFLM.loglikelihood`` / ``loglikelihood_rolling`` on ``Instance`` objects built with
   lm-eval's own SST-2 prompt, scored with lm-eval's own metric code);
4. reports the largest differences and exits 1 if any exceeds the float tolerance.

Nothing is downloaded except the lm-eval package. Usage (from the repository root):

    python benchmarks/parity_lm_eval.py --data-dir ../shared/data

Results go to ``benchmarks/results/parity_lm_eval.json``; ``benchmarks/PARITY.md`` reports them.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ATOL, RTOL = 1e-4, 1e-6  # float32 forward passes; sums over up to ~10^4 tokens


def read_sst2(data_dir: Path, split: str) -> list[dict]:
    with (data_dir / "glue" / "SST-2" / f"{split}.tsv").open(encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        return [{"sentence": sentence, "label": int(label)} for sentence, label in reader]


def wikitext_documents(path: Path) -> list[str]:
    """Articles of a WikiText ``*.tokens`` file: each starts at a `` = Title = `` line."""
    documents: list[list[str]] = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if re.match(r"^ = [^=].* = \n$", line) or not documents:
            documents.append([])
        documents[-1].append(line)
    return ["".join(lines).strip("\n") for lines in documents if "".join(lines).strip()]


def build_parity_model(directory: Path, data_dir: Path, *, steps: int, seed: int = 0) -> Path:
    """A 2-layer GPT-2 trained briefly on SST-2 prompts and WikiText-2 validation text."""
    import torch
    from transformers import AutoModelForCausalLM

    from evalharness.testing.tiny import build_byte_bpe_tokenizer, build_causal_lm

    stamp = directory / "parity_stamp.json"
    wanted = {"steps": steps, "seed": seed, "data_dir": str(data_dir.resolve())}
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        print(f"parity model: reusing {directory}", file=sys.stderr)
        return directory  # built by an earlier run with the same settings (deterministic)
    train = read_sst2(data_dir, "train")[:20000]
    labels = ["negative", "positive"]
    prompts = [f"{r['sentence']}\nQuestion: Is this sentence positive or negative?\nAnswer: {labels[r['label']]}" for r in train]
    valid = wikitext_documents(data_dir / "wikitext-2" / "wiki.valid.tokens.txt")
    corpus = prompts + valid
    tokenizer = build_byte_bpe_tokenizer(corpus, vocab_size=2000, model_max_length=256)
    build_causal_lm(directory, tokenizer, hidden=64, layers=2, max_positions=256, seed=seed)
    model = AutoModelForCausalLM.from_pretrained(directory)
    torch.manual_seed(seed)
    stream = [t for text in corpus for t in tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]]
    data = torch.tensor(stream[: len(stream) // 128 * 128]).view(-1, 128)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        batch = data[torch.randint(0, data.size(0), (16,))]
        loss = model(batch, labels=batch).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    model.eval()
    model.save_pretrained(directory)
    stamp.write_text(json.dumps(wanted))
    print(f"parity model: {directory} (final training loss {loss.item():.3f})", file=sys.stderr)
    return directory


def ensure_peer_venv(venv: Path) -> Path:
    """A venv with lm-eval installed that reuses this interpreter's torch and transformers."""
    from peer_envs import PEERS, ensure_venv

    return ensure_venv(venv, *PEERS["lm-eval"])


def evalharness_side(model_dir: Path, data_dir: Path, documents: list[str], *, batch_size: int, max_length: int, limit: int | None) -> dict:
    import numpy as np

    import evalharness
    from evalharness.spec.catalog import TaskCatalog
    from evalharness.data import load_examples
    from evalharness.prompting import FormulationOptions
    from evalharness.prompting.choice import NORMALISERS, ChoiceLoglikelihood

    adapter = evalharness.load_model(str(model_dir), device="cpu", dtype="float32", max_length=max_length)
    task = TaskCatalog().load("glue/sst2")
    examples = load_examples(task, data_dir, limit=limit).examples
    formulation = ChoiceLoglikelihood()
    state = formulation.prepare(task, adapter, FormulationOptions(data_dir=data_dir))
    per_example = formulation.requests(task, examples, state)
    pairs = [request for requests in per_example for request in requests]
    started = time.perf_counter()
    responses = adapter.loglikelihood(pairs, batch_size=batch_size)
    sst2_seconds = time.perf_counter() - started
    decoded = [
        formulation.decode(task, example, responses[2 * i : 2 * i + 2], state) for i, example in enumerate(examples)
    ]
    char_lengths = np.array([[NORMALISERS["char"](r, p.continuation) for r, p in zip(responses[2 * i : 2 * i + 2], pairs[2 * i : 2 * i + 2])] for i in range(len(examples))])
    lls = np.array([r.logprob for r in responses]).reshape(len(examples), 2)
    golds = [example["label"] for example in examples]
    labels = task.spec.labels

    started = time.perf_counter()
    rolling = adapter.loglikelihood_rolling(documents, batch_size=batch_size, window="disjoint", max_length=max_length)
    rolling_seconds = time.perf_counter() - started
    total = sum(r.logprob for r in rolling)
    words = sum(len(re.split(r"\s+", d)) for d in documents)
    n_bytes = sum(len(d.encode("utf-8")) for d in documents)
    return {
        "notes": dict(adapter.info.notes),
        "sst2": {
            "contexts": [requests[0].context for requests in per_example],
            "loglikelihoods": [r.logprob for r in responses],
            "is_greedy": [r.is_greedy for r in responses],
            "predictions": [labels.index(d.prediction) for d in decoded],
            "acc": float(np.mean([d.prediction == g for d, g in zip(decoded, golds)])),
            "acc_norm": float(np.mean([labels[int(i)] == g for i, g in zip((lls / char_lengths).argmax(axis=1), golds)])),
            "truncated": sum(r.truncated for r in responses),
            "seconds": sst2_seconds,
        },
        "wikitext": {
            "loglikelihoods": [r.logprob for r in rolling],
            "n_tokens": sum(r.n_tokens for r in rolling),
            "word_perplexity": math.exp(-total / words),
            "byte_perplexity": math.exp(-total / n_bytes),
            "bits_per_byte": -total / n_bytes / math.log(2),
            "seconds": rolling_seconds,
        },
    }


def max_difference(ours: list[float], theirs: list[float]) -> dict:
    diffs = [abs(a - b) for a, b in zip(ours, theirs, strict=True)]
    worst = max(range(len(diffs)), key=diffs.__getitem__)
    allowed = [ATOL + RTOL * abs(b) for b in theirs]
    return {
        "n": len(diffs),
        "max_abs": diffs[worst],
        "at": worst,
        "value": theirs[worst],
        "max_rel": max(d / max(abs(b), 1e-12) for d, b in zip(diffs, theirs)),
        "within_tolerance": all(d <= a for d, a in zip(diffs, allowed)),
    }


def compare(ours: dict, theirs: dict) -> dict:
    sst2_ours, sst2_theirs = ours["sst2"], theirs["sst2"]
    wiki_ours, wiki_theirs = ours["wikitext"], theirs["wikitext"]
    return {
        "sst2": {
            "same_prompts": sst2_ours["contexts"] == sst2_theirs["contexts"],
            "loglikelihood": max_difference(sst2_ours["loglikelihoods"], sst2_theirs["loglikelihoods"]),
            "is_greedy_disagreements": sum(a != b for a, b in zip(sst2_ours["is_greedy"], sst2_theirs["is_greedy"])),
            "prediction_disagreements": sum(a != b for a, b in zip(sst2_ours["predictions"], sst2_theirs["predictions"])),
            "acc": {"evalharness": sst2_ours["acc"], "lm_eval": sst2_theirs["acc"]},
            "acc_norm": {"evalharness": sst2_ours["acc_norm"], "lm_eval": sst2_theirs["acc_norm"]},
            "requests_truncated": sst2_ours["truncated"],
            "seconds": {"evalharness": sst2_ours["seconds"], "lm_eval": sst2_theirs["seconds"]},
        },
        "wikitext": {
            "document_loglikelihood": max_difference(wiki_ours["loglikelihoods"], wiki_theirs["loglikelihoods"]),
            "tokens_scored": wiki_ours["n_tokens"],
            **{
                metric: {"evalharness": wiki_ours[metric], "lm_eval": wiki_theirs[metric]}
                for metric in ("word_perplexity", "byte_perplexity", "bits_per_byte")
            },
            "seconds": {"evalharness": wiki_ours["seconds"], "lm_eval": wiki_theirs["seconds"]},
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--work-dir", type=Path, default=REPO / ".eh-cache" / "parity")
    parser.add_argument("--venv", type=Path, default=REPO / ".eh-cache" / "parity-venv")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "parity_lm_eval.json")
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--limit", type=int, help="only the first N SST-2 dev sentences")
    parser.add_argument("--documents", type=int, help="only the first N WikiText-2 test articles")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(REPO))

    args.work_dir.mkdir(parents=True, exist_ok=True)
    model_dir = build_parity_model(args.work_dir / "model", args.data_dir, steps=args.train_steps)
    peer_python = ensure_peer_venv(args.venv)
    documents = wikitext_documents(args.data_dir / "wikitext-2" / "wiki.test.tokens.txt")[: args.documents]
    sst2 = read_sst2(args.data_dir, "dev")[: args.limit]
    requests_path, peer_results = args.work_dir / "requests.json", args.work_dir / "lm_eval_results.json"
    requests_path.write_text(json.dumps({
        "model": str(model_dir), "batch_size": args.batch_size, "max_length": args.max_length,
        "sst2": sst2, "wikitext": documents,
    }))
    print("running lm-evaluation-harness ...", file=sys.stderr)
    subprocess.run([str(peer_python), str(REPO / "benchmarks" / "lm_eval_side.py"), str(requests_path), str(peer_results)], check=True)
    print("running evalharness ...", file=sys.stderr)
    ours = evalharness_side(model_dir, args.data_dir, documents, batch_size=args.batch_size, max_length=args.max_length, limit=args.limit)
    theirs = json.loads(peer_results.read_text())
    report = {
        "versions": {k: theirs[k] for k in ("lm_eval_version", "transformers_version", "torch_version")},
        "setup": {
            "model": "GPT-2, 2 layers, 64 hidden, 256 positions, byte-level BPE (2000), trained locally",
            "train_steps": args.train_steps, "batch_size": args.batch_size, "max_length": args.max_length,
            "sst2_sentences": len(sst2), "wikitext_documents": len(documents), "dtype": "float32", "device": "cpu",
            "lm_eval_prefix_token_id": theirs["prefix_token_id"], "evalharness_notes": ours["notes"],
        },
        "tolerance": {"atol": ATOL, "rtol": RTOL},
        "results": compare(ours, theirs),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["results"], indent=2))
    results = report["results"]
    ok = (
        results["sst2"]["same_prompts"]
        and results["sst2"]["loglikelihood"]["within_tolerance"]
        and results["wikitext"]["document_loglikelihood"]["within_tolerance"]
    )
    print("PARITY OK" if ok else "PARITY FAILED", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
