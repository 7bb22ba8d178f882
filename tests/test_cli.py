"""The command line: exit codes, messages without tracebacks, and fast start-up."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

BAD_SPEC = """\
version: 1
kind: classification
data: {local: {files: [x.tsv], format: tsv}}
labels: [a, b]
metrics: [acc]
"""


def test_tasks_list_shows_builtin_tasks_and_groups(cli):
    result = cli("tasks", "list")
    assert result.returncode == 0, result.stderr
    assert "glue/sst2" in result.stdout.splitlines()
    assert "glue (" in result.stdout


def test_tasks_validate_builtin_folder(cli):
    result = cli("tasks", "validate", "tasks/")
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout and "glue/sst2.yaml" in result.stdout


def test_tasks_validate_bad_file_exits_2_with_file_and_field(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SPEC)
    result = cli("tasks", "validate", str(bad))
    assert result.returncode == 2
    assert f"{bad}:5: metrics[0].name: unknown metric 'acc'; did you mean 'accuracy'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_tasks_show(cli):
    result = cli("tasks", "show", "glue/sst2")
    assert result.returncode == 0 and "kind: classification" in result.stdout and "sha256:" in result.stdout


def test_unknown_task_suggests(cli):
    result = cli("tasks", "show", "glue/sst")
    assert result.returncode == 2 and "did you mean 'glue/sst2'" in result.stderr


def test_run_with_missing_model_is_a_clean_error(cli, tmp_path):
    result = cli("run", "--model", str(tmp_path / "nope"), "--tasks", "demo/sentiment", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error:" in result.stderr


def test_help_and_tasks_list_do_not_import_torch():
    code = (
        "import sys\n"
        "from evalharness.cli import main\n"
        "main(['tasks', 'list'])\n"
        "for command in (['--help'], ['run', '--help'], ['rescore', '--help']):\n"
        "    try:\n"
        "        main(command)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'datasets') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr


def test_bad_arguments_exit_2(cli):
    result = cli("run", "--model", "x", "--tasks", "glue/sst2", "--batch-size", "0")
    assert result.returncode == 2 and "must be at least 1" in result.stderr
