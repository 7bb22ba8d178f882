"""Earlier versions of a published board, kept next to it (``DIR/history/``).

Rebuilding a site over an earlier one first archives the earlier ``data/leaderboard.json``
(unless nothing changed) as ``history/<n>-<sha256 prefix>.json`` and lists it in
``history/index.json``; the index page says which rows the new version no longer has, and
``history.html`` lists every version with what it added and removed. Nothing is deleted:
a row that disappears from the runs stays readable in the version that had it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from evalharness.errors import RecordError
from evalharness.jsonvalues import JsonValue
from evalharness.leaderboard.output import to_json, write_public_text
from evalharness.leaderboard.table import Leaderboard
from evalharness.report.render import render_page

if TYPE_CHECKING:
    from evalharness.report.site_model import Site

__all__ = ["History", "archive_previous", "history_page"]

ENTRY = re.compile(r"[0-9]+-[0-9a-f]{8}\.json")


class _Current(TypedDict):
    title: str
    models: list[str]


class _Entry(TypedDict):
    """An archived version of the board (``history/index.json`` lists these)."""

    file: str
    archived: str
    title: str
    models: list[str]


class _Version(TypedDict):
    """A line of the history page."""

    label: str
    href: str
    title: str
    models: list[str]
    added: list[str]
    removed: list[str]


@dataclass
class History:
    """Archived versions (newest first) and the rows the previous version had that the
    current one has not."""

    entries: list[_Entry] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    previous_when: str = ""
    current: _Current = field(default_factory=lambda: _Current(title="", models=[]))


def _models(data: JsonValue) -> list[str]:
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        return []
    return [str(row.get("model_id")) for row in rows if isinstance(row, dict) and row.get("model_id") is not None]


def _load_entries(folder: Path) -> list[_Entry]:
    """The archive's index, rebuilt from the files themselves when it is missing or damaged
    (an index never hides an archived file)."""
    listed = _read(folder / "index.json")
    entries = {
        name: _entry(e, name)
        for e in (listed if isinstance(listed, list) else [])
        if isinstance(e, dict) and isinstance(name := e.get("file"), str) and ENTRY.fullmatch(name)
    }
    entries = {name: entry for name, entry in entries.items() if (folder / name).is_file()}
    for path in folder.glob("*.json"):
        if ENTRY.fullmatch(path.name) and path.name not in entries:
            entries[path.name] = {"file": path.name, "archived": "", "title": "", "models": _models(_read(path))}
    return sorted(entries.values(), key=lambda e: -int(e["file"].split("-", 1)[0]))


def _entry(raw: Mapping[str, JsonValue], file: str) -> _Entry:
    """An index entry with the fields pages rely on, whatever a hand-edited index holds."""
    models, archived, title = raw.get("models"), raw.get("archived"), raw.get("title")
    return {
        "file": file,
        "archived": archived if isinstance(archived, str) else "",
        "title": title if isinstance(title, str) else "",
        "models": [str(m) for m in models] if isinstance(models, list) else [],
    }


def _write_bytes(path: Path, data: bytes) -> None:
    """The archived file exactly as it was published, written atomically."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)


def _read(path: Path) -> JsonValue:
    """A JSON file's content; None when it cannot be read (pages say so, nothing is lost)."""
    try:
        value: JsonValue = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value


def archive_previous(site_dir: Path, board: Leaderboard) -> History:
    """Archive the board currently in ``site_dir`` (if any, and if it differs from ``board``)."""
    folder = site_dir / "history"
    if folder.exists() and not folder.is_dir():
        raise RecordError(f"{folder} is not a folder: it is where earlier versions of the board are kept; move it away")
    previous_path = site_dir / "data" / "leaderboard.json"
    current: JsonValue = json.loads(json.dumps(to_json(board), ensure_ascii=False, allow_nan=False))
    history = History(current={"title": board.title, "models": _models(current)})
    entries = _load_entries(folder) if folder.is_dir() else []
    if previous_path.is_file():
        raw = previous_path.read_bytes()
        previous = _read(previous_path)
        if previous != current:
            folder.mkdir(exist_ok=True)
            number = 1 + max((int(e["file"].split("-", 1)[0]) for e in entries), default=0)
            name = f"{number}-{hashlib.sha256(raw).hexdigest()[:8]}.json"
            _write_bytes(folder / name, raw)
            when = datetime.fromtimestamp(previous_path.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            title = previous.get("title") if isinstance(previous, dict) else None
            entries.insert(0, {"file": name, "archived": when, "title": str(title or "(unreadable board)"), "models": _models(previous)})
        if entries:
            history.previous_when = entries[0]["archived"] or entries[0]["file"]
            history.removed = [m for m in entries[0]["models"] if m not in set(history.current["models"])]
    if entries:
        write_public_text(folder / "index.json", json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    history.entries = entries
    return history


def history_page(site: Site, history: History) -> None:
    """Every version, newest first, with the rows each added and removed."""
    versions: list[_Version] = [{"label": "current", "href": "data/leaderboard.json", "title": site.board.title,
                                 "models": history.current["models"], "added": [], "removed": []}]
    versions += [{"label": e["archived"] or e["file"], "href": f"history/{e['file']}", "title": e["title"], "models": e["models"],
                  "added": [], "removed": []} for e in history.entries]
    for newer, older in zip(versions, versions[1:], strict=False):
        newer["added"] = [m for m in newer["models"] if m not in set(older["models"])]
        newer["removed"] = [m for m in older["models"] if m not in set(newer["models"])]
    html = render_page("site_history.html.j2", title=f"History — {site.board.title}", board_title=site.board.title, versions=versions)
    site.write("history.html", html)
