"""Reads for the review pipeline, shaped once so detail views run a fixed number of queries."""

from typing import Any

from django.db import connection
from django.db.models import Count, F, JSONField, Model, Prefetch, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncMonth

from marlin.roles import Role, user_has_role
from reviews.models import Arbitration, Assignment, Review, WorkLog, WorkLogState
from tasks.models import Candidate, TaskSlot, Turn, ValidatorResult


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


# A task's turns with their blinded answers, as the API shows them, built as JSON by PostgreSQL
# inside the outer query: one round trip instead of three prefetches, and no model instances for
# the long answers (two 300-line diffs per turn). Plain SQL because the same nested
# ArraySubquery/JSONObject expression costs about 7 ms of Python to build on every request.
_BLIND_TURNS = """(
SELECT COALESCE(jsonb_agg(jsonb_build_object(
    'index', t.index,
    'prompt', t.prompt,
    'candidates', (
        SELECT COALESCE(jsonb_agg(jsonb_build_object(
            'slot', s.label,
            'output', c.output,
            'diff', c.diff,
            'validators', (
                SELECT COALESCE(jsonb_agg(jsonb_build_object(
                    'key', v.key,
                    'passed', v.passed,
                    'severity', v.severity,
                    'message', v.message,
                    'details', v.details
                ) ORDER BY v.key), '[]'::jsonb)
                FROM {validatorresult} v WHERE v.candidate_id = c.id
            )
        ) ORDER BY s.label), '[]'::jsonb)
        FROM {candidate} c JOIN {taskslot} s ON s.id = c.slot_id
        WHERE c.turn_id = t.id
    )
) ORDER BY t.index), '[]'::jsonb)
FROM {turn} t WHERE t.task_id = {outer}.task_id
)"""


def blind_turns(outer: type[Model]) -> RawSQL:
    """The blinded turns of the task of each `outer` row (an assignment or an arbitration)."""
    tables = {
        name: connection.ops.quote_name(model._meta.db_table)
        for name, model in {
            "validatorresult": ValidatorResult,
            "candidate": Candidate,
            "taskslot": TaskSlot,
            "turn": Turn,
            "outer": outer,
        }.items()
    }
    # Only table names from the models go into the text; the query takes no input.
    return RawSQL(_BLIND_TURNS.format(**tables), (), output_field=JSONField())  # noqa: S611


def _own_assignments(reviewer: Any) -> QuerySet[Assignment]:
    return (
        Assignment.objects.filter(reviewer=reviewer)
        .select_related("task__repository", "task__campaign__rubric_version__rubric", "review")
        .order_by("-id")
    )


def assignments_of(*, reviewer: Any) -> QuerySet[Assignment]:
    """The reviewer's own assignments, each with its blinded task and the pinned rubric version."""
    return _own_assignments(reviewer).prefetch_related(_turns_with_candidates("task__"))


def assignment_views_of(*, reviewer: Any) -> QuerySet[Assignment]:
    """The same as the API shows them: the blinded turns come as JSON (`blind_turns`)."""
    return _own_assignments(reviewer).annotate(blind_turns=blind_turns(Assignment))


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


def _with_reviews(arbitrations: QuerySet[Arbitration]) -> QuerySet[Arbitration]:
    reviews = Review.objects.select_related("reviewer").order_by("id")
    return arbitrations.prefetch_related(Prefetch("task__reviews", queryset=reviews))


def arbitration_detail(*, user: Any) -> QuerySet[Arbitration]:
    return _with_reviews(arbitrations_visible_to(user=user)).prefetch_related(
        _turns_with_candidates("task__")
    )


def arbitration_views(*, user: Any) -> QuerySet[Arbitration]:
    """`arbitration_detail` as the API shows it: the blinded turns come as JSON (`blind_turns`)."""
    return _with_reviews(arbitrations_visible_to(user=user)).annotate(
        blind_turns=blind_turns(Arbitration)
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
