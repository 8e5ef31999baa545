"""Reads for the review pipeline, shaped once so detail views run a fixed number of queries."""

from typing import Any

from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth

from marlin.roles import Role, user_has_role
from reviews.models import Arbitration, Assignment, Review, WorkLog, WorkLogState
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


def work_visible_to(user: Any) -> QuerySet[WorkLog]:
    """Everyone's work log for a lead, one's own for anyone else."""
    entries = WorkLog.objects.select_related("person").order_by("-id")
    return entries if user_has_role(user, Role.LEAD) else entries.filter(person=user)


def work_totals(entries: QuerySet[WorkLog]) -> dict[str, Any]:
    """Amounts and time over `entries`: in all, per person and per month, by payout state."""
    plain = entries.order_by()
    # Aliases must not shadow the model's own fields; renamed back below.
    sums = {
        "n_entries": Count("id"),
        "n_amount_cents": Sum("amount_cents", default=0),
        "n_time_spent_seconds": Sum("time_spent_seconds", default=0),
        **{
            f"n_{state}_cents": Sum("amount_cents", filter=Q(state=state), default=0)
            for state in WorkLogState.values
        },
    }

    def named(row: dict[str, Any]) -> dict[str, Any]:
        return {key.removeprefix("n_"): value for key, value in row.items()}

    return {
        "totals": named(plain.aggregate(**sums)),
        "by_person": [
            named(row)
            for row in plain.values("person_id", username=F("person__username"))
            .annotate(**sums)
            .order_by("username")
        ],
        "by_month": [
            {**named(row), "month": row["month"].date().isoformat()[:7]}
            for row in plain.annotate(month=TruncMonth("earned_at"))
            .values("month")
            .annotate(**sums)
            .order_by("month")
        ],
    }
