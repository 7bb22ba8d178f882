"""How a run reaches its model: in process (``hf``), over the OpenAI HTTP API, or in vLLM.

:class:`BackendConfig` is what ``run --backend ...`` and ``parity`` were asked; only
:meth:`BackendConfig.recorded` reaches the run record. The API key itself is never part of
it: only the *name* of the environment variable that holds it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from evalharness.errors import UsageError

__all__ = ["API_KINDS", "BackendConfig", "public_url", "read_api_key"]

API_KINDS = ("completions", "chat")


@dataclass(frozen=True)
class BackendConfig:
    """The backend of a run and its connection settings (unused ones stay at their defaults)."""

    name: str = "hf"
    base_url: str | None = None  # openai: the server's API root, e.g. http://127.0.0.1:8000/v1
    api: Literal["completions", "chat"] = "completions"  # openai: which endpoint generates
    api_key_env: str | None = None  # openai: the environment variable holding the key
    max_concurrency: int = 8  # openai: requests in flight at once
    timeout: float = 120.0  # openai: seconds per request before it counts as failed (and is retried)
    max_retries: int = 5  # openai: retries of a request after a 429/5xx/connection error/timeout
    retry_backoff: float = 0.5  # openai: first back-off in seconds, doubled per retry (capped at 30 s)
    max_requests: int | None = None  # openai: HTTP requests this run may send (retries included)

    def __post_init__(self) -> None:
        checks = [
            (self.max_concurrency >= 1, f"--max-concurrency must be at least 1, got {self.max_concurrency}"),
            (self.timeout > 0, f"--timeout must be positive, got {self.timeout}"),
            (self.max_retries >= 0, f"--max-retries must be at least 0, got {self.max_retries}"),
            (self.retry_backoff >= 0, f"the retry back-off must be at least 0, got {self.retry_backoff}"),
            (self.max_requests is None or self.max_requests >= 1, f"--max-requests must be at least 1, got {self.max_requests}"),
            (self.api in API_KINDS, f"--api must be one of {', '.join(API_KINDS)}, got {self.api!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)

    def recorded(self) -> dict[str, Any]:
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
