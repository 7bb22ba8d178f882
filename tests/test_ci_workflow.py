"""Issue 19, CI integration: the documented GitHub Actions workflow and the composite action
parse, call only real ``evalharness`` commands and options (checked against the CLI's own
parser, as ``evalharness <command> --help`` shows them), and post ONE pull-request comment
found by a hidden marker and updated in place."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest
import yaml

from evalharness.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
ACTION = REPO / ".github" / "actions" / "evalharness-gate" / "action.yml"
WORKFLOW = REPO / ".github" / "workflows" / "evalharness-gate.yml"


def _commands() -> dict[str, set[str]]:
    """evalharness command -> every option string its parser accepts."""
    parser = build_parser()
    subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return {
        name: {option for action in sub._actions for option in action.option_strings}
        for name, sub in subparsers.choices.items()
    }


def _scripts(document: dict) -> list[str]:
    steps = document.get("runs", {}).get("steps") or [step for job in document["jobs"].values() for step in job["steps"]]
    return [step["run"] for step in steps if "run" in step]


def _invocations(script: str) -> list[tuple[str, list[str]]]:
    """(command, options) of every evalharness call; options also from `args+=(...)` lines,
    attributed to the calls of the same script."""
    joined = re.sub(r"\\\n\s*", " ", script)
    calls, extra = [], []
    for line in joined.splitlines():
        if "+=(" in line:
            extra += [token for token in shlex.split(line.split("+=(", 1)[1].rstrip(");"), posix=True) if token.startswith("--")]
        if not re.match(r"\s*evalharness\s", line):  # a command line, not a message mentioning it
            continue
        tokens = shlex.split(line.split("||")[0], posix=True)
        calls.append((tokens[1], [token.split("=")[0] for token in tokens[2:] if token.startswith("--")]))
    return [(command, options + extra) for command, options in calls]


@pytest.mark.parametrize("path", [ACTION, WORKFLOW], ids=["action", "workflow"])
def test_ci_files_only_call_real_evalharness_commands_and_options(path):
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    commands = _commands()
    calls = [call for script in _scripts(document) for call in _invocations(script)]
    assert calls, f"{path} calls no evalharness command"
    for command, options in calls:
        assert command in commands, f"{path}: 'evalharness {command}' is not a command"
        unknown = sorted(set(options) - commands[command])
        assert not unknown, f"{path}: evalharness {command} has no option(s) {unknown}"


def test_action_gates_uploads_and_updates_one_pull_request_comment():
    action = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    uses = [step.get("uses", "") for step in steps]
    assert any(use.startswith("actions/upload-artifact@") for use in uses)
    comment = next(step for step in steps if step.get("uses", "").startswith("actions/github-script@"))
    script = comment["with"]["script"]
    marker = re.search(r"'(<!-- [^']+ -->)'", script).group(1)
    assert "listComments" in script and "updateComment" in script and "createComment" in script
    assert "includes(marker)" in script and marker == "<!-- evalharness-gate -->"
    # The gate's exit code is kept until the report is uploaded and the comment posted.
    gate = next(step for step in steps if step.get("id") == "gate")
    assert "|| status=$?" in gate["run"] and 'echo "exit-code=$status"' in gate["run"]
    assert steps[-1]["run"].strip().startswith("exit") and "steps.gate.outputs.exit-code" in steps[-1]["env"]["STATUS"]
    assert all(step.get("if", "").startswith("always()") for step in steps if "uses" in step)


def test_workflow_uses_the_composite_action_and_blesses_releases():
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    gate_steps = workflow["jobs"]["gate"]["steps"]
    step = next(step for step in gate_steps if step.get("uses") == "./.github/actions/evalharness-gate")
    assert {"model", "policy", "baseline"} <= set(step["with"])
    assert workflow["permissions"]["pull-requests"] == "write"
    bless = " ".join(_scripts({"jobs": {"bless": workflow["jobs"]["bless"]}}))
    assert "evalharness bless" in bless and "--replace" in bless
