"""Prediction files written outside evalharness, read into each task kind's prediction contract.

``evalharness score`` turns a system's output file into the same predictions a formulation
would produce (``spec.kinds``: ``prediction``), aligned with the task's examples by the
dataset's own ids (SQuAD question ids, CNN/DailyMail six-digit indices, WMT 0-based line
numbers) or, for plain text, by line order. A missing or extra id, or a wrong line count, is
an error that says how many and which: a silently partial score is worse than none.

Formats are a mapping of name -> reader (the extension point; e.g. BBQ prediction files are
one entry more). Each format says which task kinds it serves and which paths it recognises,
so ``--format`` is rarely needed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from evalharness.data.indexed import is_indexed_archive, read_indexed
from evalharness.data.loader import LoadedData
from evalharness.data.textio import json_lines, read_text, split_lines
from evalharness.errors import DataError, UsageError, did_you_mean
from evalharness.external.bbq_predictions import BBQ_COLUMNS, bbq_reader, looks_like_bbq
from evalharness.jsonvalues import JSONArray, JSONObject, JsonValue
from evalharness.spec.loader import Task
from evalharness.spec.predictions import parse_prediction, probability
from evalharness.types import Decoded, Example

__all__ = [
    "PREDICTION_FORMATS",
    "PredictionFormat",
    "Predictions",
    "align_predictions",
    "check_scorable",
    "detect_format",
    "fingerprint_paths",
    "read_predictions",
]

Values: TypeAlias = JSONObject | JSONArray  # by example id, or in example order


@dataclass(frozen=True)
class Predictions:
    """A prediction file as read, before alignment with the task's examples."""

    values: Values
    format: str
    paths: tuple[Path, ...]  # the predictions file (and the no-answer-probability file)
    fingerprint: str


@dataclass(frozen=True)
class ReadOptions:
    no_answer_probs: Path | None = None


@dataclass(frozen=True)
class PredictionFormat:
    """``read(path, options)`` returns values by id (a dict) or in example order (a list)."""

    read: Callable[[Path, ReadOptions], Values]
    description: str
    matches: Callable[[Path], bool]
    kinds: frozenset[str] | None = None  # task kinds served; None: any
    uses_no_answer_probs: bool = False


# -- helpers ----------------------------------------------------------------------------


def _unique_object(path: Path) -> Callable[[list[tuple[str, JsonValue]]], JSONObject]:
    def hook(pairs: list[tuple[str, JsonValue]]) -> JSONObject:
        result: JSONObject = {}
        for key, value in pairs:
            if key in result:
                raise DataError(f"{path}: key '{key}' appears twice")
            result[key] = value
        return result

    return hook


