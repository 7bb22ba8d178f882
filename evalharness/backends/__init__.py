"""Backends: where a run's model runs. ``hf`` loads the checkpoint in this process
(``evalharness.models``); ``openai`` talks to a server over the OpenAI HTTP API; ``vllm``
runs the checkpoint in an in-process vLLM engine. All three are adapters answering the
request kinds of ``models.protocols``, so the engine, the prediction cache, the metrics and
the run record do not depend on the backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from evalharness.backends.config import BackendConfig
from evalharness.errors import UsageError, did_you_mean
from evalharness.models.protocols import LoadedModel

__all__ = ["BACKENDS", "BackendConfig", "BackendRequest", "load_backend"]


@dataclass(frozen=True)
class BackendRequest:
    """What a backend may need to load: the model name, the run's tokenizer, dtype and seed,
    and how to load the checkpoint in process (the runner's ``load_model`` call)."""

    model: str
    in_process: Callable[[], LoadedModel]
    tokenizer: str | None = None
    dtype: str = "auto"
    seed: int = 1234


def _hf(config: BackendConfig, request: BackendRequest) -> LoadedModel:
    return request.in_process()


def _openai(config: BackendConfig, request: BackendRequest) -> LoadedModel:
    from evalharness.backends.openai import load_openai

    return load_openai(config, request.model, tokenizer=request.tokenizer)


def _vllm(config: BackendConfig, request: BackendRequest) -> LoadedModel:
    from evalharness.backends.vllm import load_vllm

    return load_vllm(config, request.model, tokenizer=request.tokenizer, dtype=request.dtype, seed=request.seed)


BACKENDS: dict[str, Callable[[BackendConfig, BackendRequest], LoadedModel]] = {"hf": _hf, "openai": _openai, "vllm": _vllm}


def load_backend(config: BackendConfig, request: BackendRequest) -> LoadedModel:
    """The adapter of ``config.name`` for ``request.model``."""
    if config.name not in BACKENDS:
        raise UsageError(f"unknown backend '{config.name}'{did_you_mean(config.name, BACKENDS)} (known: {', '.join(BACKENDS)})")
    return BACKENDS[config.name](config, request)
