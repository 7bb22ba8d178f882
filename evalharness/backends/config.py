"""How a run reaches its model: in process (``hf``), over the OpenAI HTTP API, or in vLLM.

:class:`BackendConfig` is what ``run --backend ...`` and ``parity`` were asked; only
:meth:`BackendConfig.recorded` reaches the run record. The API key itself is never part of
it: only the *name* of the environment variable that holds it.
"""

from __future__ import annotations

import os
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import model_validator

from evalharness.config import StrictModel, option
from evalharness.errors import UsageError
from evalharness.jsonvalues import JSONObject

__all__ = ["API_KINDS", "OPENAI_ONLY", "BackendConfig", "public_url", "read_api_key"]

API_KINDS = ("completions", "chat")


# Settings that only the openai backend reads: given with another backend they are refused,
# never silently ignored.
OPENAI_ONLY = ("base_url", "api", "api_key_env", "max_concurrency", "timeout", "max_retries", "max_requests")


class BackendConfig(StrictModel):
    """The backend of a run and its connection settings (a group of the run settings,
    ``evaluation.settings.RunSettings.backend``; unused ones stay at their defaults)."""

    name: str = option("hf", flag="--backend", help="hf (in process, default), openai (a server speaking the OpenAI API) or vllm (in-process vLLM, GPU)")
    base_url: str | None = option(None, help="openai: the server's API root, e.g. http://127.0.0.1:8000/v1")
    api: Literal["completions", "chat"] = option(
        "completions", help="openai: generate through completions (default) or chat/completions (the server's chat template)"
    )
    api_key_env: str | None = option(None, metavar="VAR", help="openai: environment variable holding the API key (the key is never recorded)")
    max_concurrency: int = option(8, ge=1, help="openai: requests in flight at once (default 8)")
    timeout: float = option(120.0, gt=0, help="openai: seconds before a request counts as failed and is retried (default 120)")
    max_retries: int = option(5, ge=0, help="openai: retries after 429/5xx/connection errors/timeouts, with exponential back-off (default 5)")
    retry_backoff: float = option(0.5, ge=0, cli=False, help="openai: first back-off in seconds, doubled per retry (capped at 30 s)")
    max_requests: int | None = option(None, ge=1, help="openai: HTTP requests the run may send, retries included (default: no limit)")

    @model_validator(mode="after")
    def _openai_settings_need_openai(self) -> BackendConfig:
        given = [name for name in OPENAI_ONLY if name in self.model_fields_set and getattr(self, name) is not None]
        if given and self.name != "openai":
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise ValueError(f"{flags} apply to the openai backend only, not to '{self.name}'")
        return self

    def recorded(self) -> JSONObject:
        """What the run record says about the backend: never the key, never URL credentials."""
        if self.name != "openai":
            return {"name": self.name}
        return {
            "name": self.name,
            "base_url": public_url(self.base_url or ""),
            "api": self.api,
            "api_key_env": self.api_key_env,
            "max_concurrency": self.max_concurrency,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "max_requests": self.max_requests,
        }


def public_url(url: str) -> str:
    """``url`` without user name, password, query or fragment (where keys hide), no trailing slash."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme.lower(), netloc.lower(), parts.path.rstrip("/"), "", ""))


def read_api_key(variable: str | None) -> str:
    """The key from the environment variable named by ``--api-key-env``.

    Local servers (vLLM, transformers serve) take any key; the OpenAI client needs a
    non-empty one, so without ``--api-key-env`` a placeholder is sent.
    """
    if variable is None:
        return "EMPTY"
    value = os.environ.get(variable, "")
    if not value.strip():
        raise UsageError(f"--api-key-env names the environment variable {variable}, which is not set (or empty); export the key in it")
    return value.strip()