def _load_json_object(path: Path) -> JSONObject:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        document = json.loads(read_text(path, "utf-8-sig"), object_pairs_hook=_unique_object(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(document, dict):
        raise DataError(f"{path}: expected a JSON object mapping example ids to predictions")
    return document


def _example_id(value: object, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{where}: 'id' should be a string or an integer, got {value!r}")
    return str(value)


def _examples(ids: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(i) for i in ids[:limit])
    return shown + (", ..." if len(ids) > limit else "")


# -- readers ----------------------------------------------------------------------------


def _read_squad(path: Path, options: ReadOptions) -> Values:
    """SQuAD's official prediction file ``{question_id: answer_text}`` ("" = no answer), plus
    optionally the v2.0 evaluation script's ``--na-prob-file`` ``{question_id: probability}``."""
    answers = _load_json_object(path)
    for qid, answer in answers.items():
        if not isinstance(answer, str):
            raise DataError(f"{path}: the answer for '{qid}' should be a string, got {type(answer).__name__}")
    if options.no_answer_probs is None:
        plain: JSONObject = {qid: {"text": text, "no_answer_probability": None} for qid, text in answers.items()}
        return plain
    probs_path = options.no_answer_probs
    probs = _load_json_object(probs_path)
    missing = [qid for qid in answers if qid not in probs]
    extra = [qid for qid in probs if qid not in answers]
    if missing or extra:
        raise DataError(
            f"{probs_path}: the no-answer probabilities do not match the predictions in {path}: "
            f"{len(missing)} missing (e.g. {_examples(missing)}), {len(extra)} extra (e.g. {_examples(extra)})"
        )
    with_probs: JSONObject = {
        qid: {"text": text, "no_answer_probability": probability(probs[qid], f"{probs_path}: '{qid}'")}
        for qid, text in answers.items()
    }
    return with_probs


def _read_lines(path: Path, options: ReadOptions) -> Values:
    """One prediction per line, in the task's example order, read as sacrebleu reads files:
    UTF-8, lines split on "\\n" only, a leading byte-order mark kept as text (WMT23's official
    chrF for AIRC en-de includes the BOM its output file starts with)."""
    return [*split_lines(read_text(path, "utf-8"))]


def _read_jsonl(path: Path, options: ReadOptions) -> Values:
    """``{"id": ..., "prediction": ...}`` per line; other keys are ignored."""
    values: JSONObject = {}
    for where, row in json_lines(path, "utf-8-sig"):
        if "id" not in row or "prediction" not in row:
            raise DataError(f'{where}: expected an object with "id" and "prediction"')
        example_id = _example_id(row["id"], where)
        if example_id in values:
            raise DataError(f"{where}: id '{example_id}' appears twice")
        values[example_id] = row["prediction"]
    return values


def _read_decoded_files(path: Path, options: ReadOptions) -> Values:
    """A folder or tarball of ``NNNNNN_decoded.txt`` (See et al.'s CNN/DailyMail release)."""
    by_index = read_indexed([path])
    fields = sorted({field for item in by_index.values() for field in item})
    if len(fields) != 1:
        raise DataError(f"{path}: expected one kind of file (NNNNNN_decoded.txt), found {', '.join(fields)}")
    (field,) = fields
    texts: JSONObject = {index: item[field] for index, item in by_index.items()}
    return texts


def _bbq_matcher(name: str) -> Callable[[Path], bool]:
    """Auto-detection for the BBQ format ``name`` (only the plain "bbq" claims a file)."""
    return lambda path: name == "bbq" and looks_like_bbq(path)


PREDICTION_FORMATS: dict[str, PredictionFormat] = {
    **{
        name: PredictionFormat(
            bbq_reader(column),
            f"BBQ release JSONL (file or folder), answer in column '{column}'",
            matches=_bbq_matcher(name),
            kinds=frozenset({"multiple_choice"}),
        )
        for name, column in BBQ_COLUMNS.items()
    },
    "squad": PredictionFormat(
        _read_squad,
        "SQuAD official JSON {question_id: answer} (+ --no-answer-probs JSON for v2.0)",
        matches=lambda path: path.suffix == ".json",
        kinds=frozenset({"extractive_qa"}),
        uses_no_answer_probs=True,
    ),
    "decoded_files": PredictionFormat(
        _read_decoded_files,
        "folder or .tar.gz of NNNNNN_decoded.txt files (CNN/DailyMail release layout)",
        matches=lambda path: path.is_dir() or is_indexed_archive(path),
        kinds=frozenset({"generation"}),
    ),
    "jsonl": PredictionFormat(
        _read_jsonl,
        'JSON lines {"id": ..., "prediction": ...} for any task kind',
        matches=lambda path: path.suffix == ".jsonl",
    ),
    "lines": PredictionFormat(
        _read_lines,
        "plain text, one prediction per line in the task's example order",
        matches=lambda path: path.is_file() and path.suffix not in {".json", ".jsonl"},
        kinds=frozenset({"generation"}),
    ),
}


def detect_format(path: Path, kind: str) -> str:
    """The first format serving ``kind`` that recognises ``path``."""
    for name, candidate in PREDICTION_FORMATS.items():
        if (candidate.kinds is None or kind in candidate.kinds) and candidate.matches(path):
            return name
    if not path.exists():
        raise UsageError(f"--predictions {path}: no such file or directory")
    usable = [n for n, f in PREDICTION_FORMATS.items() if f.kinds is None or kind in f.kinds]
    raise UsageError(f"--predictions {path}: not a recognised prediction file for a '{kind}' task (formats: {', '.join(usable)})")


def fingerprint_paths(paths: Sequence[Path]) -> str:
    """Hash of the files' bytes (a folder: every file's relative path and bytes, sorted)."""
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            name = file.relative_to(path).as_posix() if path.is_dir() else ""
            digest.update(name.encode("utf-8") + b"\0")
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    return "sha256:" + digest.hexdigest()[:16]


def check_scorable(task: Task) -> None:
    """Refuse tasks whose predictions a file cannot hold (before any data is read)."""
    counterfactual = task.spec.counterfactual
    if counterfactual is not None:
        base = f" {counterfactual.base_task}" if counterfactual.base_task else ""
        raise UsageError(
            f"{task.name} is a counterfactual probe: it compares a model's answers on original and perturbed "
            f"inputs, which a prediction file does not hold; run the model on it (evalharness run) or score the base task{base} instead"
        )


def read_predictions(
    path: Path, task: Task, *, format: str | None = None, no_answer_probs: Path | None = None
) -> Predictions:
    """Read a prediction file for ``task`` (format detected from the path unless given)."""
    kind = task.spec.kind
    check_scorable(task)
    if format is None:
        format = detect_format(path, kind)
    elif format not in PREDICTION_FORMATS:
        raise UsageError(f"--format: unknown format '{format}'{did_you_mean(format, PREDICTION_FORMATS)} (known: {', '.join(PREDICTION_FORMATS)})")
    chosen = PREDICTION_FORMATS[format]
    if chosen.kinds is not None and kind not in chosen.kinds:
        raise UsageError(f"--format {format} does not apply to '{kind}' tasks such as {task.name}")
    if no_answer_probs is not None and not chosen.uses_no_answer_probs:
        raise UsageError(f"--no-answer-probs applies to SQuAD prediction files, not to format '{format}'")
    if not path.exists():
        raise DataError(f"{path}: file not found")
    values = chosen.read(path, ReadOptions(no_answer_probs=no_answer_probs))
    paths = (path,) if no_answer_probs is None else (path, no_answer_probs)
    return Predictions(values, format, paths, fingerprint_paths(paths))


_SHOWN_CHARS = 500


def _clip(text: JsonValue) -> JsonValue:
    if isinstance(text, str) and len(text) > _SHOWN_CHARS:
        return text[:_SHOWN_CHARS] + " [...]"
    return text


# Task kind -> what samples files show as the example's input (long texts clipped).
SHOWN_INPUTS: dict[str, Callable[[Example], JsonValue]] = {
    "generation": lambda example: _clip(example.fields.get("source")),
    "extractive_qa": lambda example: example.fields.get("question"),
    "classification": lambda example: example.fields.get("text"),
    "regression": lambda example: example.fields.get("text"),
    "language_modeling": lambda example: _clip(example.fields.get("text")),
    "multiple_choice": lambda example: example.fields.get("question") or example.fields.get("context"),
    "stereotype_pairs": lambda example: {"more": example.fields.get("sent_more"), "less": example.fields.get("sent_less")},
}


def _mismatch(predictions: Predictions, task: Task, ids: Sequence[str], values: Mapping[str, object]) -> DataError:
    known = set(ids)
    missing = [i for i in ids if i not in values]
    extra = [k for k in values if k not in known]
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the task's {len(ids)} examples have no prediction (e.g. {_examples(missing)})")
    if extra:
        parts.append(f"{len(extra)} predictions have ids that are not in the task (e.g. {_examples(extra)})")
    return DataError(
        f"{predictions.paths[0]}: predictions do not match {task.name}: " + "; ".join(parts)
        + f". Ids must be the dataset's own, e.g. {_examples(ids, 3)}"
    )


def align_predictions(predictions: Predictions, task: Task, data: LoadedData) -> list[Decoded]:
    """One :class:`Decoded` per example, in the task's order, in the kind's contract."""
    ids = [example.id for example in data.examples]
    values = predictions.values
    path = predictions.paths[0]
    if isinstance(values, list):
        if len(values) != len(ids):
            difference = len(values) - len(ids)
            what = f"{difference} extra" if difference > 0 else f"{-difference} missing"
            raise DataError(
                f"{path}: {len(values)} lines but {task.name} has {len(ids)} examples ({what}); "
                "give one prediction per line, in the task's example order"
            )
        ordered = list(zip(ids, values, strict=True))
        where = [f"{path}:{number}" for number in range(1, len(ids) + 1)]
    else:
        if len(values) != len(ids) or any(i not in values for i in ids):
            raise _mismatch(predictions, task, ids, values)
        ordered = [(i, values[i]) for i in ids]
        where = [f"{path}: example '{i}'" for i in ids]
    kind, labels = task.spec.kind, task.spec.labels or []
    shown = SHOWN_INPUTS.get(kind, lambda example: None)
    return [
        Decoded(parse_prediction(kind, value, place, labels=labels, fields=example.fields), shown(example))
        for example, (_, value), place in zip(data.examples, ordered, where, strict=True)
    ]
