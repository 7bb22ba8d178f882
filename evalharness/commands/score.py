"""``evalharness score``: score a prediction file from any system against a task's references."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from evalharness.commands.common import (
    add_tasks_dir,
    add_trust_task_code,
    positive_int,
    seed,
)
from evalharness.commands.publish import add_log_to


def _score(args: argparse.Namespace) -> int:
    from evalharness.commands.publish import check_log_to, log_after
    from evalharness.errors import UsageError
    from evalharness.external.score import ScoreConfig, score_file
    from evalharness.records.record import atomic_write_text

    if args.log_to and args.run_dir is None:
        raise UsageError("--log-to logs a run record: give --run-dir to write one")
    check_log_to(args)

    config = ScoreConfig(
        task=args.task,
        predictions=Path(args.predictions),
        no_answer_probs=Path(args.no_answer_probs) if args.no_answer_probs else None,
        format=args.format,
        data_dir=args.data_dir,
        tasks_dirs=args.tasks_dir,
        run_dir=args.run_dir,
        name=args.name,
        seed=args.seed,
        n_resamples=args.n_resamples,
        trust_task_code=args.trust_task_code,
    )
    result = score_file(config)
    text = json.dumps(result.to_json(), indent=2, ensure_ascii=False, allow_nan=False)
    if args.output:
        atomic_write_text(args.output, text + "\n")
        print(f"wrote {args.output}", file=sys.stderr)
    if result.commit is not None:
        print(f"run record: {result.commit.describe()}", file=sys.stderr)
    print(text)
    if result.run_dir:
        log_after(args, result.run_dir)
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    score = commands.add_parser(
        "score",
        help="score a prediction file (any system's outputs) against a task's references",
        description=(
            "Formats (detected from the path, or --format): squad = SQuAD JSON {question_id: answer} "
            "(+ --no-answer-probs JSON for v2.0); lines = plain text, one prediction per line in the "
            'task\'s example order; jsonl = {"id": ..., "prediction": ...} per line; decoded_files = '
            "folder or .tar.gz of NNNNNN_decoded.txt (CNN/DailyMail release). Ids are the dataset's own."
        ),
    )
    score.add_argument("--task", required=True, help="task name, e.g. translation/wmt21_de_en")
    score.add_argument("--predictions", required=True, metavar="FILE", help="prediction file, folder or tarball")
    score.add_argument("--no-answer-probs", metavar="FILE", help="SQuAD v2.0 JSON {question_id: no-answer probability}")
    score.add_argument("--format", help="squad, lines, jsonl, decoded_files, bbq or bbq_unifiedqa_{arc,race,qonly} (default: from the path)")
    score.add_argument("--data-dir", help="folder with local evaluation data (default: $EVALHARNESS_DATA_DIR)")
    score.add_argument("--output", type=Path, metavar="FILE.json", help="also write the printed JSON here")
    score.add_argument("--run-dir", type=Path, metavar="DIR", help="write (or extend) a run record for this system here")
    score.add_argument("--name", help="system name in the run record (default: the predictions file's stem)")
    score.add_argument("--seed", type=seed, default=1234, help="seed for bootstrap intervals")
    score.add_argument("--n-resamples", type=positive_int, default=1000, help="bootstrap resamples")
    add_log_to(score)
    add_trust_task_code(score)
    add_tasks_dir(score)
    score.set_defaults(handler=_score)
