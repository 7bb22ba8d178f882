"""The ``vllm`` backend: the checkpoint in an in-process ``vllm.LLM`` (GPU machines).

The same request kinds as ``hf``, with ``hf``'s own tokenization (the Hugging Face tokenizer
of the checkpoint encodes, vLLM receives token ids), so the two differ only in their
kernels: generation is greedy (``temperature=0``, ``min_tokens`` for ``min_new_tokens``),
log-likelihoods are vLLM's ``prompt_logprobs``. vLLM is an optional extra
(``pip install 'evalharness[vllm]'``) and is imported only here; without it the backend is
refused with that instruction. The run record notes the engine and its version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from evalharness.backends.config import BackendConfig
from evalharness.backends.remote import (
    GeneratedText,
    RemoteCausalLM,
    ScoredPrompt,
    context_length_of,
    preview,
)
from evalharness.errors import ModelError, UsageError
from evalharness.models.base import (
    Conventions,
    ModelInfo,
    detect_kind,
    fingerprint_checkpoint,
    read_config,
    resolve_checkpoint,
    select_dtype,
)
from evalharness.types import GenerationOptions

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["VLLMBackend", "import_vllm", "load_vllm"]

GPU_MEMORY_UTILIZATION = 0.85

# What evalharness uses of vLLM (it ships no types): ``LLM.generate`` on token-id prompts and
# its outputs' prompt log-probabilities and completions.
TokenPrompt = dict[str, list[int]]  # {"prompt_token_ids": ids}


class _Logprob(Protocol):
    @property
    def logprob(self) -> float: ...


class _Completion(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def token_ids(self) -> Sequence[int]: ...


class _RequestOutput(Protocol):
    @property
    def prompt_logprobs(self) -> Sequence[Mapping[int, _Logprob] | None] | None: ...

    @property
    def outputs(self) -> Sequence[_Completion]: ...


class _LLM(Protocol):
    """``vllm.LLM``."""

    def generate(self, prompts: list[TokenPrompt], params: object, *, use_tqdm: bool) -> Sequence[_RequestOutput]: ...


class _VLLMModule(Protocol):
    """The ``vllm`` module."""

    def LLM(self, **settings: object) -> _LLM: ...  # noqa: N802 - vLLM's class

    def SamplingParams(self, **settings: object) -> object: ...  # noqa: N802 - vLLM's class


def import_vllm() -> _VLLMModule:
    try:
        import vllm
    except ImportError as exc:
        raise ModelError(
            f"--backend vllm needs the vllm package, which is not importable here ({exc}); it runs on CUDA GPUs: "
            "pip install 'evalharness[vllm]' on a GPU machine, or use --backend hf"
        ) from None
    return vllm


class VLLMBackend(RemoteCausalLM):
    """A causal LM in an in-process ``vllm.LLM``; prompts are always token ids."""

    backend = "vllm"

    def __init__(self, llm: _LLM, vllm: _VLLMModule, tokenizer: PreTrainedTokenizerBase, info: ModelInfo, *, context_length: int | None) -> None:
        self.llm = llm
        self.vllm = vllm
        super().__init__(tokenizer, info, context_length=context_length, refusals={})

    def _prompt(self, ids: list[int]) -> TokenPrompt:
        return {"prompt_token_ids": list(ids)}

    def score_prompts(self, prompts: Sequence[list[int]]) -> list[ScoredPrompt]:
        params = self.vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        outputs = self.llm.generate([self._prompt(p) for p in prompts], params, use_tqdm=False)
        scored = []
        for prompt, output in zip(prompts, outputs, strict=True):
            positions = list(output.prompt_logprobs or [])
            if len(positions) != len(prompt):
                raise ModelError(f"{self.info.name}: vLLM returned {len(positions)} prompt log-probabilities for {len(prompt)} tokens")
            row = []
            for position in range(1, len(prompt)):
                candidates = positions[position] or {}
                if prompt[position] not in candidates:
                    raise ModelError(
                        f"{self.info.name}: vLLM gave no log-probability for token {position} of {preview(self.tokenizer.decode(prompt))}"
                    )
                value = float(candidates[prompt[position]].logprob)
                row.append((value, value >= max(float(c.logprob) for c in candidates.values())))
            scored.append(row)
        return scored

    def complete(self, prompts: Sequence[str | list[int]], options: GenerationOptions, shown: Sequence[str]) -> list[GeneratedText]:
        params = self.vllm.SamplingParams(
            max_tokens=options.max_new_tokens,
            min_tokens=options.min_new_tokens,
            temperature=0.0,
            stop=list(options.stop) or None,
            skip_special_tokens=True,
        )
        ids = [p if isinstance(p, list) else (self._encode([p])[0] or [self.prefix_token_id]) for p in prompts]
        outputs = self.llm.generate([self._prompt(i) for i in ids], params, use_tqdm=False)
        eos = {self.tokenizer.eos_token_id}
        results = []
        for output in outputs:
            completion = output.outputs[0]
            tokens = list(completion.token_ids)
            n_tokens = len(tokens) - (1 if tokens and tokens[-1] in eos else 0)  # as hf: EOS is not counted
            results.append(GeneratedText(completion.text, n_tokens))
        return results


def load_vllm(config: BackendConfig, model: str, *, tokenizer: str | None = None, dtype: str = "auto", seed: int = 1234) -> VLLMBackend:
    """The checkpoint in ``vllm.LLM`` (``--dtype auto``: bf16)."""
    vllm = import_vllm()
    from transformers import AutoTokenizer

    path = resolve_checkpoint(model)
    checkpoint_config = read_config(path)
    kind, architecture = detect_kind(checkpoint_config, source=str(path))
    if kind != "causal_lm":
        raise UsageError(f"--backend vllm evaluates causal LMs; {path} is a {kind} checkpoint (use --backend hf)")
    chosen_dtype = "bfloat16" if dtype == "auto" else select_dtype(dtype, "cuda")  # vLLM runs on GPUs with bf16
    tokenizer_path = tokenizer or str(path)
    hf_tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    llm = vllm.LLM(
        model=str(path), tokenizer=tokenizer_path, dtype=chosen_dtype, seed=seed, gpu_memory_utilization=GPU_MEMORY_UTILIZATION
    )
    reported = getattr(getattr(getattr(llm, "llm_engine", None), "model_config", None), "max_model_len", None)
    context_length = int(reported) if reported else context_length_of(hf_tokenizer, checkpoint_config)
    version = getattr(vllm, "__version__", "unknown")
    info = ModelInfo(
        name=path.resolve().name,
        path=model,
        kind=kind,
        fingerprint=fingerprint_checkpoint(path),
        architecture=architecture,
        device="cuda",
        dtype=chosen_dtype,
        num_parameters=None,  # vLLM does not expose it
        notes={"backend": "vllm", "engine": f"vllm {version}", "tokenizer": tokenizer_path},
        conventions=Conventions(backend="vllm", engine=f"vllm {version}", tokenizer=tokenizer_path),
    )
    return VLLMBackend(llm, vllm, hf_tokenizer, info, context_length=context_length)
