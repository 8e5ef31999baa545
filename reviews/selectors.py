"""Reads for the review pipeline, shaped once so detail views run a fixed number of queries."""

import json
from collections.abc import Iterable
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import CharField, Count, F, Model, Prefetch, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncMonth

from core.roles import Role, user_has_role
from core.sql import quoted_table
from reviews.models import Arbitration, Assignment, Review, WorkLog, WorkLogState
from tasks.models import Candidate, Task, TaskSlot, TaskState, Turn, ValidatorResult


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


# A task's turns with their blinded answers, as the API shows them, built as JSON by PostgreSQL:
# one round trip instead of three prefetches, and no model instances for the long answers (two
# 300-line diffs per turn). Plain SQL because the same nested ArraySubquery/JSONObject
# expression costs about 7 ms of Python to build on every request.
_BLIND_TURNS = """
SELECT task.id, (
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
    FROM {turn} t WHERE t.task_id = task.id
)
FROM {task} task WHERE task.id = ANY(%s)
"""

# Changes whenever a validator result of the task is added, changed or removed.
_STAMP = "count(*) || '.' || COALESCE(max(v.updated_at)::text, '')"
_EVIDENCE_STAMP = "(SELECT {stamp} FROM {validatorresult} v WHERE v.task_id = {outer}.task_id)"
_EVIDENCE_STAMPS = (
    "SELECT v.task_id, {stamp} FROM {validatorresult} v"
    " WHERE v.task_id = ANY(%s) GROUP BY v.task_id"
)
_NO_EVIDENCE = "0."

# A task's turns and answers change only in these states; every way out of them is a transition
# that saves the task and so moves its `updated_at`, which is part of the cache key. Evidence can
# still arrive later: its stamp is part of the key too.
_ANSWERS_CHANGE_IN = {TaskState.DRAFT, TaskState.GENERATING, TaskState.GENERATION_FAILED}
BLIND_TURNS_CACHE_SECONDS = 3600


def _tables(**models: type[Model]) -> dict[str, str]:
    return {name: quoted_table(model) for name, model in models.items()}


def evidence_stamp(outer: type[Model]) -> RawSQL:
    """Annotation for `attach_blind_turns`: the state of the task's validator results."""
    tables = _tables(validatorresult=ValidatorResult, outer=outer)
    # Only table names from the models go into the text; the query takes no input.
    sql = _EVIDENCE_STAMP.format(stamp=_STAMP, **tables)
    return RawSQL(sql, (), output_field=CharField())  # noqa: S611


def _evidence_stamps(task_ids: set[int]) -> dict[int, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            _EVIDENCE_STAMPS.format(stamp=_STAMP, **_tables(validatorresult=ValidatorResult)),
            [list(task_ids)],
        )
        return dict(cursor.fetchall())


def _cache_key(row: Assignment | Arbitration, stamp: str) -> str | None:
    task = row.task
    if task.state in _ANSWERS_CHANGE_IN:
        return None
    return f"blind-turns:{task.pk}:{task.updated_at.isoformat()}:{stamp}"


def _build_blind_turns(task_ids: set[int]) -> dict[int, list[dict[str, Any]]]:
    tables = _tables(
        validatorresult=ValidatorResult,
        candidate=Candidate,
        taskslot=TaskSlot,
        turn=Turn,
        task=Task,
    )
    with connection.cursor() as cursor:
        cursor.execute(_BLIND_TURNS.format(**tables), [list(task_ids)])
        # Django reads jsonb as text (its JSONField decodes it itself).
        return {task_id: json.loads(turns) for task_id, turns in cursor.fetchall()}


def attach_blind_turns(rows: Iterable[Assignment | Arbitration]) -> None:
    """Sets `blind_turns` (a task's turns with its blinded answers) on assignments or arbitrations
    (their tasks read with them), best read with the `evidence_stamp` annotation: rows without it
    cost one query more.

    The turns are the same for everyone who sees the task, and settle once it leaves authoring:
    they come from the cache when they can, else from one query for all the rows' tasks. The
    cache is a shortcut only: while Redis is away every read goes to the database.
    """
    rows = list(rows)
    unstamped = {row.task_id for row in rows if not hasattr(row, "evidence_stamp")}
    stamps = _evidence_stamps(unstamped) if unstamped else {}
    keys = {
        row.pk: _cache_key(
            row, getattr(row, "evidence_stamp", None) or stamps.get(row.task_id, _NO_EVIDENCE)
        )
        for row in rows
    }
    cached = cache.get_many([key for key in keys.values() if key])
    missing = {row.task_id for row in rows if keys[row.pk] not in cached}
    built = _build_blind_turns(missing) if missing else {}
    settled = {
        keys[row.pk]: built[row.task_id] for row in rows if keys[row.pk] and row.task_id in built
    }
    if settled:
        cache.set_many(settled, timeout=BLIND_TURNS_CACHE_SECONDS)
    for row in rows:
        key = keys[row.pk]
        row.blind_turns = cached[key] if key in cached else built[row.task_id]


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
    """The same as the API shows them, ready for `attach_blind_turns`."""
    return _own_assignments(reviewer).annotate(evidence_stamp=evidence_stamp(Assignment))


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
    """`arbitration_detail` as the API shows it, ready for `attach_blind_turns`."""
    return _with_reviews(arbitrations_visible_to(user=user)).annotate(
        evidence_stamp=evidence_stamp(Arbitration)
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


def with_author_feedback(tasks: QuerySet[Task]) -> QuerySet[Task]:
    """Adds each task's reviews, for `author_feedback`, in one query for the whole list."""
    return tasks.prefetch_related(
        Prefetch("reviews", queryset=Review.objects.order_by("round", "id"))
    )


def author_feedback(task: Task) -> list[Review]:
    """The reviews an author may read: every closed round's, never the open round's."""
    open_round = task.round if task.state == TaskState.IN_REVIEW else None
    return [review for review in task.reviews.all() if review.round != open_round]
