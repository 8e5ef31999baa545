"""Automated checks on a task and its candidates: a registry of named validators.

A campaign chooses validators by key (all of them when it names none). Blocking failures stop
`submit`; advisory ones are shown to reviewers, beside the rubric criterion they bear on.
`criterion_of` answers that for any result key, a validator's or an evidence check's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tasks.diffs import extract_diff, parse_diff
from tasks.evidence.checks import CHECKS as EVIDENCE_CHECKS
from tasks.models import Candidate, Task

BLOCKING = "blocking"
ADVISORY = "advisory"
MIN_PROMPT_CHARS = 20
MIN_RATIONALE_CHARS = 20
MAX_OUTPUT_CHARS = 200_000
_SHA = re.compile(r"^[0-9a-f]{7,40}$")
# Well-known credential shapes; a hit is flagged for the reviewer, not proof of a leak.
_SECRET_PATTERNS = {
    "aws_access_key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "private_key": re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
    "github_token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "openai_style_key": re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"),
    "slack_token": re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}\b"),
    "password_assignment": re.compile(
        r"(?i)\b(?:password|passwd|secret|api_key)\s*[:=]\s*['\"][^'\"\s]{8,}['\"]"
    ),
}


@dataclass(frozen=True)
class Check:
    passed: bool
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Validator:
    key: str
    severity: str
    target: str  # "task" or "candidate"
    run: Callable[[Any], Check]
    description: str
    bears_on: str | None = None  # the rubric criterion a reviewer should read the result beside


REGISTRY: dict[str, Validator] = {}


def validator(
    key: str, *, severity: str, target: str, description: str, bears_on: str | None = None
) -> Callable[[Callable[[Any], Check]], Callable[[Any], Check]]:
    def register(fn: Callable[[Any], Check]) -> Callable[[Any], Check]:
        REGISTRY[key] = Validator(key, severity, target, fn, description, bears_on)
        return fn

    return register


def criterion_of(key: str) -> str | None:
    """The rubric criterion the result stored under `key` (a validator's or an `evidence.*`
    check's) bears on; None when it bears on none, or the key is unknown."""
    entry = REGISTRY.get(key) or EVIDENCE_CHECKS.get(key)
    return entry.bears_on if entry else None


@validator(
    "prompt_length",
    severity=BLOCKING,
    target="task",
    description="every prompt is long enough to act on",
)
def _prompt_length(task: Task) -> Check:
    short = [t.index for t in task.turns.all() if len(t.prompt.strip()) < MIN_PROMPT_CHARS]
    if short:
        return Check(
            False,
            f"Prompts need at least {MIN_PROMPT_CHARS} characters (turns {short}).",
            {"turns": short},
        )
    return Check(True)


@validator(
    "rationale_length",
    severity=BLOCKING,
    target="task",
    description="the author's rationale says why",
)
def _rationale_length(task: Task) -> Check:
    if len(task.author_rationale.strip()) < MIN_RATIONALE_CHARS:
        return Check(False, f"The rationale needs at least {MIN_RATIONALE_CHARS} characters.")
    return Check(True)


@validator(
    "scenario_present",
    severity=BLOCKING,
    target="task",
    description="the scenario has a title and description",
)
def _scenario_present(task: Task) -> Check:
    missing = [
        name
        for name in ("scenario_title", "scenario_description")
        if not getattr(task, name).strip()
    ]
    if missing:
        return Check(
            False,
            "The scenario is incomplete.",
            {"missing": [m.removeprefix("scenario_") for m in missing]},
        )
    return Check(True)


@validator(
    "repository_active",
    severity=BLOCKING,
    target="task",
    description="the repository is still in the catalogue",
)
def _repository_active(task: Task) -> Check:
    if not task.repository.active:
        return Check(False, f"{task.repository.full_name} is no longer active in the catalogue.")
    return Check(True)


@validator(
    "base_commit_sha",
    severity=BLOCKING,
    target="task",
    description="the base commit is a hexadecimal SHA",
)
def _base_commit(task: Task) -> Check:
    if not _SHA.match(task.base_commit):
        return Check(False, "The base commit must be a 7 to 40 character hexadecimal SHA.")
    return Check(True)


@validator(
    "output_present",
    severity=BLOCKING,
    target="candidate",
    description="the model answered",
    bears_on="correctness",
)
def _output_present(candidate: Candidate) -> Check:
    if not candidate.output.strip():
        return Check(False, "The answer is empty.")
    return Check(True)


@validator(
    "diff_parses",
    severity=ADVISORY,
    target="candidate",
    description="the answer holds a well-formed unified diff",
    bears_on="correctness",
)
def _diff_parses(candidate: Candidate) -> Check:
    diff = candidate.diff or extract_diff(candidate.output)
    if not diff:
        return Check(False, "The answer holds no diff.")
    try:
        patch = parse_diff(diff)
    except ValueError as exc:
        return Check(False, f"The diff does not parse: {exc}")
    return Check(
        True,
        details={"files": len(patch), "added": patch.added, "removed": patch.removed},
    )


@validator(
    "output_size",
    severity=ADVISORY,
    target="candidate",
    description="the answer is within size limits",
    bears_on="maintainability",
)
def _output_size(candidate: Candidate) -> Check:
    size = len(candidate.output)
    if size > MAX_OUTPUT_CHARS:
        return Check(
            False, f"The answer has {size} characters (limit {MAX_OUTPUT_CHARS}).", {"chars": size}
        )
    return Check(True, details={"chars": size})


@validator(
    "no_secrets",
    severity=ADVISORY,
    target="candidate",
    description="the answer holds no likely credentials",
    bears_on="security",
)
def _no_secrets(candidate: Candidate) -> Check:
    found = sorted(
        name for name, pattern in _SECRET_PATTERNS.items() if pattern.search(candidate.output)
    )
    if found:
        return Check(False, "The answer may contain credentials.", {"kinds": found})
    return Check(True)


def chosen(keys: list[str], target: str) -> list[Validator]:
    selected = [REGISTRY[k] for k in keys if k in REGISTRY] if keys else list(REGISTRY.values())
    return [v for v in selected if v.target == target]
