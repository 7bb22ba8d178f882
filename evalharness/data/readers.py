"""Readers for local data files: one small function per format, chosen by name.

Each reader turns one file into rows (dicts of column name -> raw value). Options are
validated per reader so a misspelt option is an error, not a silent default. Decoding
problems name the file and the byte or line.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, field_validator, model_validator

from evalharness.config import StrictModel
from evalharness.data.bias_readers import (
    BBQOptions,
    WinoBiasOptions,
    read_bbq,
    read_winobias,
)
from evalharness.data.textio import (
    Encoding,
    Row,
    json_lines,
    loads_json,
    read_text,
    split_lines,
)
from evalharness.errors import DataError
from evalharness.jsonvalues import JSONObject, JsonValue, json_type_name

__all__ = ["READERS", "Reader", "Row", "read_file", "read_files"]

csv.field_size_limit(2**31 - 1)  # WMT23 paragraphs and CNN/DM articles exceed the default


class DelimitedOptions(StrictModel):
    header: bool = True
    column_names: list[str] | None = Field(default=None, min_length=1, description="names when no header")
    encoding: Encoding = "utf-8-sig"  # strips a BOM (GLUE MRPC has one) and is UTF-8 otherwise
    quoting: Literal["none", "minimal"] | None = None  # default: none for tsv, minimal for csv
    extra_fields: Literal["error", "ignore"] = "error"

    @field_validator("column_names")
    @classmethod
    def _distinct(cls, names: list[str] | None) -> list[str] | None:
        twice = sorted({name for name in names or [] if (names or []).count(name) > 1})
        if twice:
            raise ValueError(f"{twice} listed twice: one column would silently replace the other")
        return names

    @model_validator(mode="after")
    def _names_without_header(self) -> DelimitedOptions:
        if not self.header and self.column_names is None:
            raise ValueError("'header: false' needs 'column_names'")
        return self


class JsonOptions(StrictModel):
    encoding: Encoding = "utf-8-sig"
    records_key: str | None = Field(default=None, description="key holding the list of records")


class TextOptions(StrictModel):
    encoding: Encoding = "utf-8-sig"
    unit: Literal["line", "file"] = "line"
    field: str = "text"
    skip_blank: bool = False
    strip: bool = Field(default=False, description="strip surrounding whitespace from each line")


class SquadOptions(StrictModel):
    encoding: Encoding = "utf-8-sig"


class WikitextOptions(StrictModel):
    encoding: Encoding = "utf-8-sig"


class ParquetOptions(StrictModel):
    pass


class ParallelTextOptions(StrictModel):
    encoding: Encoding = "utf-8"  # as sacrebleu reads references: a BOM would be scored as text
    source_field: str = "source"
    references_field: str = "references"


class IndexedTextOptions(StrictModel):
    encoding: Encoding = "utf-8"


def _read_delimited(path: Path, options: DelimitedOptions, delimiter: str, quoting: str) -> Iterator[Row]:
    text = read_text(path, options.encoding)
    none = (options.quoting or quoting) == "none"
    # Only "\n" ends a record: str.splitlines() would also split on U+2028 and friends.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=csv.QUOTE_NONE if none else csv.QUOTE_MINIMAL)
    names = options.column_names
    for fields in reader:
        line_number = reader.line_num
        if names is None:
            twice = sorted({name for name in fields if fields.count(name) > 1})
            if twice:
                raise DataError(f"{path}:{line_number}: header names {twice} twice; one column would replace the other")
            names = fields
            continue
        if line_number == 1 and options.header:
            continue  # a header line when explicit column_names override it
        if not fields:
            continue
        if len(fields) < len(names) or (len(fields) > len(names) and options.extra_fields == "error"):
            raise DataError(
                f"{path}:{line_number}: expected {len(names)} fields ({', '.join(names)}), "
                f"found {len(fields)}"
            )
        yield dict(zip(names, fields))


def _read_tsv(path: Path, options: DelimitedOptions) -> Iterator[Row]:
    return _read_delimited(path, options, "\t", "none")


def _read_csv(path: Path, options: DelimitedOptions) -> Iterator[Row]:
    return _read_delimited(path, options, ",", "minimal")


def _read_jsonl(path: Path, options: JsonOptions) -> Iterator[Row]:
    for _, row in json_lines(path, options.encoding):
        yield row


def _load_json(path: Path, encoding: str) -> JsonValue:
    try:
        return loads_json(read_text(path, encoding))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    except ValueError as exc:  # a key twice in one object
        raise DataError(f"{path}: {exc}") from None


def _read_json(path: Path, options: JsonOptions) -> Iterator[Row]:
    document = _load_json(path, options.encoding)
    if options.records_key is not None and not (isinstance(document, dict) and options.records_key in document):
        raise DataError(f"{path}: no top-level key '{options.records_key}' (reader option 'records_key')")
    records = document[options.records_key] if options.records_key and isinstance(document, dict) else document
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataError(f"{path}: expected a list of objects (set 'records_key' if nested)")
    yield from (record for record in records if isinstance(record, dict))  # every one is


def _read_text_file(path: Path, options: TextOptions) -> Iterator[Row]:
    text = read_text(path, options.encoding)
    if options.unit == "file":
        yield {options.field: text}
        return
    for line in split_lines(text):
        if options.skip_blank and not line.strip():
            continue
        yield {options.field: line.strip() if options.strip else line}


def _objects(parent: JsonValue, key: str, where: str) -> list[JSONObject]:
    """``parent[key]``, a list of objects, or an error naming where the SQuAD layout breaks."""
    items = parent.get(key, []) if isinstance(parent, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise DataError(f"{where}: not SQuAD JSON (expected an object whose '{key}' is a list of objects)")
    return [item for item in items if isinstance(item, dict)]  # every one is


def _answer_texts(answers: JsonValue) -> list[JsonValue]:
    """The ``text`` of each SQuAD answer; KeyError or TypeError (a missing or bad field)."""
    if not isinstance(answers, list):
        raise TypeError(f"'answers' is {json_type_name(answers)}, not a list of answers")
    texts: list[JsonValue] = []
    for answer in answers:
        if not isinstance(answer, dict):
            raise TypeError(f"an answer is {json_type_name(answer)}, not an object")
        texts.append(answer["text"])
    return texts


def _read_squad(path: Path, options: SquadOptions) -> Iterator[Row]:
    """SQuAD JSON (``data`` → articles → ``paragraphs`` → ``qas``), one row per question.

    Gold answers are the ``answers`` texts only (``answer_start`` is not needed, so the
    reconstructed dev files work); v2.0 ``plausible_answers`` are never read: an
    unanswerable question has ``answers: []``.
    """
    document = _load_json(path, options.encoding)
    articles = document.get("data") if isinstance(document, dict) else None
    if not isinstance(articles, list):
        raise DataError(f"{path}: not SQuAD JSON (expected an object with a 'data' list of articles)")
    for a, article in enumerate(articles):
        paragraphs = _objects(article, "paragraphs", f"{path}: data[{a}]")
        assert isinstance(article, dict)  # _objects refused anything else
        for p, paragraph in enumerate(paragraphs):
            for q, qa in enumerate(_objects(paragraph, "qas", f"{path}: data[{a}].paragraphs[{p}]")):
                where = f"{path}: data[{a}].paragraphs[{p}].qas[{q}]"
                try:
                    answers = _answer_texts(qa["answers"])  # absent is not unanswerable
                    row: JSONObject = {
                        "id": qa["id"],
                        "title": article.get("title", ""),
                        "context": paragraph["context"],
                        "question": qa["question"],
                        "answers": answers,
                    }
                except KeyError as exc:
                    raise DataError(f"{where}: missing field {exc}") from None
                except TypeError as exc:  # answers that are not a list of objects
                    raise DataError(f"{where}: {exc}") from None
                if "is_impossible" in qa:
                    if bool(qa["is_impossible"]) == bool(answers):
                        raise DataError(f"{where}: is_impossible={qa['is_impossible']} but {len(answers)} answers")
                    row["is_impossible"] = bool(qa["is_impossible"])
                yield row


def _is_article_heading(line: str) -> bool:
    """A top-level `` = Title = `` line; section headings (`` = = Section = = ``) are not."""
    collapsed = line.replace("= = =", "===").replace("= =", "==").strip()
    return collapsed.startswith("= ") and collapsed.endswith(" =")


def _read_wikitext(path: Path, options: WikitextOptions) -> Iterator[Row]:
    """WikiText ``wiki.*.tokens``/``.raw`` split into articles, one row per article.

    Replicates the document-level WikiText that lm-evaluation-harness evaluates
    (``EleutherAI/wikitext_document_level``): lines are split on ``\\n``, a new article starts
    at each top-level heading, an article is its lines joined with ``\\n``, and text before
    the first heading is kept only if it is not blank.
    """
    lines = [line.removesuffix("\r") for line in read_text(path, options.encoding).split("\n")]
    article: list[str] = []
    pages: list[str] = []
    for line in lines:
        if _is_article_heading(line):
            page = "\n".join(article)
            if page.strip():
                pages.append(page)
            article = []
        article.append(line)
    pages.append("\n".join(article))
    for index, page in enumerate(pages):
        title = page.split("\n", 1)[0].strip().strip("=").strip()
        yield {"id": str(index), "title": title, "text": page}


def _read_parquet(path: Path, options: ParquetOptions) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for bad files
        raise DataError(f"{path}: cannot read parquet ({exc})") from None
    twice = sorted({name for name in table.column_names if table.column_names.count(name) > 1})
    if twice:
        raise DataError(f"{path}: columns {twice} appear twice; one would replace the other")
    yield from table.to_pylist()


def _read_parallel_text(paths: list[Path], options: ParallelTextOptions) -> Iterator[Row]:
    """Line-aligned parallel text (WMT ``txt`` releases): the first file holds the sources,
    each further file one reference per line. Row id = 0-based line number; the references
    of a line become a list, in file order (``references: [0]`` selects the first file)."""
    if len(paths) < 2:
        raise DataError(f"{paths[0]}: format 'parallel_text' needs a source file and at least one reference file")
    source, *reference_files = paths
    sources = split_lines(read_text(source, options.encoding))
    columns = []
    for path in reference_files:
        lines = split_lines(read_text(path, options.encoding))
        if len(lines) != len(sources):
            raise DataError(
                f"{path}: {len(lines)} lines, but the source file {source} has {len(sources)}; "
                "parallel files must be line-aligned"
            )
        columns.append(lines)
    for number, text in enumerate(sources):
        yield {"id": str(number), options.source_field: text, options.references_field: [c[number] for c in columns]}


def _read_indexed_text(paths: list[Path], options: IndexedTextOptions) -> Iterator[Row]:
    """Folders or tarballs of ``NNNNNN_<field>.txt`` files (See et al.'s CNN/DailyMail
    release): one row per index with one column per field, id = the index as written."""
    from evalharness.data.indexed import read_indexed

    for index, fields in read_indexed(paths, encoding=options.encoding).items():
        yield {"id": index, **fields}


@dataclass(frozen=True)
class Reader:
    """``read(path, options)`` per file; a ``multi_file`` reader gets all files at once
    (``read(paths, options)``) because it joins them column-wise, not row-wise. ``options``
    are the reader's own options model, validated (``loader.check_local_source``)."""

    options: type[StrictModel]
    read: Callable[[Path | list[Path], StrictModel], Iterator[Row]]
    multi_file: bool = False
    min_files: int = 1


