"""Running a campaign's chosen validators on a task or a candidate, and storing their results."""

from typing import Any

from tasks import validators
from tasks.models import Candidate, Task, ValidatorResult


def task_validate(*, task: Task) -> list[ValidatorResult]:
    """Runs the campaign's task validators and stores their results (one row per key)."""
    chosen = validators.chosen(task.campaign.validators, "task")
    return _store_results(task, None, chosen, task)


def candidate_validate(*, candidate: Candidate) -> list[ValidatorResult]:
    """Runs the campaign's candidate validators and stores their results."""
    chosen = validators.chosen(candidate.turn.task.campaign.validators, "candidate")
    return _store_results(candidate.turn.task, candidate, chosen, candidate)


def _store_results(
    task: Task, candidate: Candidate | None, chosen: list, subject: Any
) -> list[ValidatorResult]:
    results = []
    for check_def in chosen:
        check = check_def.run(subject)
        results.append(
            ValidatorResult(
                task=task,
                candidate=candidate,
                key=check_def.key,
                passed=check.passed,
                severity=check_def.severity,
                message=check.message,
                details=check.details,
            )
        )
    return ValidatorResult.objects.bulk_create(
        results,
        update_conflicts=True,
        unique_fields=["task", "candidate", "key"],
        update_fields=["passed", "severity", "message", "details", "updated_at"],
    )
