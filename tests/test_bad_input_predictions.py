"""Bad prediction files for ``evalharness score`` (in-process): exit code 2 naming the file and
the line or example, no traceback, no run record; a BOM is stripped, not scored as text.

Counts and ids that do not match the task are checked in tests/test_score_command.py
(test_wrong_line_count_exits_2_saying_how_many, test_missing_and_extra_ids_exit_2_...).
"""

from __future__ import annotations

import json

import pytest

from tests.inprocess import main  # noqa: F401 - pytest fixture
from tests.test_score_command import HYPOTHESES, _score, workspace  # noqa: F401 - fixture

BAD_PREDICTIONS = {
    "non_utf8_bytes": ("p.txt", b"The dog barks loud.\nThe sun \xe9 shines.\nWe go.\nThe food.\n", ["p.txt", "UTF-8"]),
    "invalid_jsonl_line": ("p.jsonl", b'{"id": "0", "prediction": "a"}\n{"id": "1", "prediction": \n', ["p.jsonl", ":2"]),
    "duplicate_ids": ("p.jsonl", b"".join(json.dumps({"id": i, "prediction": "x"}).encode() + b"\n" for i in ["0", "1", "1", "2", "3"]),
                      ["p.jsonl", "'1'"]),
    "null_prediction": ("p.jsonl", b"".join(json.dumps({"id": str(i), "prediction": None if i == 2 else "x"}).encode() + b"\n"
                                           for i in range(4)), ["p.jsonl", "2"]),
    "list_prediction": ("p.jsonl", b"".join(json.dumps({"id": str(i), "prediction": ["x"] if i == 1 else "x"}).encode() + b"\n"
                                           for i in range(4)), ["p.jsonl", "1"]),
    "empty_file": ("p.txt", b"", ["p.txt"]),
}


@pytest.mark.parametrize("case", sorted(BAD_PREDICTIONS))
def test_bad_prediction_file_exits_2_naming_file_and_line(main, workspace, case):
    name, content, fragments = BAD_PREDICTIONS[case]
    path = workspace / name
    path.write_bytes(content)
    out = workspace / "run"
    result = _score(main, workspace, "tmp/mt", path, "--run-dir", str(out))
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
    assert "Traceback" not in result.stderr
    assert not (out / "results.json").exists()


def test_bom_in_a_plain_text_prediction_file_is_scored_as_sacrebleu_scores_it(main, workspace):
    """Plain-text hypothesis files are read as sacrebleu reads them: a leading BOM is kept as
    text (WMT23's official chrF for one system includes it). It must not crash, and the score
    must be exactly the reference scorer's on the same bytes. JSONL/JSON prediction files and
    all data readers strip a BOM instead (tests/test_bad_input_data.py)."""
    import sacrebleu

    from tests.test_score_command import REFS_A, REFS_B

    bom = workspace / "bom.txt"
    bom.write_bytes("\ufeff".encode() + ("\n".join(HYPOTHESES) + "\n").encode())
    out = workspace / "run-bom"
    result = _score(main, workspace, "tmp/mt", bom, "--run-dir", str(out))
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "results.json").read_text(encoding="utf-8"))
    hypotheses = ["\ufeff" + HYPOTHESES[0], *HYPOTHESES[1:]]
    expected = sacrebleu.corpus_chrf(hypotheses, [REFS_A, REFS_B]).score
    assert record["tasks"]["tmp/mt"]["metrics"]["chrf"]["value"] == pytest.approx(expected, abs=1e-9)


def test_bom_in_a_jsonl_prediction_file_is_stripped(main, workspace):
    jsonl = workspace / "bom.jsonl"
    rows = "".join(json.dumps({"id": str(i), "prediction": h}) + "\n" for i, h in enumerate(HYPOTHESES))
    jsonl.write_bytes("\ufeff".encode() + rows.encode())
    out = workspace / "run-jsonl"
    result = _score(main, workspace, "tmp/mt", jsonl, "--run-dir", str(out))
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "results.json").read_text(encoding="utf-8"))
    first = json.loads((out / record["tasks"]["tmp/mt"]["samples"]).read_text(encoding="utf-8").splitlines()[0])
    assert first["prediction"] == HYPOTHESES[0]


def test_a_bbq_row_whose_choice_is_not_text_is_refused_naming_file_line_and_field(tmp_path):
    """BBQ answers are matched to the choices' text; a choice of another JSON type (it was an
    AttributeError traceback when the answer was text) is refused naming the row and field."""
    from evalharness.errors import DataError
    from evalharness.external.bbq_predictions import bbq_reader
    from evalharness.external.predictions import ReadOptions

    good = {"category": "Age", "example_id": 0, "ans0": "the grandfather", "ans1": "the grandson", "ans2": "unknown", "prediction": "unknown"}
    bad = {**good, "example_id": 1, "ans1": 7}
    path = tmp_path / "preds.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"preds.jsonl:2: ans1: expected a string, got a number"):
        bbq_reader("prediction")(path, ReadOptions())
    path.write_text(json.dumps(good) + "\n", encoding="utf-8")
    assert bbq_reader("prediction")(path, ReadOptions()) == {"Age-0": 2}
