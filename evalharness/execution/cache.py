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

Trust: the file is marked as ours (``PRAGMA application_id``) and a path that holds anything
else (another program's SQLite database, a text file) is refused before a byte of it changes.
Opening runs SQLite's ``quick_check``, and every row carries a checksum of its key and value,
so a damaged page or row is an error (exit 2, "delete the cache"), never a silently altered
prediction. Every SQLite failure (disk full, read-only file) is a :class:`RecordError` naming
the file; committed rows are never removed by evalharness.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from evalharness import types as _types
from evalharness.errors import RecordError

if TYPE_CHECKING:
    from evalharness.models.base import ModelInfo

__all__ = [
    "APPLICATION_ID",
    "CACHE_FORMAT",
    "PredictionCache",
    "decode_response",
    "encode_response",
    "model_key",
    "request_key",
    "row_checksum",
]

CACHE_FORMAT = 2  # bump when the key or value layout changes: old rows are then never hit

_RESPONSE_TYPES: dict[str, type[_types.Response]] = {
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
APPLICATION_ID = 0x45484331  # "EHC1" in the SQLite header: this file is an evalharness cache
_SQLITE_MAGIC = b"SQLite format 3\x00"
_COLUMNS = ("key", "kind", "value", "created", "checksum")
_CREATE = (
    "CREATE TABLE predictions ("
    "key TEXT PRIMARY KEY, kind TEXT NOT NULL, value TEXT NOT NULL, "
    "created REAL NOT NULL DEFAULT (julianday('now')), checksum TEXT)"
)


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def model_key(info: ModelInfo) -> str:
    """What about the loaded model changes its answers: weights, kind, dtype, device type
    (CPU and GPU kernels differ in the last bits) and its typed conventions (backend,
    tokenization); never the prose notes, which may be reworded."""
    device = info.device.split(":")[0]
    conventions = dataclasses.asdict(info.conventions)
    return hashlib.sha256(
        _canonical([CACHE_FORMAT, info.fingerprint, info.kind, info.dtype, device, conventions]).encode()
    ).hexdigest()


def request_key(model: str, kind: str, request: _types.Request, options: _types.RequestOptions | Mapping[str, object] | None) -> str:
    """The content address of one request's response (NamedTuple requests as their fields;
    typed options as their fields, so a key does not depend on how options are spelt)."""
    shape = type(request).__name__
    fields = options.model_dump() if isinstance(options, BaseModel) else dict(options or {})
    payload = [model, kind, shape, request, fields]
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()


def encode_response(response: _types.Response) -> str:
    name = type(response).__name__
    if name not in _RESPONSE_TYPES:
        raise TypeError(f"cannot cache a {name}")
    return json.dumps({"type": name, "fields": dataclasses.asdict(response)}, ensure_ascii=False)


def row_checksum(key: str, kind: str, value: str) -> str:
    """What a row must hash to: any damaged byte of its key, kind or value shows."""
    return hashlib.sha256(f"{key}\0{kind}\0{value}".encode()).hexdigest()[:32]


def decode_response(text: str) -> _types.Response:
    data = json.loads(text)
    cls = _RESPONSE_TYPES[data["type"]]
    fields = data["fields"]  # the dataclass's fields as JSON: its tuples became arrays
    for key, value in fields.items():
        if isinstance(value, list):
            fields[key] = tuple(value)  # an existing key: the dict does not change size
    return cls(**fields)


class PredictionCache:
    """``get_many(keys)`` → {key: response}; ``put_many([(key, kind, response)])`` commits."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with self._guard("open"):
            self._create_file()
            self._check_header()
            self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            with self._guard("open"):
                self._claim()
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._check_pages()
        except BaseException:
            self._db.close()
            raise

    def _create_file(self) -> None:
        """An absent cache is created with the user's umask (SQLite would use 0644)."""
        if self.path.is_dir():
            raise RecordError(f"{self.path}: the prediction cache path is a directory; pass a file path as --cache")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            if not self.path.stat().st_mode & 0o222:  # marked read-only (even for root)
                raise RecordError(f"{self.path}: the prediction cache is read-only; pass another --cache") from None

    def _check_header(self) -> None:
        """Refuse a file that is plainly not ours without letting SQLite open it."""
        with self.path.open("rb") as stream:
            header = stream.read(100)
        if not header:
            return  # new (or created empty by a crashed evalharness): claimed below
        if not header.startswith(_SQLITE_MAGIC) or len(header) < 100:
            what = "not an SQLite database"
        else:
            owner = int.from_bytes(header[68:72], "big")
            if owner in (0, APPLICATION_ID):
                return
            what = f"an SQLite database of another program (application_id {owner:#x})"
        raise RecordError(
            f"{self.path}: this file is {what}, not an evalharness prediction cache; evalharness will not "
            "write into it. Pass another --cache path (if it was an evalharness cache, it is damaged: delete it)"
        )

    def _tables(self) -> dict[str, tuple[str, ...]]:
        names = [row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")]
        return {name: tuple(row[0] for row in self._db.execute("SELECT name FROM pragma_table_info(?)", (name,))) for name in names}

    def _claim(self) -> None:
        """Use the file only if it is ours (or empty); mark a new one as ours.

        Nothing is written before the file is known to be ours: ``journal_mode=WAL`` alone
        would rewrite another program's database header. An empty file is claimed; a cache
        of the previous layout (no checksum column, no application id) is adopted, its rows
        stay readable; any other database, even one without tables, is refused.
        """
        owner = self._db.execute("PRAGMA application_id").fetchone()[0]
        if owner == APPLICATION_ID:
            return
        tables = self._tables()
        ours = tables == {"predictions": _COLUMNS[:4]} or (not tables and self.path.stat().st_size == 0)
        if owner != 0 or not ours:
            if self._db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID:
                return  # another evalharness process created it meanwhile
            found = ", ".join(sorted(tables)) or "no tables"
            raise RecordError(
                f"{self.path}: this SQLite database is not an evalharness prediction cache (application_id {owner:#x}, "
                f"{found}); evalharness will not write into it. Pass another --cache path"
            )
        with self._transaction():
            # re-read inside the write lock: another process may have claimed it meanwhile
            if self._db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID:
                return
            tables = self._tables()
            if not tables:
                self._db.execute(_CREATE)
            elif tables == {"predictions": _COLUMNS[:4]}:
                self._db.execute("ALTER TABLE predictions ADD COLUMN checksum TEXT")
            self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")

    def _check_pages(self) -> None:
        problems = [row[0] for row in self._db.execute("PRAGMA integrity_check(5)")]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError("; ".join(problems))

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Every SQLite or file failure as a RecordError naming the cache and what to do."""
        try:
            yield
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            text = str(exc)
            if isinstance(exc, UnicodeDecodeError) or any(word in text for word in ("malformed", "not a database", "in database", "corrupt")):
                advice = (
                    "the file is damaged or is not an SQLite database. If it is an evalharness cache, delete it "
                    "(its predictions are recomputed) or pass another --cache"
                )
            else:
                advice = "check the disk (space, permissions) or pass another --cache"
            raise RecordError(f"{self.path}: cannot {action} the prediction cache ({text}); {advice}") from None
        except OSError as exc:
            raise RecordError(
                f"{exc.filename or self.path}: cannot {action} the prediction cache ({exc.strerror or exc}); "
                "pass another --cache or fix the location"
            ) from None

    def get_many(self, keys: Sequence[str]) -> dict[str, _types.Response]:
        found: dict[str, _types.Response] = {}
        unique = list(dict.fromkeys(keys))
        with self._guard("read"):
            for start in range(0, len(unique), _BATCH_QUERY):
                chunk = unique[start : start + _BATCH_QUERY]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key, kind, value, checksum FROM predictions WHERE key IN ({marks})", chunk)
                for key, kind, value, checksum in rows:
                    if checksum is not None and checksum != row_checksum(key, kind, value):
                        raise sqlite3.DatabaseError(f"row {key[:12]}... does not match its checksum: database disk image is corrupt")
                    try:
                        found[key] = decode_response(value)
                    except (KeyError, TypeError, ValueError):
                        continue  # a row of another cache format is a miss: recomputed and replaced
        return found

    def put_many(self, items: Iterable[tuple[str, str, _types.Response]]) -> int:
        rows = []
        for key, kind, response in items:
            value = encode_response(response)
            rows.append((key, kind, value, row_checksum(key, kind, value)))
        if rows:
            with self._guard("write to"), self._transaction():
                self._db.executemany("INSERT OR REPLACE INTO predictions (key, kind, value, checksum) VALUES (?, ?, ?, ?)", rows)
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
        with self._guard("read"):
            return int(self._db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> PredictionCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
