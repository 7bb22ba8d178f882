"""The machine's achievable dense matmul throughput, and model FLOP utilisation against it.

``matmul_peak`` times ``torch.matmul`` at the benchmark's dtype and torch's thread count (the
same as the evalharness subprocesses: one thread per core) on a square product and on the
shapes of a 384-wide transformer's MLP, and keeps the best: what dense matrix products
achieve here, not a datasheet figure.

``model_flops`` counts what a forward pass computes, by the usual ``2 × parameters × tokens``:
every matrix of the body (embedding lookups excluded) for each token the model computed
(shared prefixes once, padding excluded), plus the vocabulary projection for each position
projected (only the scored ones, in evalharness's packed layout). Attention's own products
are left out, so utilisation is slightly understated for long rows.
"""

from __future__ import annotations

import time
from typing import Any

SHAPES = ((2048, 2048, 2048), (4096, 384, 1536), (4096, 1536, 384))


def matmul_peak(device: str, dtype: str, *, repeats: int = 10) -> dict[str, Any]:
    """Best FLOP/s over ``SHAPES`` (each timed ``repeats`` times, the fastest kept)."""
    import torch

    kind = getattr(torch, dtype)
    best: dict[str, Any] = {"flops": 0.0}
    for m, k, n in SHAPES:
        a, b = (
            torch.randn(m, k, dtype=kind, device=device),
            torch.randn(k, n, dtype=kind, device=device),
        )
        for _ in range(3):
            a @ b
        fastest = float("inf")
        for _ in range(repeats):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            started = time.perf_counter()
            a @ b
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            fastest = min(fastest, time.perf_counter() - started)
        flops = 2 * m * k * n / fastest
        if flops > best["flops"]:
            best = {"flops": flops, "shape": [m, k, n]}
    return {
        **best,
        "dtype": dtype,
        "threads": torch.get_num_threads(),
        "device": device,
    }


def parameter_counts(model: Any) -> dict[str, int]:
    """``body``: parameters of the matrices every token goes through; ``head``: the
    vocabulary (or label) projection; embedding lookups are neither. Encoder-decoders also
    get ``encoder``: the part of the body their input tokens go through."""
    import torch

    embeddings = {
        id(module.weight)
        for module in model.modules()
        if isinstance(module, torch.nn.Embedding)
    }
    output = (
        model.get_output_embeddings()
        if hasattr(model, "get_output_embeddings")
        else None
    )
    head = {id(p) for p in output.parameters()} if output is not None else set()
    seen: set[int] = set()
    counts = {"body": 0, "head": 0}
    for parameter in model.parameters():
        if id(parameter) in seen:
            continue
        seen.add(id(parameter))
        if id(parameter) in head:
            counts["head"] += parameter.numel()
        elif id(parameter) not in embeddings:
            counts["body"] += parameter.numel()
    if (
        output is not None and id(output.weight) in embeddings
    ):  # tied: the projection is a matmul too
        counts["head"] = output.weight.numel()
    if getattr(model.config, "is_encoder_decoder", False):
        encoder = model.get_encoder()
        counts["encoder"] = sum(
            p.numel() for p in encoder.parameters() if id(p) not in embeddings
        )
    return counts


def model_flops(
    params: dict[str, int], *, tokens: int, projected: int, generated: int = 0
) -> float:
    """Forward FLOPs for ``tokens`` input tokens (``projected`` of them onto the vocabulary) and,
    for an encoder-decoder, ``generated`` decoder tokens (each projected)."""
    if "encoder" in params:
        decoder = params["body"] - params["encoder"]
        return (
            2.0 * params["encoder"] * tokens
            + 2.0 * (decoder + params["head"]) * generated
        )
    return 2.0 * params["body"] * tokens + 2.0 * params["head"] * projected
