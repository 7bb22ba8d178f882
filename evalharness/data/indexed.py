"""Corpora kept as one small text file per example and field: ``NNNNNN_<field>.txt``.

This is the layout of See et al.'s (2017) CNN/DailyMail ``test_output`` release
(``000000_article.txt``, ``000000_reference.txt``, ``000000_decoded.txt``, ...), in a folder
or a (gzipped) tarball. Tarballs are read in one sequential pass, which keeps the 11,490
members of each CNN/DailyMail tarball under a second; folders are walked in sorted order.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

from evalharness.errors import DataError

__all__ = ["MEMBER_PATTERN", "is_indexed_archive", "iter_indexed_texts", "read_indexed"]

MEMBER_PATTERN = re.compile(r"(\d+)_([A-Za-z][A-Za-z0-9-]*)\.txt")
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def is_indexed_archive(path: Path) -> bool:
    return path.name.endswith(_ARCHIVE_SUFFIXES)


def _parse(name: str, origin: str) -> tuple[str, str] | None:
    base = name.rsplit("/", 1)[-1]
    if not base or base.startswith("."):
        return None  # hidden files (.DS_Store, ._foo from macOS tar)
    match = MEMBER_PATTERN.fullmatch(base)
    if match is None:
        raise DataError(f"{origin}: member '{name}' is not named NNNNNN_<field>.txt")
    return match.group(1), match.group(2)


def _decode(data: bytes, origin: str, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"{origin}: not valid {encoding} at byte {exc.start} ({exc.reason})") from None


def iter_indexed_texts(path: Path, *, encoding: str = "utf-8") -> Iterator[tuple[str, str, str]]:
    """``(index, field, text)`` for every ``NNNNNN_<field>.txt`` in a folder or tarball."""
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            parsed = _parse(file.name, str(path))
            if parsed is not None:
                yield (*parsed, _decode(file.read_bytes(), str(file), encoding))
        return
    try:
        with tarfile.open(path, mode="r:*") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                parsed = _parse(member.name, str(path))
                if parsed is None:
                    continue
                stream = archive.extractfile(member)
                if stream is None:  # not reached for regular files
                    continue
                yield (*parsed, _decode(stream.read(), f"{path}:{member.name}", encoding))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{path}: cannot read as a tar archive ({exc})") from None


def read_indexed(paths: list[Path], *, encoding: str = "utf-8") -> dict[str, dict[str, str]]:
    """index -> {field: text} over several folders/tarballs (e.g. articles + references).

    Every index must have the same fields; a duplicate (index, field) is an error.
    """
    by_index: dict[str, dict[str, str]] = {}
    for path in paths:
        if not path.exists():
            raise DataError(f"{path}: file not found")
        for index, field, text in iter_indexed_texts(path, encoding=encoding):
            fields = by_index.setdefault(index, {})
            if field in fields:
                raise DataError(f"{path}: '{index}_{field}.txt' appears twice")
            fields[field] = text
    if not by_index:
        raise DataError(f"{', '.join(map(str, paths))}: no NNNNNN_<field>.txt files found")
    all_fields = sorted({field for fields in by_index.values() for field in fields})
    for field in all_fields:
        lacking = sorted(index for index, fields in by_index.items() if field not in fields)
        if lacking:
            shown = ", ".join(lacking[:5]) + (", ..." if len(lacking) > 5 else "")
            raise DataError(
                f"{', '.join(map(str, paths))}: {len(lacking)} of {len(by_index)} examples have no "
                f"'{field}' file (e.g. {shown})"
            )
    return dict(sorted(by_index.items(), key=lambda item: (int(item[0]), item[0])))
