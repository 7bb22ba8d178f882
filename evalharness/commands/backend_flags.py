"""The ``--backend`` flags shared by ``run`` and ``parity`` (one block, one place)."""

from __future__ import annotations

import argparse

from evalharness.backends.config import API_KINDS, BackendConfig
from evalharness.commands.common import non_negative_int, positive_int
from evalharness.errors import UsageError

__all__ = ["add_backend_flags", "backend_config", "openai_flags"]

# Flags that only the openai backend reads: given with another backend they are refused,
# never silently ignored.
_OPENAI_ONLY = ("base_url", "api", "api_key_env", "max_concurrency", "timeout", "max_retries", "max_requests")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def add_backend_flags(parser: argparse.ArgumentParser, *, choice: bool = True, tokenizer: bool = True) -> None:
    """The openai flags; ``choice`` adds ``--backend`` itself, ``tokenizer`` ``--tokenizer``
    (for commands that do not have it already)."""
    group = parser.add_argument_group("backend (where the model runs)")
    if choice:
        group.add_argument("--backend", default="hf", help="hf (in process, default), openai (a server speaking the OpenAI API) or vllm (in-process vLLM, GPU)")
    group.add_argument("--base-url", help="openai: the server's API root, e.g. http://127.0.0.1:8000/v1")
    group.add_argument("--api", choices=API_KINDS, help="openai: generate through completions (default) or chat/completions (the server's chat template)")
    group.add_argument("--api-key-env", metavar="VAR", help="openai: environment variable holding the API key (the key is never recorded)")
    group.add_argument("--max-concurrency", type=positive_int, help="openai: requests in flight at once (default 8)")
    group.add_argument("--timeout", type=positive_float, help="openai: seconds before a request counts as failed and is retried (default 120)")
    group.add_argument("--max-retries", type=non_negative_int, help="openai: retries after 429/5xx/connection errors/timeouts, with exponential back-off (default 5)")
    group.add_argument("--max-requests", type=positive_int, help="openai: HTTP requests the run may send, retries included (default: no limit)")
    if tokenizer:
        group.add_argument("--tokenizer", metavar="DIR", help="the model's tokenizer directory (openai: needed for log-likelihoods; default: --model when it is a directory)")


def openai_flags(args: argparse.Namespace, *, used: bool) -> dict[str, object]:
    """The openai-only flags given; refused when no openai backend will read them."""
    given = {name: getattr(args, name) for name in _OPENAI_ONLY if getattr(args, name) is not None}
    if given and not used:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UsageError(f"{flags} apply to the openai backend only, which this command does not use")
    return given


def backend_config(args: argparse.Namespace) -> BackendConfig:
    """The backend settings of ``run``'s command line."""
    return BackendConfig(name=args.backend, **openai_flags(args, used=args.backend == "openai"))
