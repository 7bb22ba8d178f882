"""One fused kernel for activations that transformers computes operation by operation.

GPT-2-family checkpoints (``activation_function: gelu_new``; T5 v1.1's ``gated-gelu``) run
the tanh approximation of GELU as seven elementwise tensor operations, each a pass over the
MLP's widest activations: a quarter of a CPU forward pass of a small GPT-2. PyTorch's
``gelu(approximate="tanh")`` is the same function in one kernel (transformers' own
``GELUTanh``: "equivalent to NewGELU and FastGELU ... not an exact numerical match due to
rounding errors"). Each swap is checked on a grid of inputs first and recorded in the model
notes. The prediction cache key (``models.base.Conventions``) does not change: the answers
agree to rounding, as those at another batch size do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["FUSED", "fuse_activations"]

FUSED = {"NewGELUActivation": "GELUTanh", "FastGELUActivation": "GELUTanh"}  # transformers.activations classes
TOLERANCE = 1e-5  # absolute, on inputs in [-8, 8]: rounding only


def fuse_activations(model: torch.nn.Module) -> dict[str, str]:
    """Replace the activation modules of :data:`FUSED` in ``model`` by their fused
    equivalents where they agree on a check; the note for the run record, if any."""
    import torch
    from transformers import activations

    swapped: dict[str, str] = {}
    grid = torch.linspace(-8.0, 8.0, 4097)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            fused_name = FUSED.get(type(child).__name__)
            if fused_name is None or type(child).__module__ != activations.__name__:
                continue
            fused = getattr(activations, fused_name)()
            with torch.no_grad():
                if (fused(grid) - child(grid)).abs().max().item() > TOLERANCE:
                    continue
            setattr(parent, name, fused)
            swapped[type(child).__name__] = fused_name
    if not swapped:
        return {}
    pairs = ", ".join(f"{old} -> {new}" for old, new in sorted(swapped.items()))
    return {"activations": f"fused kernels: {pairs} (torch gelu(approximate='tanh'); equal to {TOLERANCE:g} on a check)"}
