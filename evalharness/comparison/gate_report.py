"""Gate results for CI: JUnit XML (one test case per rule), a Markdown summary for a job
summary or pull-request comment, JSON, and a terminal table."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import asdict
from typing import Any

from evalharness.comparison.gate import (
    FAILED,
    NOT_EVALUATED,
    PASSED,
    CheckResult,
    GateReport,
    RuleResult,
)
from evalharness.records.record import finite_or_none

__all__ = ["GATE_SCHEMA", "print_gate", "to_dict", "to_junit", "to_markdown"]

GATE_SCHEMA = "evalharness.comparison.gate/1"
BADGES = {PASSED: "✅ pass", FAILED: "❌ fail", NOT_EVALUATED: "⚠️ not evaluated"}
STYLES = {PASSED: "green", FAILED: "red", NOT_EVALUATED: "yellow"}


def _check_line(check: CheckResult) -> str:
    return f"[{check.status}] {check.check} ({check.description}): {check.detail}"


def _run_label(run: dict[str, Any] | None) -> str:
    if run is None:
        return "none (absolute rules only)"
    return f"{run['model']} ({run['path']}, {run['fingerprint']})"


def _case_name(rule: RuleResult) -> str:
    return f"{rule.name}: " + ", ".join(check.description for check in rule.checks)


def to_junit(report: GateReport) -> str:
    """JUnit XML: a test suite for the policy, one test case per rule; a failed check is a
    ``<failure>``, a rule with a check that could not be evaluated is ``<skipped>``."""
    counts = report.counts()
    attributes = {"tests": str(len(report.rules)), "failures": str(counts[FAILED]), "errors": "0", "skipped": str(counts[NOT_EVALUATED])}
    suites = ET.Element("testsuites", {"name": "evalharness gate", **attributes})
    suite = ET.SubElement(suites, "testsuite", {"name": f"evalharness gate ({report.policy_path})", **attributes})
    properties = ET.SubElement(suite, "properties")
    for name, value in (("policy", report.policy_path), ("candidate", _run_label(report.candidate)), ("baseline", _run_label(report.baseline))):
        ET.SubElement(properties, "property", {"name": name, "value": value})
    for rule in report.rules:
        case = ET.SubElement(suite, "testcase", {"classname": f"evalharness.comparison.gate.{rule.task}", "name": _case_name(rule), "time": "0"})
        lines = "\n".join(_check_line(check) for check in rule.checks) + f"\n(rule at {rule.where})"
        failed = [check for check in rule.checks if check.status == FAILED]
        skipped = [check for check in rule.checks if check.status == NOT_EVALUATED]
        if failed:
            message = "; ".join(f"{check.check}: {check.detail}" for check in failed)
            ET.SubElement(case, "failure", {"message": message, "type": "GateRuleFailed"}).text = lines
        elif skipped:
            ET.SubElement(case, "skipped", {"message": "; ".join(f"{check.check}: {check.detail}" for check in skipped)})
        ET.SubElement(case, "system-out").text = lines
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _p(value: float | None) -> str:
    return "" if value is None else f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def to_markdown(report: GateReport) -> str:
    """A summary for ``$GITHUB_STEP_SUMMARY`` or a pull-request comment: verdict, runs, one
    table row per check, notes."""
    counts = report.counts()
    verdict = "✅ passed" if report.passed else "❌ failed"
    lines = [
        f"## evalharness gate {verdict}",
        "",
        f"**{counts[PASSED]} passed, {counts[FAILED]} failed, {counts[NOT_EVALUATED]} not evaluated** "
        f"of {len(report.rules)} rules in `{report.policy_path}`",
        "",
        f"- Candidate: {_cell(_run_label(report.candidate))}",
        f"- Baseline: {_cell(_run_label(report.baseline))}",
        "",
        "| Result | Rule | Check | Candidate | Baseline | Change | p (adj.) | Detail |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for rule in report.rules:
        for check in rule.checks:
            cells = [
                BADGES[check.status],
                rule.name,
                check.description,
                _number(check.candidate),
                _number(check.baseline),
                _number(check.change, signed=True),
                _p(check.p_value),
                check.detail,
            ]
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    if report.notes:
        lines += ["", "<details><summary>Notes</summary>", ""]
        lines += [f"- {_cell(note)}" for note in report.notes]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def to_dict(report: GateReport) -> dict[str, Any]:
    def check_dict(check: CheckResult) -> dict[str, Any]:
        row = asdict(check)
        for key in ("candidate", "baseline", "change", "p_value"):
            row[key] = finite_or_none(row[key])
        return row

    return {
        "schema": GATE_SCHEMA,
        "passed": report.passed,
        "exit_code": report.exit_code,
        "policy": report.policy_path,
        "candidate": report.candidate,
        "baseline": report.baseline,
        "summary": report.counts(),
        "rules": [
            {"name": r.name, "task": r.task, "metric": r.metric, "where": r.where, "status": r.status, "checks": [check_dict(c) for c in r.checks]}
            for r in report.rules
        ],
        "settings": asdict(report.settings),
        "notes": report.notes,
    }


def print_gate(report: GateReport, *, console: Any = None) -> None:
    """One row per check, then the verdict."""
    from evalharness.terminal import Cell, Column, console as make_console, print_note, print_table

    console = console or make_console()
    print_note(console, "candidate:", _run_label(report.candidate))
    print_note(console, "baseline: ", _run_label(report.baseline))
    columns = [Column("result"), Column("rule", key=True), Column("check", key=True), Column("detail")]
    rows = [
        [Cell(check.status, STYLES[check.status]), rule.name, check.description, check.detail]
        for rule in report.rules
        for check in rule.checks
    ]
    print_table(console, columns, rows, title=f"gate {report.policy_path}")
    for note in report.notes:
        print_note(console, Cell("note:", "dim"), note)
    counts = report.counts()
    summary = f"{counts[PASSED]} passed, {counts[FAILED]} failed, {counts[NOT_EVALUATED]} not evaluated"
    console.print(f"[bold {'green' if report.passed else 'red'}]gate {'passed' if report.passed else 'FAILED'}[/] (rules: {summary})")
