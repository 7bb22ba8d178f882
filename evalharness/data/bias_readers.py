"""Readers for the bias probes' data files (BBQ JSONL, WinoBias text), registered in ``readers``.

BBQ (Parrish et al. 2022): one row per example with ``choices`` = [ans0, ans1, ans2] and a
``reference`` holding the gold ``label``, the index of the unknown answer, the indices of the
*biased* answers, the context condition, the category and the question polarity. The ids
are ``<category>-<example_id>`` (example ids repeat across categories). A biased answer is,
for a negative question, an answer about a stereotyped group, and for a non-negative
question, a non-unknown answer about a group that is not stereotyped (the paper's
definition, section 3.3). An answer's groups are the entries of ``answer_info`` (e.g.
``["grandfather", "old"]``), compared case-insensitively with
``additional_metadata.stereotyped_groups``, after the spellings that lm-evaluation-harness
normalises too (``nonOld`` stays one group, so it never matches ``old``; ``M-Black`` is
``M`` and ``Black``; ``lowSES`` is ``low SES``).

WinoBias (Zhao et al. 2018): ``N [The developer] argued with the designer because [he] ...``;
the bracketed entity is the gold referent of the bracketed pronoun. The other candidate is
the other occupation of the sentence (from the released occupation lists); the choices are
the two occupations in alphabetical order. The sentence keeps its gendered pronoun (resolving
it away would make the pro and anti sets identical); the question is ``"<pronoun>" refers to
the`` and each occupation is a continuation (a causal LM's log-likelihood, a masked LM's
pseudo-log-likelihood of the occupation's tokens). The set (pro/anti) and type come from the
file name (``pro_stereotyped_type1.txt.test``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from pydantic import Field

from evalharness.config import StrictModel
from evalharness.data.textio import Encoding, Row, json_lines, read_text, split_lines
from evalharness.errors import DataError
from evalharness.jsonvalues import (
    JSONArray,
    JSONObject,
    JsonValue,
    expect_array,
    expect_object,
)

__all__ = ["BBQOptions", "WinoBiasOptions", "bbq_reference", "read_bbq", "read_winobias"]


class BBQOptions(StrictModel):
    encoding: Encoding = "utf-8"


_GROUP_SPELLINGS = (("M-", "M_"), ("F-", "F_"), ("lowSES-", "lowSES_"), ("highSES-", "highSES_"),
                    ("lowSES", "low SES"), ("highSES", "high SES"))


def _answer_groups(info: JSONArray) -> set[str]:
    text = "_".join(str(part) for part in info)
    for old, new in _GROUP_SPELLINGS:
        text = text.replace(old, new)
    return {part.strip().lower() for part in text.split("_") if part.strip()}


def _label(value: JsonValue) -> int:
    """The gold answer's index, 0, 1 or 2 (an integer or its text); TypeError for anything else
    (a fraction, a boolean or an index past the three answers would never match a choice)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or str(value).strip() not in {"0", "1", "2"}:
        raise TypeError(f"'label' is {value!r}, not an answer index 0-2")
    return int(value)


def bbq_reference(row: Mapping[str, JsonValue], where: str) -> JSONObject:
    """The ``reference`` of one BBQ example (gold, unknown and biased answers, conditions)."""
    try:
        info = expect_object(row["answer_info"], "'answer_info'", error=TypeError)
        metadata = expect_object(row["additional_metadata"], "'additional_metadata'", error=TypeError)
        listed = expect_array(metadata["stereotyped_groups"], "'additional_metadata.stereotyped_groups'", error=TypeError)
        stereotyped = {str(group).lower() for group in listed}
        groups = [_answer_groups(expect_array(info[f"ans{i}"], f"'answer_info.ans{i}'", error=TypeError)) for i in range(3)]
        polarity = row["question_polarity"]
        label = _label(row["label"])
        condition = row["context_condition"]
        category = row["category"]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{where}: not a BBQ example (missing or bad field {exc})") from None
    unknown = [i for i, g in enumerate(groups) if "unknown" in g]
    if len(unknown) != 1:
        raise DataError(f"{where}: expected exactly one 'unknown' answer in answer_info, found {len(unknown)}")
    biased: JSONArray
    if polarity == "neg":
        biased = [i for i, g in enumerate(groups) if i != unknown[0] and g & stereotyped]
    elif polarity == "nonneg":
        biased = [i for i, g in enumerate(groups) if i != unknown[0] and not g & stereotyped]
    else:
        raise DataError(f"{where}: question_polarity should be 'neg' or 'nonneg', got {polarity!r}")
    return {
        "label": label,
        "unknown": unknown[0],
        "biased": biased,
        "context_condition": condition,
        "category": category,
        "polarity": polarity,
    }


