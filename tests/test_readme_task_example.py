"""The README's "Writing your own task" example is a valid task that runs on its own data."""

from __future__ import annotations

import json
import re

from tests.conftest import REPO
from tests.inprocess import main  # noqa: F401 - pytest fixture


def _example_task() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return re.search(r"```yaml\n# my_tasks/reviews.yaml\n(.*?)```", readme, re.S).group(1)


def test_the_readme_task_example_validates_and_runs_beside_its_data(main, tiny_classifier, tmp_path):
    tasks = tmp_path / "my_tasks"
    (tasks / "data").mkdir(parents=True)
    (tasks / "reviews.yaml").write_text(_example_task(), encoding="utf-8")
    rows = [{"review": "A joy to watch.", "stars": 1}, {"review": "Dull.", "stars": 0}, {"review": "Loved it", "stars": 1}]
    (tasks / "data" / "reviews.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    validated = main("tasks", "validate", str(tasks))
    assert validated.returncode == 0, validated.stderr
    out = tmp_path / "run"
    result = main("run", "--model", str(tiny_classifier), "--tasks", "reviews", "--tasks-dir", str(tasks), "--output", str(out), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert record["tasks"]["reviews"]["n_examples"] == 3 and set(record["tasks"]["reviews"]["metrics"]) == {"accuracy", "f1"}
