"""Data parallelism inside one run: ``torchrun`` / ``accelerate launch`` shard the requests.

Every rank plans the same tasks and loads the same checkpoint; each task's flat request list
is split into one shard per rank, balanced by cost, each rank answers its shard, and the
responses are gathered back into the original order on every rank. Only rank 0 scores and
writes the run record, so the record equals a single-process run's (same requests, same
responses, same order). Without the launcher's environment everything is a passthrough.

The launch environment is the one ``torch.distributed.run`` (torchrun) and ``accelerate
launch`` export: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``.
The backend is ``nccl`` when the run uses CUDA (one device per ``LOCAL_RANK``), ``gloo`` on
the CPU.

Cost: a request's cost is its character count (plus ``max_new_tokens`` × 4 characters for
generation). Tokenizing every request on every rank just to balance the shards would cost as
much as the smallest forward passes; within one task and one tokenizer the token count is
close to proportional to the character count, which is all a balance needs.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from evalharness.errors import UsageError
from evalharness.jsonvalues import JSONObject
from evalharness.types import Request, RequestOptions

__all__ = [
    "SINGLE_PROCESS",
    "DistributedContext",
    "broadcast_from_primary",
    "compute_sharded",
    "device_for_rank",
    "distributed_session",
    "launch_environment",
    "request_cost",
    "request_costs",
    "shard_by_cost",
]

T = TypeVar("T")
R = TypeVar("R")

# Characters a generated token costs, for balancing (about 4 characters per token in English).
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a data-parallel run (world_size 1 when not launched so)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def primary(self) -> bool:
        return self.rank == 0

    def describe(self) -> JSONObject:
        """What the run record notes about the launch."""
        return {"world_size": self.world_size, "backend": self.backend}


SINGLE_PROCESS = DistributedContext()


def _int_env(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"environment variable {name}={value!r} is not an integer") from None


def launch_environment(environ: Mapping[str, str] | None = None) -> DistributedContext:
    """Rank, world size and local rank from the launcher's variables (no backend yet)."""
    environ = os.environ if environ is None else environ
    world_size = _int_env(environ, "WORLD_SIZE", 1)
    rank = _int_env(environ, "RANK", 0)
    local_rank = _int_env(environ, "LOCAL_RANK", rank)
    if world_size < 1 or not 0 <= rank < world_size:
        raise UsageError(f"RANK={rank} and WORLD_SIZE={world_size} are inconsistent (need 0 <= RANK < WORLD_SIZE)")
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank)


def _uses_cuda(device: str) -> bool:
    import torch

    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def device_for_rank(device: str, context: DistributedContext) -> str:
    """``auto``/``cuda`` become ``cuda:LOCAL_RANK`` in a data-parallel run; others unchanged."""
    if context.enabled and device in ("auto", "cuda") and _uses_cuda(device):
        return f"cuda:{context.local_rank}"
    return device


@contextmanager
def distributed_session(device: str = "auto") -> Iterator[DistributedContext]:
    """Join the launcher's process group for the duration of a run.

    A passthrough when ``WORLD_SIZE`` is absent or 1. When the caller already initialised
    ``torch.distributed`` (``accelerate``, a training script), that group is used and left
    alone; a group created here is destroyed on exit. The context it yields is passed to
    whatever needs it (the engine, the runner); nothing reads it from a global.
    """
    context = launch_environment()
    if not context.enabled:
        yield SINGLE_PROCESS
        return
    import torch
    import torch.distributed as dist

    created = False
    if dist.is_initialized():
        backend = str(dist.get_backend())
    else:
        backend = "nccl" if _uses_cuda(device) else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(context.local_rank)
        dist.init_process_group(backend=backend, rank=context.rank, world_size=context.world_size)
        created = True
    if dist.get_world_size() != context.world_size or dist.get_rank() != context.rank:
        raise UsageError(
            f"torch.distributed reports rank {dist.get_rank()} of {dist.get_world_size()}, "
            f"but RANK={context.rank} and WORLD_SIZE={context.world_size}"
        )
    try:
        yield DistributedContext(context.rank, context.world_size, context.local_rank, backend)
    finally:
        if created:
            dist.destroy_process_group()


def request_cost(request: Request, options: RequestOptions | None = None) -> int:
    """Characters of a request's text fields (+ the generation budget); at least 1."""
    fields = request if isinstance(request, tuple) else (request,)
    characters = sum(len(value) for value in fields if isinstance(value, str))
    generated = int(getattr(options, "max_new_tokens", 0) or 0) * CHARS_PER_TOKEN
    return max(1, characters + generated)


def request_costs(requests: Sequence[Request], options: RequestOptions | None = None) -> list[int]:
    return [request_cost(request, options) for request in requests]


def shard_by_cost(costs: Sequence[float], world_size: int) -> list[list[int]]:
    """Split indices into ``world_size`` shards of similar total cost.

    Greedy longest-processing-time: the costliest request goes to the least loaded shard
    (ties: lower shard number; equal costs: lower index first), which is within 4/3 of the
    optimal makespan and deterministic, so every rank computes the same plan. Each shard's
    indices are returned in ascending order.
    """
    if world_size < 1:
        raise ValueError("world_size must be at least 1")
    shards: list[list[int]] = [[] for _ in range(world_size)]
    loads = [(0.0, shard) for shard in range(world_size)]
    heapq.heapify(loads)
    for index in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        load, shard = heapq.heappop(loads)
        shards[shard].append(index)
        heapq.heappush(loads, (load + float(costs[index]), shard))
    return [sorted(shard) for shard in shards]


def compute_sharded(
    requests: Sequence[T],
    costs: Sequence[float],
    compute: Callable[[list[T]], list[R]],
    *,
    context: DistributedContext = SINGLE_PROCESS,
) -> list[R]:
    """``compute(requests)``, spread over the ranks; every rank gets all responses in order.

    Every rank must call this with the same requests (same count, same costs): the shard
    plan is computed locally on each rank and checked to agree before any work starts.
    """
    if len(costs) != len(requests):
        raise ValueError(f"{len(costs)} costs for {len(requests)} requests")
    if not context.enabled:
        responses = compute(list(requests))
        _check_count(responses, len(requests))
        return responses
    import torch.distributed as dist

    plans: list[tuple[int, int] | None] = [None] * context.world_size
    dist.all_gather_object(plans, (len(requests), hash(tuple(costs))))
    if len(set(plans)) != 1:
        raise RuntimeError(f"ranks disagree on the requests to shard (count, cost hash per rank: {plans})")
    mine = shard_by_cost(costs, context.world_size)[context.rank]
    answers = compute([requests[i] for i in mine]) if mine else []
    _check_count(answers, len(mine))
    gathered: list[tuple[list[int], list[R]] | None] = [None] * context.world_size
    dist.all_gather_object(gathered, (mine, answers))
    ordered: dict[int, R] = {}
    for entry in gathered:
        assert entry is not None, "all_gather_object fills every rank's entry"
        indices, part = entry
        for index, response in zip(indices, part, strict=True):
            ordered[index] = response
    return [ordered[index] for index in range(len(requests))]  # the shards cover every index


def broadcast_from_primary(value: T, *, context: DistributedContext = SINGLE_PROCESS) -> T:
    """Rank 0's ``value`` on every rank (the value itself when not distributed)."""
    if not context.enabled:
        return value
    import torch.distributed as dist

    box: list[T] = [value]  # rank 0's value after the broadcast (other ranks' entries are only overwritten)
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _check_count(responses: Sequence[object], expected: int) -> None:
    if len(responses) != expected:
        raise RuntimeError(f"the model returned {len(responses)} responses for {expected} requests")
