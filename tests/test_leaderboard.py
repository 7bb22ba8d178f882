"""Leaderboards on hand-built records: the tidy frame, pivots, aggregates checked against
hand computations, ranks with ties, refusal of incomparable numbers, outputs."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from evalharness.errors import RecordError, SpecError, UsageError
from evalharness.leaderboard import (
    FRAME_COLUMNS,
    IncomparableRunsError,
    build_leaderboard,
    glue_score,
    load_definition,
    load_runs,
    mean_win_rate,
    pivot,
    rank_with_ties,
    split_incomparable,
    suite_mean,
    to_markdown,
    write_leaderboard,
)
from evalharness.leaderboard.aggregates import glue_task_of
from tests.record_factory import metric, task, write_run

Z95 = 1.959963984540054


def _split(frame):
    return split_incomparable(frame)[0]


# -- the tidy frame --------------------------------------------------------------------


def test_load_runs_gives_one_row_per_run_task_metric(tmp_path):
    write_run(tmp_path / "a", model="alpha", tasks={
        "glue/mrpc": task({"f1": metric(88.0, name="f1", ci=(86.0, 90.0), stderr=1.1), "accuracy": metric(84.0)}),
        "bias/probe": task({"ss": metric(55.0, name="stereotype_score", higher=False, ideal=50.0, ci=(None, None))}),
    }, created="2026-02-03T04:05:06+00:00", run_id="r-alpha")
    frame = load_runs([tmp_path / "a"])
    assert list(frame.columns) == FRAME_COLUMNS
    assert len(frame) == 3
    f1 = frame[(frame["task"] == "glue/mrpc") & (frame["metric"] == "f1")].iloc[0]
    assert (f1["model_id"], f1["value"], f1["ci_low"], f1["ci_high"], f1["stderr"]) == ("alpha", 88.0, 86.0, 90.0, 1.1)
    assert f1["direction"] == "higher" and f1["n"] == 100 and f1["data_fingerprint"] == "sha256:data"
    assert f1["signature"] == "f1|impl:test|evalharness:0.1.0" and f1["run_id"] == "r-alpha"
    assert f1["created"] == pd.Timestamp("2026-02-03T04:05:06", tz="UTC")
    ss = frame[frame["metric"] == "ss"].iloc[0]
    assert ss["direction"] == "ideal" and ss["ideal"] == 50.0 and math.isnan(ss["ci_low"])


def test_load_runs_finds_runs_below_a_folder_once(tmp_path):
    write_run(tmp_path / "runs" / "a", model="alpha", tasks={"t": task({"accuracy": metric(1.0)})})
    write_run(tmp_path / "runs" / "deep" / "b", model="beta", tasks={"t": task({"accuracy": metric(2.0)})})
    frame = load_runs([tmp_path / "runs", tmp_path / "runs" / "a", tmp_path / "runs" / "a" / "results.json"])
    assert sorted(frame["model"]) == ["alpha", "beta"]


def test_load_runs_refuses_what_is_not_a_valid_record(tmp_path):
    with pytest.raises(RecordError, match="no run record here or below"):
        load_runs([tmp_path])
    with pytest.raises(RecordError, match="no such run directory"):
        load_runs([tmp_path / "missing"])
    write_run(tmp_path / "a", model="alpha", tasks={"t": task({"accuracy": metric(1.0)})})
    data = json.loads((tmp_path / "a" / "results.json").read_text()) | {"schema_version": 7}
    (tmp_path / "a" / "results.json").write_text(json.dumps(data))
    with pytest.raises(RecordError, match="schema_version 7 is not supported"):
        load_runs([tmp_path / "a"])


def test_pivot_is_models_by_task_and_metric(tmp_path):
    write_run(tmp_path / "a", model="alpha", tasks={"t1": task({"accuracy": metric(70.0), "f1": metric(60.0, name="f1")})})
    write_run(tmp_path / "b", model="beta", tasks={"t1": task({"accuracy": metric(80.0), "f1": metric(65.0, name="f1")}),
                                                  "t2": task({"accuracy": metric(50.0)})})
    table = pivot(load_runs([tmp_path]))
    assert list(table.columns) == [("t1", "accuracy"), ("t1", "f1"), ("t2", "accuracy")]
    assert table.loc["beta", ("t1", "f1")] == 65.0 and math.isnan(table.loc["alpha", ("t2", "accuracy")])


# -- aggregates --------------------------------------------------------------------------

# The gluebenchmark.com leaderboard row of BERT-Large (Devlin et al. 2019): score 80.5.
BERT_LARGE = {
    "glue/cola": {"mcc": 60.5},
    "glue/sst2": {"accuracy": 94.9},
    "glue/mrpc": {"f1": 89.3, "accuracy": 85.4},
    "glue/stsb": {"pearson": 87.6, "spearman": 86.5},
    "glue/qqp": {"f1": 72.1, "accuracy": 89.3},
    "glue/mnli_matched": {"accuracy": 86.7},
    "glue/mnli_mismatched": {"accuracy": 85.9},
    "glue/qnli": {"accuracy": 92.7},
    "glue/rte": {"accuracy": 70.1},
    "glue/wnli": {"accuracy": 65.1},
}


def _write_scores(directory, model, scores, **kwargs):
    tasks = {name: task({key: metric(value, name=key) for key, value in metrics.items()}) for name, metrics in scores.items()}
    return write_run(directory, model=model, tasks=tasks, **kwargs)


def test_glue_score_reproduces_the_published_bert_large_score(tmp_path):
    _write_scores(tmp_path / "bert", "bert-large", BERT_LARGE)
    frame = _split(load_runs([tmp_path / "bert"]))
    result = glue_score(frame)
    # By hand: (60.5 + 94.9 + (89.3+85.4)/2 + (87.6+86.5)/2 + (72.1+89.3)/2 + (86.7+85.9)/2
    #           + 92.7 + 70.1 + 65.1) / 9 = 724.7 / 9
    assert result.values.at["bert-large", "value"] == pytest.approx(724.7 / 9)
    assert round(result.values.at["bert-large", "value"], 1) == 80.5
    assert result.label == "GLUE score" and "Partial" not in result.description


def test_glue_score_partial_suite_with_interval_by_hand(tmp_path):
    write_run(tmp_path / "a", model="alpha", tasks={
        "glue/mrpc": task({"f1": metric(80.0, name="f1", stderr=1.0), "accuracy": metric(70.0, stderr=2.0)}),
        "glue/sst2": task({"accuracy": metric(90.0, stderr=0.5)}),
        "glue/mnli-m": task({"accuracy": metric(60.0, stderr=1.0)}),
        "glue/mnli-mm": task({"accuracy": metric(64.0, stderr=1.0)}),
        "other/task": task({"accuracy": metric(10.0)}),
    })
    result = glue_score(_split(load_runs([tmp_path])))
    row = result.values.loc["alpha"]
    # MRPC (80+70)/2 = 75, se (1+2)/2; SST-2 90, se .5; MNLI (60+64)/2 = 62, se sqrt(1+1)/2.
    assert row["value"] == pytest.approx((75 + 90 + 62) / 3)
    stderr = math.sqrt(1.5**2 + 0.5**2 + (math.sqrt(2) / 2) ** 2) / 3
    assert row["stderr"] == pytest.approx(stderr)
    assert row["ci_low"] == pytest.approx((75 + 90 + 62) / 3 - Z95 * stderr)
    assert result.label == "GLUE score (3 of 9 tasks)" and "not comparable with published" in result.description


def test_glue_score_refuses_a_task_without_its_second_metric(tmp_path):
    write_run(tmp_path / "a", model="alpha", tasks={"glue/mrpc": task({"accuracy": metric(70.0)}),
                                                   "glue/sst2": task({"accuracy": metric(90.0)})})
    result = glue_score(_split(load_runs([tmp_path])))
    assert math.isnan(result.values.at["alpha", "value"])
    assert any("glue/mrpc needs f1 and accuracy" in note for note in result.notes)


def test_glue_task_names():
    assert glue_task_of("glue/sst2").name == "SST-2"
    assert glue_task_of("glue/STS-B").name == "STS-B"
    assert glue_task_of("mine/glue/mnli_mismatched").unit == glue_task_of("glue/mnli-m").unit == "MNLI"
    assert glue_task_of("sst2") is None and glue_task_of("superglue/rte") is None and glue_task_of("glue/ax") is None


def test_mean_win_rate_matches_helm_by_hand(tmp_path):
    values = {
        #        t1 accuracy  t2 perplexity (lower)  t3 stereotype (ideal 50)  t4 accuracy
        "A": (90.0, 30.0, 55.0, 70.0),
        "B": (80.0, 20.0, 45.0, None),
        "C": (80.0, 40.0, 60.0, None),
        "D": (70.0, None, 50.0, None),
    }
    for name, (t1, t2, t3, t4) in values.items():
        tasks = {"t1": task({"accuracy": metric(t1)}), "t3": task({"ss": metric(t3, name="ss", ideal=50.0)})}
        if t2 is not None:
            tasks["t2"] = task({"ppl": metric(t2, name="ppl", higher=False)})
        if t4 is not None:
            tasks["t4"] = task({"accuracy": metric(t4)})
        write_run(tmp_path / name, model=name, tasks=tasks)
    frame = _split(load_runs([tmp_path]))
    rates = mean_win_rate(frame).values["value"]
    # t1: A beats 3 of 3; B and C beat D and tie each other (1 + 1/2 of 3); D none.
    # t2 (lower is better, D absent): B 2/2, A 1/2, C 0/2.  t3 (|x-50|): D 3/3, A and B
    # 1.5/3, C 0.  t4 has one value: skipped.
    assert rates["A"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert rates["B"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert rates["C"] == pytest.approx((0.5 + 0 + 0) / 3)
    assert rates["D"] == pytest.approx((0 + 1) / 2)
    mean = suite_mean(frame)
    assert mean.values.at["A", "value"] == pytest.approx((90 + 70) / 2)
    assert math.isnan(mean.values.at["B", "value"])
    assert any("leaves out" in note and "t2:ppl" in note and "t3:ss" in note for note in mean.notes)


# -- ranking -------------------------------------------------------------------------------


def _series(values):
    return pd.Series(values, index=list("ABC")[: len(values)], dtype=float)


def test_ranks_tie_when_confidence_intervals_overlap():
    ranked = rank_with_ties(_series([90, 89.5, 85]), _series([89, 88.5, 84]), _series([91, 90.5, 86]))
    assert list(ranked["rank"]) == [1, 1, 3] and list(ranked["tied"]) == [True, True, False]


def test_ranks_lower_is_better_and_ideal():
    lower = rank_with_ties(_series([10, 12, 20]), _series([9, 11.5, 19]), _series([11, 12.5, 21]), direction="lower")
    assert list(lower["rank"]) == [1, 2, 3]
    ideal = rank_with_ties(_series([52, 45, 49]), _series([51, 44, 47]), _series([53, 46, 51]), direction="ideal", ideal=50)
    assert list(ideal["rank"]) == [1, 3, 1]
    assert list(ideal.sort_values("order").index) == ["C", "A", "B"]  # 49 is closer to 50 than 52


def test_ranks_without_intervals_and_missing_values():
    ranked = rank_with_ties(_series([0.5, 0.5, math.nan]))
    assert list(ranked["rank"].astype(object)) == [1, 1, pd.NA] and ranked.loc["C", "order"] == 2


def test_leaderboard_orders_rows_and_marks_ties(tmp_path):
    for name, value in (("A", 85.0), ("B", 90.0), ("C", 89.5)):
        write_run(tmp_path / name, model=name, tasks={"t": task({"accuracy": metric(value)})})
    board = build_leaderboard([tmp_path])
    assert board.model_ids == ["B", "C", "A"]
    assert [board.rank_label(m) for m in board.model_ids] == ["=1", "=1", "3"]
    assert board.aggregates == [] and board.rank_by == "t:accuracy"


# -- comparability and duplicates ---------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"signature": "accuracy|impl:other|evalharness:0.2.0"}, "metric signature differs"),
        ({"data": "sha256:other"}, "data fingerprint differs"),
        ({"n": 50}, "example count differs"),
        ({"version": 2}, "task version differs"),
    ],
)
def test_incomparable_runs_are_refused_naming_what_differs_and_where(tmp_path, change, named):
    write_run(tmp_path / "a", model="alpha", tasks={"t": task({"accuracy": metric(80.0)})}, run_id="run-a")
    metric_kwargs = {"signature": change["signature"]} if "signature" in change else {}
    if "n" in change:
        metric_kwargs["n"] = change["n"]
    task_kwargs = {key: change[key] for key in ("data", "version", "n") if key in change}
    write_run(tmp_path / "b", model="beta", tasks={"t": task({"accuracy": metric(70.0, **metric_kwargs)}, **task_kwargs)}, run_id="run-b")
    with pytest.raises(IncomparableRunsError) as caught:
        build_leaderboard([tmp_path / "a", tmp_path / "b"])
    message = str(caught.value)
    assert named in message and "run-a" in message and "run-b" in message and str(tmp_path / "b") in message
    assert "--allow-incomparable" in message


def test_allow_incomparable_shows_separate_marked_columns_kept_out_of_aggregates(tmp_path):
    for name, value in (("A", 80.0), ("B", 75.0)):
        write_run(tmp_path / name, model=name, tasks={"t": task({"accuracy": metric(value)}), "u": task({"accuracy": metric(60.0)})})
    write_run(tmp_path / "C", model="C", tasks={"t": task({"accuracy": metric(99.0)}, data="sha256:easier"), "u": task({"accuracy": metric(61.0)})})
    board = build_leaderboard([tmp_path], allow_incomparable=True)
    keys = [c.key for c in board.columns]
    assert keys == ["t:accuracy", "t:accuracy†1", "u:accuracy"]
    marked = board.column("t:accuracy†1")
    assert marked.incomparable and marked.data_fingerprint == "sha256:easier"
    assert board.values.at["C", "t:accuracy†1"] == 99.0 and math.isnan(board.values.at["C", "t:accuracy"])
    assert math.isnan(board.values.at["C", "mean"])  # its t score is not comparable
    assert board.values.at["A", "mean"] == pytest.approx(70.0)
    assert any("not comparable" in note and "C" in note for note in board.notes)
    assert "t accuracy†1" in to_markdown(board)


def test_two_runs_of_one_model_latest_wins_and_is_stated(tmp_path):
    write_run(tmp_path / "old", model="alpha", tasks={"t": task({"accuracy": metric(60.0)})}, created="2026-01-01T00:00:00+00:00", run_id="old-run")
    write_run(tmp_path / "new", model="alpha", tasks={"t": task({"accuracy": metric(70.0)})}, created="2026-01-02T00:00:00+00:00", run_id="new-run")
    board = build_leaderboard([tmp_path / "new", tmp_path / "old"])
    assert board.values.at["alpha", "t:accuracy"] == 70.0
    assert any("alpha: evaluated more than once; the latest wins: run new-run" in note and "over old-run" in note
               and note.endswith("for t") for note in board.notes)
    with pytest.raises(RecordError, match="in 2 runs"):
        build_leaderboard([tmp_path], duplicates="error")


def test_one_name_two_checkpoints_are_two_rows(tmp_path):
    write_run(tmp_path / "a", model="model", fingerprint="sha256:aaaaaaaa11111111", tasks={"t": task({"accuracy": metric(60.0)})})
    write_run(tmp_path / "b", model="model", fingerprint="sha256:bbbbbbbb22222222", tasks={"t": task({"accuracy": metric(70.0)})})
    board = build_leaderboard([tmp_path])
    assert board.model_ids == ["model@bbbbbbbb", "model@aaaaaaaa"]


# -- selection, outputs, definitions --------------------------------------------------------


def test_select_tasks_and_metrics(tmp_path):
    _write_scores(tmp_path / "bert", "bert", BERT_LARGE)
    board = build_leaderboard([tmp_path], tasks=["glue/mrpc", "glue/s*"], metrics={"glue/mrpc": ["f1"]})
    assert [c.key for c in board.columns] == ["glue/mrpc:f1", "glue/sst2:accuracy", "glue/stsb:pearson", "glue/stsb:spearman"]
    with pytest.raises(UsageError, match="'glue/sst' matches no task.*did you mean 'glue/sst2'"):
        build_leaderboard([tmp_path], tasks=["glue/sst"])
    with pytest.raises(UsageError, match="glue/mrpc has no metric 'f11'; did you mean 'f1'"):
        build_leaderboard([tmp_path], metrics={"glue/mrpc": ["f11"]})
    with pytest.raises(UsageError, match="rank_by: no column 'glue_scor'; did you mean 'glue_score'"):
        build_leaderboard([tmp_path], rank_by="glue_scor")


def test_glue_board_ranks_by_glue_score(tmp_path):
    _write_scores(tmp_path / "bert", "bert", BERT_LARGE)
    weaker = {name: {key: value - 10 for key, value in metrics.items()} for name, metrics in BERT_LARGE.items()}
    _write_scores(tmp_path / "small", "small", weaker)
    board = build_leaderboard([tmp_path])
    assert board.rank_by == "glue_score" and board.model_ids == ["bert", "small"]
    assert board.values.at["small", "glue_score"] == pytest.approx(724.7 / 9 - 10)
    assert board.values.at["bert", "mean_win_rate"] == 1.0
    assert board.pivot().loc["bert", ("aggregate", "glue_score")] == pytest.approx(724.7 / 9)


def test_outputs_are_written_in_every_format(tmp_path):
    for name, value in (("alpha", 70.0), ("beta", 80.0)):
        write_run(tmp_path / "runs" / name, model=name, tasks={"t": task({"accuracy": metric(value)}), "u": task({"f1": metric(value / 2, name="f1")})})
    board = build_leaderboard([tmp_path / "runs"], title="Test board")
    paths = write_leaderboard(board, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["leaderboard.csv", "leaderboard.json", "leaderboard.md", "leaderboard.parquet"]
    csv = pd.read_csv(paths["csv"])
    parquet = pd.read_parquet(paths["parquet"])
    for table in (csv, parquet):
        assert list(table["model_id"]) == ["beta", "alpha"] and list(table["rank"]) == [1, 2]
        assert list(table["t:accuracy"]) == [80.0, 70.0] and list(table["t:accuracy ci_low"]) == [79.0, 69.0]
        assert list(table["mean"]) == pytest.approx([60.0, 52.5])
    data = json.loads(paths["json"].read_text())
    assert data["title"] == "Test board" and data["rank_by"] == "mean"
    assert data["rows"][0]["values"]["u:f1"] == {"value": 40.0, "ci": [39.0, 41.0]}
    assert [c["key"] for c in data["columns"]] == ["t:accuracy", "u:f1"]
    markdown = paths["markdown"].read_text()
    assert "| 1 | beta | 60.00 [" in markdown and "t accuracy ↑" in markdown


def test_markdown_cannot_be_broken_by_names(tmp_path):
    write_run(tmp_path / "a", model="evil | <script>x</script> *bold*", tasks={"t": task({"accuracy": metric(1.0)})})
    markdown = to_markdown(build_leaderboard([tmp_path]))
    row = next(line for line in markdown.splitlines() if "evil" in line)
    assert "<script>" not in markdown and "&lt;script&gt;" in row
    assert row.count(" | ") == 2 and "\\|" in row and "\\*bold\\*" in row


def test_definition_is_validated_with_file_and_field(tmp_path):
    write_run(tmp_path / "runs" / "a", model="alpha", tasks={"t": task({"accuracy": metric(1.0)})})
    good = tmp_path / "defs" / "board.yaml"
    good.parent.mkdir()
    good.write_text("title: Board\nruns: ['../runs/*']\ntasks: [t]\naggregates: [mean]\n")
    loaded = load_definition(good)
    assert loaded.spec.title == "Board" and [p.name for p in loaded.run_dirs] == ["a"]
    bad = tmp_path / "defs" / "bad.yaml"
    bad.write_text("title: Board\nruns: ['../runs/*']\nrank: mean\naggregates: [median]\n")
    with pytest.raises(SpecError) as caught:
        load_definition(bad)
    assert f"{bad}:3: rank: unknown key" in str(caught.value) and f"{bad}:4: aggregates[0]:" in str(caught.value)
    empty = tmp_path / "defs" / "empty.yaml"
    empty.write_text("title: Board\nruns: ['../nothing/*']\n")
    with pytest.raises(SpecError, match=r"runs\[0\]: '../nothing/\*' matches no run directory"):
        load_definition(empty)
