"""Reads for the review pipeline, shaped once so detail views run a fixed number of queries."""

from typing import Any

from django.db.models import Prefetch, QuerySet

from marlin.roles import Role, user_has_role
from reviews.models import Arbitration, Assignment, Review
from tasks.models import Candidate, Turn


def _turns_with_candidates(prefix: str) -> Prefetch:
    candidates = (
        Candidate.objects.select_related("slot")
        .prefetch_related("validator_results")
        .order_by("slot__label")
    )
    return Prefetch(
        f"{prefix}turns",
        queryset=Turn.objects.order_by("index").prefetch_related(
            Prefetch("candidates", queryset=candidates)
        ),
    )


def assignments_of(*, reviewer: Any) -> QuerySet[Assignment]:
    """The reviewer's own assignments, each with its blinded task and the pinned rubric version."""
    return (
        Assignment.objects.filter(reviewer=reviewer)
        .select_related("task__repository", "task__campaign__rubric_version__rubric", "review")
        .prefetch_related(_turns_with_candidates("task__"))
        .order_by("-id")
    )


def arbitrations_visible_to(*, user: Any) -> QuerySet[Arbitration]:
    if not user_has_role(user, Role.ARBITER, Role.LEAD, Role.AUDITOR):
        return Arbitration.objects.none()
    queryset = Arbitration.objects.select_related(
        "task__repository", "task__campaign__rubric_version__rubric", "arbiter", "rubric_revision"
    ).order_by("-id")
    if not user_has_role(user, Role.LEAD, Role.AUDITOR):
        # Its reviews name their reviewers, whom a task's author never learns: an arbiter who
        # wrote the task (and may not decide it anyway) finds no such arbitration (404).
        queryset = queryset.exclude(task__author=user)
    return queryset


def arbitration_detail(*, user: Any) -> QuerySet[Arbitration]:
    reviews = Review.objects.select_related("reviewer").order_by("id")
    return arbitrations_visible_to(user=user).prefetch_related(
        _turns_with_candidates("task__"), Prefetch("task__reviews", queryset=reviews)
    )