def bbq_id(row: Mapping[str, JsonValue]) -> str:
    return f"{row['category']}-{row['example_id']}"


def read_bbq(path: Path, options: BBQOptions) -> Iterator[Row]:
    for where, row in json_lines(path, options.encoding):
        reference = bbq_reference(row, where)
        yield {
            "id": bbq_id(row),
            "context": row["context"],
            "question": row["question"],
            "choices": [row["ans0"], row["ans1"], row["ans2"]],
            "reference": reference,
            "category": reference["category"],
        }


class WinoBiasOptions(StrictModel):
    encoding: Encoding = "utf-8"
    occupations: list[str] = Field(
        default=["winobias/male_occupations.txt", "winobias/female_occupations.txt"],
        description="occupation lists, relative to the data directory",
    )


_FILE_NAME = re.compile(r"^(pro|anti)_stereotyped_(type[12])\.")


_LINE = re.compile(r"^(\d+)\s+(.*)$")
_BRACKET = re.compile(r"\[([^\]]+)\]")


def _occupations(path: Path, options: WinoBiasOptions) -> list[str]:
    data_dir = path.parent.parent if path.parent.name == "winobias" else path.parent
    names: list[str] = []
    for name in options.occupations:
        file = data_dir / name
        if not file.is_file():
            raise DataError(f"{path}: occupation list {file} not found (reader option 'occupations')")
        names += [line.strip() for line in file.read_text(encoding=options.encoding).splitlines() if line.strip()]
    return sorted(set(names), key=len, reverse=True)  # 'construction worker' before 'worker'


def _find_occupation(text: str, occupations: list[str]) -> str | None:
    for occupation in occupations:
        if re.search(rf"\b{re.escape(occupation)}\b", text, flags=re.IGNORECASE):
            return occupation
    return None


def read_winobias(path: Path, options: WinoBiasOptions) -> Iterator[Row]:
    occupations = _occupations(path, options)
    named = _FILE_NAME.match(path.name)
    if named is None:
        raise DataError(f"{path}: expected a WinoBias file name such as pro_stereotyped_type1.txt.test")
    stereotype, kind = named.groups()
    for number, line in enumerate(split_lines(read_text(path, options.encoding)), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        match = _LINE.match(line.strip())
        brackets = list(_BRACKET.finditer(match.group(2))) if match else []
        if match is None or len(brackets) < 2:
            raise DataError(f"{where}: expected 'N sentence' with [bracketed] mentions, got {line!r}")
        sentence = match.group(2)
        entity, pronoun = brackets[:2]  # a later [pronoun] repeats the same referent
        gold = _find_occupation(entity.group(1), occupations)
        plain = _BRACKET.sub(lambda m: m.group(1), sentence)
        rest = sentence[: entity.start()] + sentence[entity.end() : pronoun.start()]
        other = _find_occupation(_BRACKET.sub(" ", rest.replace(entity.group(0), " ")), [o for o in occupations if o != gold])
        if gold is None or other is None:
            raise DataError(f"{where}: cannot find two occupations from the occupation lists in {sentence!r}")
        word = pronoun.group(1)
        candidates = sorted([gold, other])  # a fixed order that does not reveal the answer
        yield {
            "id": f"{kind}-{stereotype}-{match.group(1)}",
            "context": plain,
            "question": f'"{word}" refers to the',
            "choices": candidates,
            "reference": {"label": candidates.index(gold), "stereotype": stereotype, "type": kind,
                          "group": f"{kind}_{stereotype}", "pronoun": word, "candidates": candidates},
        }
