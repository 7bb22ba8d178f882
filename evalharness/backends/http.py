"""Requests to an OpenAI-compatible server: retries, back-off, a budget, concurrency.

Requests go through the official ``openai`` client (connection pooling, timeouts, the
``Authorization`` header). Its own retries are turned off and done here instead, because a
run must count every HTTP request against ``--max-requests`` and name the request that
finally failed: 408/409/429/5xx answers, connection errors and timeouts are retried with
exponential back-off (doubling from ``retry_backoff``, capped at 30 s, a ``Retry-After``
header of up to 60 s taking precedence); any other error answer is final.

Every message that can carry text from the server passes through :meth:`Transport.redact`,
so the API key never reaches an error message, a log or a record even when a server echoes
request headers back.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol, TypeVar

from typing_extensions import Required, TypedDict  # in typing from Python 3.11; evalharness supports 3.10

from evalharness.backends.config import BackendConfig, public_url
from evalharness.backends.remote import preview
from evalharness.errors import ModelError
from evalharness.jsonvalues import JsonValue

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionUserMessageParam

__all__ = ["ChatBody", "CompletionBody", "MalformedAnswer", "ServerRefused", "ServerUnreachable", "Transport"]

MAX_BACKOFF = 30.0
MAX_RETRY_AFTER = 60.0
RETRIED_STATUS = frozenset({408, 409, 429})
T = TypeVar("T")
R = TypeVar("R")


class ServerUnreachable(ModelError):
    """Retries exhausted: connection errors, timeouts, 429 or 5xx answers."""


class ServerRefused(ModelError):
    """A final error answer (400, 401, 404, 422...): the request itself was refused."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class MalformedAnswer(ModelError):
    """A 2xx answer that is not the JSON the API promises."""


class CompletionBody(TypedDict, total=False):
    """What ``/v1/completions`` requests send besides the model (the ``openai`` client's keywords)."""

    prompt: Required[str | list[int]]
    max_tokens: int
    temperature: float
    echo: bool
    logprobs: int
    stop: list[str]


class ChatBody(TypedDict, total=False):
    """What ``/v1/chat/completions`` requests send besides the model."""

    messages: Required[list[ChatCompletionUserMessageParam]]
    max_tokens: int
    temperature: float
    stop: list[str]


class _HasText(Protocol):
    """An HTTP answer's body (the client's raw response, or the answer of an error)."""

    @property
    def text(self) -> str: ...


class _HasHeaders(Protocol):
    @property
    def headers(self) -> Mapping[str, str]: ...


class Transport:
    """One server, one served model; thread-safe (``map`` sends requests concurrently)."""

    def __init__(self, config: BackendConfig, api_key: str, *, model: str) -> None:
        try:
            import openai
        except ImportError:
            raise ModelError(
                "--backend openai needs the openai package: pip install 'evalharness[openai]'"
            ) from None
        self._openai = openai
        self._client = openai.OpenAI(base_url=config.base_url, api_key=api_key, max_retries=0, timeout=config.timeout)
        self._secret = api_key if api_key != "EMPTY" else None
        self.config = config
        self.model = model
        self.url = public_url(config.base_url or "")
        self._lock = threading.Lock()
        self._random = random.Random()
        self.sent = 0
        self.retries = 0

    # -- messages -----------------------------------------------------------------------
    def redact(self, text: str) -> str:
        """``text`` without the API key (servers may echo headers in error bodies)."""
        text = str(text)
        if self._secret:
            text = text.replace(self._secret, "***")
        return text

    def _error(self, cls: type[ModelError], message: str) -> ModelError:
        return cls(self.redact(f"{self.model} at {self.url}: {message}"))

    # -- one request ----------------------------------------------------------------------
    def completions(self, body: CompletionBody, what: str) -> JsonValue:
        """The JSON answer of ``/v1/completions`` to ``body``, after retries; ``what`` names
        the request in errors."""
        return self._post(lambda: self._client.completions.with_raw_response.create(model=self.model, **body), what)

    def chat(self, body: ChatBody, what: str) -> JsonValue:
        """The JSON answer of ``/v1/chat/completions`` to ``body``, after retries."""
        return self._post(lambda: self._client.chat.completions.with_raw_response.create(model=self.model, **body), what)

    def models(self, what: str) -> JsonValue:
        """The JSON answer of ``/v1/models``, after retries."""
        return self._post(lambda: self._client.models.with_raw_response.list(), what)

    def _post(self, call: Callable[[], _HasText], what: str) -> JsonValue:
        """The JSON answer of ``call`` (one HTTP request), after retries."""
        attempt = 0
        while True:
            self._spend(what)
            try:
                raw = call()
            except self._openai.APIStatusError as exc:
                if exc.status_code not in RETRIED_STATUS and exc.status_code < 500:
                    detail = preview(_body_text(exc.response), 300)
                    message = self.redact(f"{self.model} at {self.url}: {what}: HTTP {exc.status_code} {detail}")
                    raise ServerRefused(message, exc.status_code) from None
                failure, wait = f"HTTP {exc.status_code}", _retry_after(exc.response)
            except self._openai.APITimeoutError:
                failure, wait = f"no answer within --timeout {self.config.timeout:g} s", None
            except self._openai.APIConnectionError as exc:
                failure, wait = f"connection failed ({type(exc.__cause__ or exc).__name__})", None
            else:
                return self._json(raw.text, what)
            if attempt == self.config.max_retries:
                raise self._error(
                    ServerUnreachable,
                    f"{what}: {failure} after {attempt + 1} attempt(s); answers received so far are in the "
                    "prediction cache: check the server and rerun the same command to resume",
                )
            with self._lock:
                self.retries += 1
            time.sleep(wait if wait is not None else self._backoff(attempt))
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        base = min(self.config.retry_backoff * 2.0**attempt, MAX_BACKOFF)
        return base * (0.75 + 0.5 * self._random.random())  # jitter: concurrent retries spread out

    def _spend(self, what: str) -> None:
        with self._lock:
            limit = self.config.max_requests
            if limit is not None and self.sent >= limit:
                raise self._error(
                    ServerUnreachable,
                    f"{what}: the request budget (--max-requests {limit}) is spent; answers received so far are "
                    "in the prediction cache: rerun with a larger --max-requests to continue",
                )
            self.sent += 1

    def _json(self, text: str, what: str) -> JsonValue:
        try:
            return json.loads(text)  # JSON text decodes to a JSON value
        except (json.JSONDecodeError, TypeError) as exc:
            raise self._error(MalformedAnswer, f"{what}: the answer is not valid JSON ({exc}): {preview(text or '', 120)}") from None

    # -- many requests ---------------------------------------------------------------------
    def map(self, function: Callable[[int, T], R], items: Sequence[T]) -> list[R]:
        """``function(index, item)`` for every item, ``--max-concurrency`` at a time, in order.
        The first failure cancels what has not started and is raised."""
        if not items:
            return []
        workers = min(self.config.max_concurrency, len(items))
        if workers == 1:
            return [function(index, item) for index, item in enumerate(items)]
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="evalharness-http")
        try:
            futures = [pool.submit(function, index, item) for index, item in enumerate(items)]
            return [future.result() for future in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _body_text(response: _HasText) -> str:
    try:
        return response.text
    except Exception:  # noqa: BLE001 - a body that cannot be read is shown as absent
        return ""


def _retry_after(response: _HasHeaders) -> float | None:
    try:
        value = float(response.headers.get("retry-after", ""))
    except (TypeError, ValueError):
        return None
    return min(max(value, 0.0), MAX_RETRY_AFTER)