OptionsT = TypeVar("OptionsT", bound=StrictModel)


def _per_file(options: type[OptionsT], read: Callable[[Path, OptionsT], Iterator[Row]]) -> Reader:
    def read_one(source: Path | list[Path], given: StrictModel) -> Iterator[Row]:
        assert isinstance(source, Path) and isinstance(given, options)  # read_file passes these
        return read(source, given)

    return Reader(options, read_one)


def _multi_file(options: type[OptionsT], read: Callable[[list[Path], OptionsT], Iterator[Row]], *, min_files: int = 1) -> Reader:
    def read_all(source: Path | list[Path], given: StrictModel) -> Iterator[Row]:
        assert isinstance(source, list) and isinstance(given, options)  # read_files passes these
        return read(source, given)

    return Reader(options, read_all, multi_file=True, min_files=min_files)


READERS: dict[str, Reader] = {
    "tsv": _per_file(DelimitedOptions, _read_tsv),
    "csv": _per_file(DelimitedOptions, _read_csv),
    "jsonl": _per_file(JsonOptions, _read_jsonl),
    "json": _per_file(JsonOptions, _read_json),
    "txt": _per_file(TextOptions, _read_text_file),
    "parquet": _per_file(ParquetOptions, _read_parquet),
    "squad_json": _per_file(SquadOptions, _read_squad),
    "wikitext": _per_file(WikitextOptions, _read_wikitext),
    "parallel_text": _multi_file(ParallelTextOptions, _read_parallel_text, min_files=2),
    "indexed_text": _multi_file(IndexedTextOptions, _read_indexed_text),
    "bbq_jsonl": _per_file(BBQOptions, read_bbq),
    "winobias": _per_file(WinoBiasOptions, read_winobias),
}


def read_file(path: Path, reader: Reader, options: StrictModel) -> list[Row]:
    """Read one file fully with a reader and its validated options."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    return list(reader.read(path, options))


def read_files(paths: list[Path], reader: Reader, options: StrictModel) -> list[Row]:
    """Rows from all of a source's files: one call for a multi-file reader, else concatenated."""
    if not reader.multi_file:
        return [row for path in paths for row in read_file(path, reader, options)]
    for path in paths:
        if not path.exists():
            raise DataError(f"{path}: file not found")
    return list(reader.read(paths, options))
