"""What a campaign asks to run on each candidate, and how each step's output becomes a finding.

A campaign's `evidence` setting: {"test_command": ["python", "-m", "pytest", "-q"],
"linters": ["ruff", "bandit"], "timeout_seconds": 120}. An empty setting turns evidence off.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.diffs import parse_diff
from tasks.evidence.sandbox import WORKSPACE, RunResult

# Per step: four steps at most, plus a clone, stay within the broker's visibility timeout (1 h),
# so a job that is still running is not delivered a second time.
MAX_TIMEOUT_SECONDS = 600
MAX_COMMAND_ARGS = 64
MAX_ARG_CHARS = 1000
# What a finding keeps of a step's output: the end, where summaries and failures are.
KEPT_OUTPUT_CHARS = 8000

# Stages of an `evidence.apply` failure that say nothing about the change itself: the repository
# or this worker's sandbox could not be had. Such a result is retried by the next job.
NOT_ABOUT_THE_CHANGE = frozenset({"source", "checkout", "sandbox"})

APPLY = ["git", "apply", "--recount", "--whitespace=nowarn", "--verbose"]


@dataclass(frozen=True)
class EvidenceCheck:
    key: str
    bears_on: str  # the rubric criterion a reviewer should read the finding beside


# Every finding an evidence job stores, by its validator result key.
CHECKS = {
    check.key: check
    for check in (
        EvidenceCheck("evidence.apply", "correctness"),
        EvidenceCheck("evidence.tests", "correctness"),
        EvidenceCheck("evidence.ruff", "maintainability"),
        EvidenceCheck("evidence.bandit", "security"),
    )
}


@dataclass(frozen=True)
class EvidenceConfig:
    test_command: tuple[str, ...] = ()
    linters: tuple[str, ...] = ()
    timeout_seconds: int = 120


@dataclass(frozen=True)
class Finding:
    key: str
    passed: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def parse_config(raw: Any) -> EvidenceConfig | None:
    """The campaign's evidence setting, checked; None when it asks for no evidence.
    Raises ValueError naming what is wrong."""
    if raw in (None, {}):
        return None
    if not isinstance(raw, dict):
        raise ValueError("evidence must be an object")
    unknown = set(raw) - {"test_command", "linters", "timeout_seconds"}
    if unknown:
        raise ValueError(f"unknown evidence settings: {', '.join(sorted(unknown))}")
    command = raw.get("test_command", [])
    if not isinstance(command, list) or not all(isinstance(a, str) and a for a in command):
        raise ValueError("test_command must be a list of non-empty strings (no shell line)")
    if len(command) > MAX_COMMAND_ARGS or any(len(a) > MAX_ARG_CHARS for a in command):
        raise ValueError("test_command is too long")
    linters = raw.get("linters", [])
    if not isinstance(linters, list) or not set(linters) <= set(LINTERS):
        raise ValueError(f"linters must be a list drawn from {', '.join(LINTERS)}")
    timeout = raw.get("timeout_seconds", EvidenceConfig.timeout_seconds)
    if not isinstance(timeout, int) or isinstance(timeout, bool):
        raise ValueError("timeout_seconds must be an integer")
    if not 1 <= timeout <= MAX_TIMEOUT_SECONDS:
        raise ValueError(f"timeout_seconds must be between 1 and {MAX_TIMEOUT_SECONDS}")
    if not command and not linters:
        raise ValueError("name a test_command, linters, or both")
    return EvidenceConfig(tuple(command), tuple(dict.fromkeys(linters)), timeout)


def changed_python_files(diff: str, tree: Path) -> list[str]:
    """Python files the diff adds or changes that exist in the tree after it applied."""
    try:
        patch = parse_diff(diff)
    except ValueError:
        return []
    root = tree.resolve()
    files = []
    for changed in patch:
        if changed.is_removed_file:
            continue
        path = changed.path
        if not path.endswith(".py"):
            continue
        target = (root / path).resolve()
        if target.is_relative_to(root) and target.is_file():
            files.append(str(target.relative_to(root)))
    return sorted(set(files))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _run_details(run: RunResult, key: str) -> dict[str, Any]:
    return {
        "bears_on": CHECKS[key].bears_on,
        "command": run.argv,
        "exit_code": run.exit_code,
        "duration_seconds": round(run.duration_seconds, 3),
        "stopped_by": run.stopped_by,
        "output_bytes": run.output_bytes,
        "output": run.output[-KEPT_OUTPUT_CHARS:],
    }


def _stopped_message(run: RunResult, limit: str) -> str | None:
    return {
        "wall_time": f"Stopped at the wall-time limit ({limit}).",
        "output_size": "Stopped: the output passed its size limit.",
        "cpu_time": "Stopped at the CPU-time limit.",
        "file_size": "Stopped: a file passed its size limit.",
        "killed": "Killed (memory or process limit).",
    }.get(run.stopped_by or "")


def apply_finding(run: RunResult) -> Finding:
    details = _run_details(run, "evidence.apply")
    if run.ok:
        return Finding("evidence.apply", True, "The change applies to the base commit.", details)
    return Finding(
        "evidence.apply",
        False,
        _stopped_message(run, "apply") or "The change does not apply to the base commit.",
        details,
    )


def unavailable_finding(reason: str, *, stage: str) -> Finding:
    return Finding(
        "evidence.apply",
        False,
        reason,
        {"stage": stage, "bears_on": CHECKS["evidence.apply"].bears_on},
    )


_PYTEST_COUNT = re.compile(
    r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected|warnings?)"
)
_PYTEST_SUMMARY = re.compile(r"^=*\s*(?:\d+ \w+(?:, )?)+.* in [\d.]+s", re.MULTILINE)
_UNITTEST_RAN = re.compile(r"^Ran (\d+) tests? in", re.MULTILINE)
_UNITTEST_FAILED = re.compile(r"^FAILED \(([^)]*)\)", re.MULTILINE)


def count_tests(output: str) -> dict[str, int]:
    """Pass/fail counts from pytest's or unittest's summary, when the output holds one."""
    summaries = _PYTEST_SUMMARY.findall(output)
    if summaries:
        counts: dict[str, int] = {}
        for number, word in _PYTEST_COUNT.findall(summaries[-1]):
            word = {"error": "errors", "warning": "warnings"}.get(word, word)
            counts[word] = int(number)
        return counts
    ran = _UNITTEST_RAN.findall(output)
    if ran:
        total = int(ran[-1])
        counts = {}
        failed = _UNITTEST_FAILED.findall(output)
        if failed:
            for part in failed[-1].split(","):
                name, _, number = part.strip().partition("=")
                if number.isdigit():
                    counts[{"failures": "failed"}.get(name, name)] = int(number)
        bad = counts.get("failed", 0) + counts.get("errors", 0) + counts.get("skipped", 0)
        counts["passed"] = max(0, total - bad)
        return counts
    return {}


def tests_finding(run: RunResult, timeout_seconds: int) -> Finding:
    counts = count_tests(run.output)
    details = {**_run_details(run, "evidence.tests"), "counts": counts}
    summary = ", ".join(f"{n} {word}" for word, n in counts.items())
    stopped = _stopped_message(run, f"{timeout_seconds} s")
    if stopped:
        return Finding("evidence.tests", False, stopped, details)
    if run.exit_code == 0:
        return Finding("evidence.tests", True, f"Tests pass ({summary or 'exit 0'}).", details)
    return Finding(
        "evidence.tests",
        False,
        f"Tests fail ({summary or f'exit {run.exit_code}'}).",
        details,
    )


def ruff_command(files: list[str]) -> list[str]:
    return ["ruff", "check", "--no-cache", "--output-format=json", "--exit-zero", "--", *files]


def ruff_finding(run: RunResult, files: list[str]) -> Finding:
    details = {**_run_details(run, "evidence.ruff"), "files": files}
    stopped = _stopped_message(run, "ruff")
    if stopped or run.exit_code != 0:
        return Finding("evidence.ruff", False, stopped or "ruff could not run.", details)
    try:
        issues = json.loads(run.output or "[]")
    except json.JSONDecodeError:
        return Finding("evidence.ruff", False, "ruff's report did not parse.", details)
    codes: dict[str, int] = {}
    listed = []
    for issue in issues:
        code = issue.get("code") or "syntax"
        codes[code] = codes.get(code, 0) + 1
        listed.append(
            {
                "code": code,
                "file": issue.get("filename", "").removeprefix(f"{WORKSPACE}/"),
                "line": (issue.get("location") or {}).get("row"),
                "text": str(issue.get("message", ""))[:300],
            }
        )
    details.update(issues=listed[:50], codes=codes, output="")
    if issues:
        return Finding("evidence.ruff", False, f"ruff: {_count(len(issues), 'issue')}.", details)
    return Finding("evidence.ruff", True, "ruff: no issues.", details)


def bandit_command(files: list[str]) -> list[str]:
    return ["bandit", "--format", "json", "--quiet", "--exit-zero", "--", *files]


def bandit_finding(run: RunResult, files: list[str]) -> Finding:
    details = {**_run_details(run, "evidence.bandit"), "files": files}
    stopped = _stopped_message(run, "bandit")
    if stopped or run.exit_code != 0:
        return Finding("evidence.bandit", False, stopped or "bandit could not run.", details)
    try:
        report = json.loads(run.output)
    except json.JSONDecodeError:
        return Finding("evidence.bandit", False, "bandit's report did not parse.", details)
    by_severity: dict[str, int] = {}
    issues = []
    for result in report.get("results", []):
        severity = str(result.get("issue_severity", "UNDEFINED")).lower()
        by_severity[severity] = by_severity.get(severity, 0) + 1
        issues.append(
            {
                "test_id": result.get("test_id"),
                "severity": severity,
                "file": str(result.get("filename", "")).removeprefix(f"{WORKSPACE}/"),
                "line": result.get("line_number"),
                "text": str(result.get("issue_text", ""))[:300],
            }
        )
    details.update(by_severity=by_severity, issues=issues[:50], output="")
    serious = by_severity.get("high", 0) + by_severity.get("medium", 0)
    if serious:
        return Finding(
            "evidence.bandit",
            False,
            f"bandit: {_count(serious, 'medium or high severity issue')}.",
            details,
        )
    return Finding("evidence.bandit", True, "bandit: no medium or high severity issues.", details)


@dataclass(frozen=True)
class Linter:
    command: Callable[[list[str]], list[str]]
    finding: Callable[[RunResult, list[str]], Finding]


LINTERS = {
    "ruff": Linter(ruff_command, ruff_finding),
    "bandit": Linter(bandit_command, bandit_finding),
}


def nothing_to_lint(linter: str) -> Finding:
    key = f"evidence.{linter}"
    details = {"files": [], "bears_on": CHECKS[key].bears_on}
    return Finding(key, True, "No Python file changed.", details)
