"""The prediction cache: a content-addressed SQLite store of model responses.

A response is stored under the sha256 of everything that determines it: the model (its
file fingerprint, kind, dtype, device type and the adapter's tokenizer conventions), the request kind,
the request itself (canonical JSON) and the options that change the answer (generation
settings, windows, QA lengths). Batch size and process count are *not* part of the key, so
a cache filled by one run serves any other run of the same model on the same requests.

The database runs in WAL mode with a busy timeout, so several processes can read and write
it at once; every :meth:`PredictionCache.put_many` is one committed transaction, which is
what makes a killed run resumable (``synchronous=NORMAL`` in WAL mode survives a killed
process; only a power loss can drop the last transactions). Values are the response
dataclasses as JSON with a type tag; Python's float ``repr`` round-trips exactly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from evalharness import types as _types
from evalharness.errors import RecordError

__all__ = ["CACHE_FORMAT", "PredictionCache", "decode_response", "encode_response", "model_key", "request_key"]

CACHE_FORMAT = 1  # bump when the key or value layout changes: old rows are then never hit

_RESPONSE_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        _types.ClassifyResponse,
        _types.SpanResponse,
        _types.LoglikelihoodResponse,
        _types.RollingLoglikelihoodResponse,
        _types.GenerateResponse,
        _types.PseudoLoglikelihoodResponse,
    )
}
_BATCH_QUERY = 500  # keys per SELECT (SQLite's parameter limit is 999 on old builds)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def model_key(info: Any) -> str:
    """What about the loaded model changes its answers: weights, kind, dtype, device type
    (CPU and GPU kernels differ in the last bits) and the adapter's tokenizer notes."""
    device = str(getattr(info, "device", "cpu")).split(":")[0]
    return hashlib.sha256(
        _canonical([CACHE_FORMAT, info.fingerprint, info.kind, info.dtype, device, dict(info.notes)]).encode()
    ).hexdigest()


def request_key(model: str, kind: str, request: Any, options: Any) -> str:
    """The content address of one request's response (NamedTuple requests as their fields;
    typed options as their fields, so a key does not depend on how options are spelt)."""
    shape = type(request).__name__
    fields = dataclasses.asdict(options) if dataclasses.is_dataclass(options) else dict(options or {})
    payload = [model, kind, shape, request, fields]
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()


def encode_response(response: Any) -> str:
    name = type(response).__name__
    if name not in _RESPONSE_TYPES:
        raise TypeError(f"cannot cache a {name}")
    return json.dumps({"type": name, "fields": dataclasses.asdict(response)}, ensure_ascii=False)


def decode_response(text: str) -> Any:
    data = json.loads(text)
    cls = _RESPONSE_TYPES[data["type"]]
    fields = {key: tuple(value) if isinstance(value, list) else value for key, value in data["fields"].items()}
    return cls(**fields)


class PredictionCache:
    """``get_many(keys)`` → {key: response}; ``put_many([(key, kind, response)])`` commits."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS predictions ("
                "key TEXT PRIMARY KEY, kind TEXT NOT NULL, value TEXT NOT NULL, "
                "created REAL NOT NULL DEFAULT (julianday('now')))"
            )
        except sqlite3.DatabaseError as exc:
            raise RecordError(f"{self.path}: cannot open the prediction cache ({exc}); delete it or pass --fresh with another --cache") from None

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _BATCH_QUERY):
            chunk = unique[start : start + _BATCH_QUERY]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, value FROM predictions WHERE key IN ({marks})", chunk)
            for key, value in rows:
                try:
                    found[key] = decode_response(value)
                except (KeyError, TypeError, ValueError):
                    continue  # an unreadable row is a miss: it will be recomputed and replaced
        return found

    def put_many(self, items: Iterable[tuple[str, str, Any]]) -> int:
        rows = [(key, kind, encode_response(response)) for key, kind, response in items]
        if rows:
            with self._transaction():
                self._db.executemany("INSERT OR REPLACE INTO predictions (key, kind, value) VALUES (?, ?, ?)", rows)
        return len(rows)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> PredictionCache:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
