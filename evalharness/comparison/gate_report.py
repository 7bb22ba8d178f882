"""Gate results for CI: JUnit XML (one test case per rule), a Markdown summary for a job
summary or pull-request comment, JSON, and a terminal table.

Four statuses: passed, failed, not evaluated (a rule that could not be checked: the gate
exits 2; JUnit ``<error>``) and skipped (an ``optional`` rule that could not be checked;
JUnit ``<skipped>``)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import asdict
from typing import TYPE_CHECKING

from evalharness.comparison.gate import (
    FAILED,
    NOT_EVALUATED,
    PASSED,
    SKIPPED,
    CheckResult,
    GateReport,
    RuleResult,
)
from evalharness.comparison.gate_results import SequentialRecord
from evalharness.jsonvalues import JSONObject
from evalharness.types import finite_or_none

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["GATE_SCHEMA", "print_gate", "to_dict", "to_junit", "to_markdown", "warnings"]

GATE_SCHEMA = "evalharness.comparison.gate/1"
BADGES = {PASSED: "✅ pass", FAILED: "❌ fail", NOT_EVALUATED: "⛔ not evaluated", SKIPPED: "⏭️ skipped"}
STYLES = {PASSED: "green", FAILED: "red", NOT_EVALUATED: "bold red", SKIPPED: "yellow"}
VERDICTS = {0: "✅ passed", 1: "❌ failed", 2: "⛔ not evaluated"}
# Characters XML 1.0 cannot hold (a rule name or task from YAML may contain them).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _summary(report: GateReport) -> str:
    counts = report.counts()
    return ", ".join(f"{counts[status]} {status}" for status in (PASSED, FAILED, NOT_EVALUATED, SKIPPED))


def _mde_text(check: CheckResult) -> str:
    """E.g. ``MDE 4.3 (power 0.8, alpha 0.05)``; empty for checks without a test."""
    mde = check.mde
    if not mde:
        return ""
    value = mde.get("value")
    if value is None:
        return f"MDE undefined: {mde.get('reason', 'no estimate')}"
    return f"MDE {_short(value)} (power {mde['power']:g}, alpha {mde['alpha']:g})"


def _interval_text(check: CheckResult) -> str:
    interval = check.interval
    if not interval:
        return ""
    level = f"{100 * interval['confidence']:g}%"
    low, high, estimate = interval["low"], interval["high"], interval["estimate"]
    if low is None or high is None or estimate is None:
        return f"{level} CI undefined ({interval['method']})"
    return f"{_short(estimate)} [{level} CI {_short(low)}, {_short(high)}] ({interval['method']})"


def _short(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def _check_line(check: CheckResult) -> str:
    line = f"[{check.status}] {check.check} ({check.description}): {check.detail}"
    extra = [text for text in (_interval_text(check), _mde_text(check)) if text]
    if check.sequential:
        extra.append(_sequential_text(check.sequential))
    if extra:
        line += "\n    " + "; ".join(extra)
    for warning in (check.mde_warning, check.noise_warning):
        if warning:
            line += f"\n    warning: {warning}"
    return line


def _sequential_text(sequential: SequentialRecord) -> str:
    return (
        f"sequential: {sequential['examples_used']} of {sequential['examples_total']} examples "
        f"(saving {sequential['saving']:.0%}, order seed {sequential['order_seed']}, batches of {sequential['batch_size']})"
    )


def warnings(report: GateReport) -> list[str]:
    """Every check whose threshold is below what its test can detect or within the noise."""
    return [
        f"{rule.name}: {check.check}: {warning}"
        for rule in report.rules
        for check in rule.checks
        for warning in (check.mde_warning, check.noise_warning)
        if warning
    ]


def _run_label(run: JSONObject | None) -> str:
    if run is None:
        return "none (absolute rules only)"
    return f"{run['model']} ({run['path']}, {run['fingerprint']})"


def _case_name(rule: RuleResult) -> str:
    return f"{rule.name}: " + ", ".join(check.description for check in rule.checks)


def _message(checks: list[CheckResult]) -> str:
    return _xml("; ".join(f"{check.check}: {check.detail}" for check in checks))


def to_junit(report: GateReport) -> str:
    """JUnit XML: a test suite for the policy, one test case per rule; a failed check is a
    ``<failure>``, a check that could not be evaluated an ``<error>``, a skipped optional
    check ``<skipped>``."""
    counts = report.counts()
    attributes = {
        "tests": str(len(report.rules)),
        "failures": str(counts[FAILED]),
        "errors": str(counts[NOT_EVALUATED]),
        "skipped": str(counts[SKIPPED]),
    }
    suites = ET.Element("testsuites", {"name": "evalharness gate", **attributes})
    suite = ET.SubElement(suites, "testsuite", {"name": _xml(f"evalharness gate ({report.policy_path})"), **attributes})
    properties = ET.SubElement(suite, "properties")
    for name, value in (("policy", report.policy_path), ("candidate", _run_label(report.candidate)), ("baseline", _run_label(report.baseline))):
        ET.SubElement(properties, "property", {"name": name, "value": _xml(value)})
    for rule in report.rules:
        case = ET.SubElement(suite, "testcase", {"classname": _xml(f"evalharness.comparison.gate.{rule.task}"), "name": _xml(_case_name(rule)), "time": "0"})
        lines = _xml("\n".join(_check_line(check) for check in rule.checks) + f"\n(rule at {rule.where})")
        by_status = {status: [check for check in rule.checks if check.status == status] for status in (FAILED, NOT_EVALUATED, SKIPPED)}
        if by_status[FAILED]:
            ET.SubElement(case, "failure", {"message": _message(by_status[FAILED]), "type": "GateRuleFailed"}).text = lines
        elif by_status[NOT_EVALUATED]:
            ET.SubElement(case, "error", {"message": _message(by_status[NOT_EVALUATED]), "type": "GateRuleNotEvaluated"}).text = lines
        elif by_status[SKIPPED]:
            ET.SubElement(case, "skipped", {"message": _message(by_status[SKIPPED])})
        ET.SubElement(case, "system-out").text = lines
        cautions = [f"{check.check}: {warning}" for check in rule.checks for warning in (check.mde_warning, check.noise_warning) if warning]
        if cautions:
            ET.SubElement(case, "system-err").text = _xml("warning: " + "\nwarning: ".join(cautions))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _cell(value: object) -> str:
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
    lines = [
        f"## evalharness gate {VERDICTS[report.exit_code]}",
        "",
        f"**{_summary(report)}** of {len(report.rules)} rules in `{_cell(report.policy_path)}`",
        "",
        f"- Candidate: {_cell(_run_label(report.candidate))}",
        f"- Baseline: {_cell(_run_label(report.baseline))}",
        "",
        "| Result | Rule | Check | Candidate | Baseline | Change | p | n | Detail | Interval (candidate − baseline, better direction) | Margin | Detectable (MDE) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | --- |",
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
                "" if check.n is None else str(check.n),
                check.detail + (f" ({_sequential_text(check.sequential)})" if check.sequential else ""),
                _interval_text(check),
                "" if check.margin is None else _short(check.margin),
                _mde_text(check) + (" ⚠️" if check.mde_warning or check.noise_warning else ""),
            ]
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    lines += ["", "p: the adjusted p-value of a `significant` rule's paired test, or the one-sided p-value of a `noninferior`/`within` t test."]
    found = warnings(report)
    if found:
        lines += ["", "**Warnings: thresholds below what the gate can detect or within the measured noise:**", ""]
        lines += [f"- ⚠️ {_cell(warning)}" for warning in found]
    problems = report.problems()
    if problems:
        lines += ["", "**The gate could not be evaluated (exit code 2):**", ""]
        lines += [f"- {_cell(problem)}" for problem in problems]
    if report.notes:
        lines += ["", "<details><summary>Notes</summary>", ""]
        lines += [f"- {_cell(note)}" for note in report.notes]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def to_dict(report: GateReport) -> JSONObject:
    def check_dict(check: CheckResult) -> JSONObject:
        row = asdict(check)
        for key in ("candidate", "baseline", "change", "p_value"):
            row[key] = finite_or_none(row[key])
        return row

    return {
        "schema": GATE_SCHEMA,
        "power": report.policy.power,
        "warnings": [*warnings(report)],
        "passed": report.passed,
        "verdict": report.verdict,
        "exit_code": report.exit_code,
        "policy": report.policy_path,
        "candidate": report.candidate,
        "baseline": report.baseline,
        "summary": {**report.counts()},
        "rules": [
            {"name": r.name, "task": r.task, "metric": r.metric, "where": r.where, "status": r.status, "checks": [check_dict(c) for c in r.checks]}
            for r in report.rules
        ],
        "settings": asdict(report.settings),
        "problems": [*report.problems()],
        "notes": [*report.notes],
    }


def print_gate(report: GateReport, *, console: Console | None = None) -> None:
    """One row per check, then the verdict. Names and details come from the policy and the
    runs, so they are plain text, never rich markup (a rule called '[/]' is text); a table too
    wide for the terminal becomes one block per check (``evalharness.terminal``)."""
    from evalharness.terminal import Cell, Column, print_note, print_table
    from evalharness.terminal import console as make_console

    console = console or make_console()
    print_note(console, "candidate:", _run_label(report.candidate))
    print_note(console, "baseline: ", _run_label(report.baseline))
    columns = [Column("result"), Column("rule", key=True), Column("check", key=True), Column("n", "right"), Column("detail")]
    rows = [
        [Cell(check.status, STYLES[check.status]), rule.name, check.description, "" if check.n is None else str(check.n), check.detail]
        for rule in report.rules
        for check in rule.checks
    ]
    print_table(console, columns, rows, title=f"gate {report.policy_path}")
    for rule in report.rules:
        for check in rule.checks:
            extra = [text for text in (_interval_text(check), _mde_text(check)) if text]
            if check.sequential:
                extra.append(_sequential_text(check.sequential))
            if extra:
                print_note(console, f"{rule.name}: {check.check}:", "; ".join(extra))
    for warning in warnings(report):
        print_note(console, "warning:", warning)
    for note in report.notes:
        print_note(console, Cell("note:", "dim"), note)
    verdict = {0: "[bold green]gate passed[/]", 1: "[bold red]gate FAILED[/]", 2: "[bold red]gate NOT EVALUATED[/] (exit code 2)"}
    console.print(f"{verdict[report.exit_code]} (rules: {_summary(report)})")
