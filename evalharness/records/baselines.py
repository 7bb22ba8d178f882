"""Released baselines by name: copying a run to any fsspec filesystem with its provenance, and
reading one back for a gate.

``evalharness bless RUN --as NAME --store URL`` copies the run's record, its samples (and
``noise.json`` when present) to ``URL/NAME/`` and writes ``provenance.json`` last: who
blessed it, when, from where, the record's hash and every file's SHA-256. A gate reads a
baseline given as a run directory, the URL of a run, or ``NAME@STORE``; every file is checked
against the provenance, so a copy that was cut short or changed after blessing is refused,
never gated against. Re-blessing a name moves the previous run to ``URL/.history/NAME/``
first: a release is never lost.

Any fsspec filesystem works (local paths, ``file://``, ``memory://``, ``s3://`` with s3fs,
``gs://`` with gcsfs, ``hf://`` buckets with huggingface_hub).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol, TypedDict

from typing_extensions import NotRequired

from evalharness.errors import RecordError, UsageError
from evalharness.jsonvalues import JSONObject, expect_object
from evalharness.records.record import RESULTS_FILE, load_record, read_samples

__all__ = ["PROVENANCE", "BlessedRun", "ResolvedRun", "bless", "resolve_run", "run_files"]

PROVENANCE = "provenance.json"
STORE_SCHEMA = "evalharness.baseline/1"
NOISE_FILE = "noise.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_files(run_dir: Path) -> list[str]:
    """The files that make up a run (relative paths), after checking that the record and
    every samples file are complete: a run that would be split is refused before copying."""
    record = load_record(run_dir)
    files = []
    for name, entry in record.tasks.items():
        read_samples(run_dir, name)  # complete JSON lines, as many as the record says
        files.append(entry.samples)
    if (run_dir / NOISE_FILE).is_file():
        files.append(NOISE_FILE)
    return [*files, RESULTS_FILE]  # the record last: a reader that finds it finds the samples


class FileSystem(Protocol):
    """What is used of an fsspec filesystem (fsspec has no type hints)."""

    def cat_file(self, path: str) -> bytes: ...

    def pipe_file(self, path: str, value: bytes) -> None: ...

    def makedirs(self, path: str, exist_ok: bool = False) -> None: ...

    def exists(self, path: str) -> bool: ...

    def rm_file(self, path: str) -> None: ...


def _filesystem(url: str) -> tuple[FileSystem, str]:
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as exc:
        raise UsageError(f"{url}: this filesystem needs an extra package ({exc}); install it (e.g. s3fs, gcsfs)") from None
    except ValueError as exc:
        raise UsageError(f"{url}: not a usable fsspec URL ({exc})") from None


def _join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"--as {name!r}: a baseline name is letters, digits, '.', '_' and '-' (e.g. release-1.4), not starting with '.' or '-'")
    return name


class Provenance(TypedDict):
    """``provenance.json`` as ``bless`` writes it."""

    schema: str
    name: str
    blessed_by: str
    blessed_at: str
    source: str
    host: str
    run_id: str
    model: str
    model_fingerprint: str
    record_sha256: str
    files: dict[str, str]  # relative path -> SHA-256
    evalharness: str
    superseded: NotRequired[str]


@dataclass(frozen=True)
class BlessedRun:
    url: str
    provenance: Provenance
    superseded: str | None  # where the previous run of this name was moved


def _who(explicit: str | None) -> str:
    if explicit:
        return explicit
    for variable in ("GITHUB_ACTOR", "USER", "USERNAME"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _read(fs: FileSystem, path: str) -> bytes:
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        raise RecordError(f"{path}: not found") from None


def _copy_tree(fs: FileSystem, source: str, target: str, files: list[str]) -> None:
    for relative in files:
        data = _read(fs, _join(source, relative))
        fs.makedirs(_join(target, *relative.split("/")[:-1]) if "/" in relative else target, exist_ok=True)
        fs.pipe_file(_join(target, relative), data)


def _provenance(fs: FileSystem, root: str, shown: str) -> JSONObject:
    """The ``provenance.json`` under ``root`` (named ``shown`` in messages), as a JSON object
    (its file list is checked by ``_verify``)."""
    try:
        data = json.loads(_read(fs, _join(root, PROVENANCE)))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RecordError(f"{_join(shown, PROVENANCE)}: not valid JSON; the provenance is damaged") from None
    return expect_object(data, f"{_join(shown, PROVENANCE)}: the provenance is damaged", error=RecordError)


def _supersede(fs: FileSystem, root: str, name: str, target: str) -> str:
    """Move the current run of ``name`` under ``.history/NAME/<blessed_at>-<record hash>``
    (verified) before it is replaced."""
    old = _provenance(fs, target, target)
    stamp = re.sub(r"[^0-9A-Za-z]", "", str(old.get("blessed_at", "")))
    history = _join(root, ".history", name, f"{stamp}-{str(old.get('record_sha256', ''))[:12]}")
    old_files = old.get("files")
    files = [*(old_files if isinstance(old_files, dict) else {}), PROVENANCE]
    _copy_tree(fs, target, history, files)
    _verify(fs, history, old)
    for relative in files:
        fs.rm_file(_join(target, relative))
    return history


def bless(
    run_dir: str | os.PathLike[str], *, name: str, store: str, replace: bool = False, who: str | None = None
) -> BlessedRun:
    """Copy the run in ``run_dir`` to ``store/name/`` with its provenance; refuses an existing
    name unless ``replace`` (the previous run is then kept under ``.history``)."""
    run_dir = Path(run_dir)
    name = _check_name(name)
    files = run_files(run_dir)
    contents = {relative: (run_dir / relative).read_bytes() for relative in files}
    record = load_record(run_dir)
    fs, root = _filesystem(store)
    target = _join(root, name)
    superseded = None
    if fs.exists(_join(target, PROVENANCE)):
        if not replace:
            raise UsageError(
                f"{store}: '{name}' is already blessed; pass --replace to supersede it (the current one is kept under "
                f".history/{name}/)"
            )
        superseded = _supersede(fs, root, name, target)
    elif fs.exists(_join(target, RESULTS_FILE)):
        raise UsageError(f"{_join(store, name)} holds a run without {PROVENANCE}; choose another name or remove it")
    provenance: Provenance = {
        "schema": STORE_SCHEMA,
        "name": name,
        "blessed_by": _who(who),
        "blessed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": str(run_dir.resolve()),
        "host": platform.node(),
        "run_id": record.run_id,
        "model": record.model.name,
        "model_fingerprint": record.model.fingerprint,
        "record_sha256": _sha256(contents[RESULTS_FILE]),
        "files": {relative: _sha256(data) for relative, data in contents.items()},
        "evalharness": _version(),
    }
    if superseded:
        provenance["superseded"] = superseded
    for relative, data in contents.items():
        fs.makedirs(_join(target, *relative.split("/")[:-1]) if "/" in relative else target, exist_ok=True)
        fs.pipe_file(_join(target, relative), data)
    _verify(fs, target, provenance)  # what was written is what was read
    fs.pipe_file(_join(target, PROVENANCE), (json.dumps(provenance, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return BlessedRun(_join(store, name), provenance, superseded)


def _version() -> str:
    from evalharness.version import __version__

    return __version__


def _verify(fs: FileSystem, root: str, provenance: Mapping[str, object]) -> None:
    files = provenance.get("files")
    if not isinstance(files, dict) or RESULTS_FILE not in files:
        raise RecordError(f"{_join(root, PROVENANCE)}: no file list with {RESULTS_FILE}; the provenance is damaged")
    for relative, expected in files.items():
        found = _sha256(_read(fs, _join(root, relative)))
        if found != expected:
            raise RecordError(
                f"{_join(root, relative)}: SHA-256 {found[:16]}... differs from the blessed {str(expected)[:16]}...; "
                "the copy was cut short or changed after blessing: re-bless the run"
            )


@dataclass(frozen=True)
class ResolvedRun:
    """A run available as a local directory, and where it came from."""

    path: Path
    source: str
    provenance: JSONObject | None = None

    def info(self) -> JSONObject:
        return {"source": self.source, **({"provenance": self.provenance} if self.provenance else {})}


def _split_named(spec: str) -> tuple[str, str] | None:
    """``NAME@STORE`` -> (name, store); None for anything else."""
    if "@" not in spec:
        return None
    name, store = spec.split("@", 1)
    return (name, store) if _NAME.match(name) and store else None


def resolve_run(spec: str, *, workdir: Path) -> ResolvedRun:
    """A run directory as given, or a copy in ``workdir`` of a run at an fsspec URL or a
    blessed ``NAME@STORE`` (verified against its provenance)."""
    local = Path(spec)
    if local.exists() or ("://" not in spec and _split_named(spec) is None):
        return ResolvedRun(local, spec)
    named = _split_named(spec) if "://" not in spec.split("@", 1)[0] else None
    url = _join(named[1], named[0]) if named else spec
    fs, root = _filesystem(url)
    has_provenance = fs.exists(_join(root, PROVENANCE))
    if named and not has_provenance:
        raise RecordError(f"{spec}: no blessed run '{named[0]}' in {named[1]} (no {PROVENANCE}); bless one with `evalharness bless`")
    target = workdir / (named[0] if named else "run")
    provenance = None
    if has_provenance:
        provenance = _provenance(fs, root, url)
        _verify(fs, root, provenance)
        files = list(expect_object(provenance["files"], f"{_join(url, PROVENANCE)}: files", error=RecordError))
    else:
        if not fs.exists(_join(root, RESULTS_FILE)):
            raise RecordError(f"{url}: no run record here (expected {RESULTS_FILE})")
        files = [RESULTS_FILE]
    _download(fs, root, target, files, url)
    if provenance is None:  # an unblessed run at a URL: fetch what its record names
        record = load_record(target)
        extra = [NOISE_FILE] if fs.exists(_join(root, NOISE_FILE)) else []
        _download(fs, root, target, [entry.samples for entry in record.tasks.values()] + extra, url)
    run_files(target)  # the copy is a complete, valid run
    return ResolvedRun(target, spec, provenance)


def _download(fs: FileSystem, root: str, target: Path, files: list[str], url: str) -> None:
    for relative in files:
        destination = target / relative
        if not destination.resolve().is_relative_to(target.resolve()):
            raise RecordError(f"{url}: file '{relative}' would be written outside the run directory")
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(_read(fs, _join(root, relative)))
