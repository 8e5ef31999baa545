"""Reads of the audit trail, each shaped to use one of `audit_event`'s indexes.

Index per filter (EXPLAIN on 100,000+ entries, see the report of issue 5):
- object_type + object_id: `audit_event_object (object_type, object_id, id)`, already in id order;
- actor: `audit_event_actor (actor_id, id)` (a username is resolved to its id first);
- action: `audit_event_action (action, id)`;
- since/until alone: `audit_event_at (at, id)`, or the primary key scanned from the newest end;
- request id: `audit_event_request (request_id)`.
"""

# ruff: noqa: S608  (the SQL below interpolates model labels and table names only, never input)
from __future__ import annotations

from typing import Any

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import Model, QuerySet

from audit.models import AuditEvent
from core.filters import UTCIsoDateTimeFilter
from core.sql import quoted_table
from reviews.models import Arbitration, Assignment, Outcome, Review, ReviewSlot
from rubrics.models import RubricRevision, RubricVersion
from tasks.models import Campaign, Candidate, Task, TaskSlot, Turn


class AuditEventFilter(django_filters.FilterSet):
    object_type = django_filters.CharFilter(field_name="object_type")
    object_id = django_filters.CharFilter(field_name="object_id")
    actor = django_filters.CharFilter(method="filter_actor", help_text="user id or username")
    action = django_filters.CharFilter(field_name="action")
    request_id = django_filters.CharFilter(field_name="request_id")
    since = UTCIsoDateTimeFilter(field_name="at", lookup_expr="gte")
    until = UTCIsoDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def filter_actor(self, queryset: QuerySet[AuditEvent], name: str, value: str) -> Any:
        if value.isdigit():
            return queryset.filter(actor_id=int(value))
        # By id, so a renamed user keeps their history; labels without a user ("system", a
        # database user) match the recorded label.
        user_id = (
            get_user_model().objects.filter(username=value).values_list("pk", flat=True).first()
        )
        if user_id is not None:
            return queryset.filter(actor_id=user_id)
        return queryset.filter(actor_id__isnull=True, actor=value)


def audit_events() -> QuerySet[AuditEvent]:
    return AuditEvent.objects.all()


def _type(model: type[Model]) -> str:
    return model._meta.label_lower


def _task_history_sql(*, with_identities: bool, with_reviews: bool) -> str:
    """One statement: the (object_type, object_id) of everything the task consists of, joined to
    the trail through `audit_event_object`, one index probe per object, in id order."""
    task, turn, candidate, slot = (quoted_table(m) for m in (Task, Turn, Candidate, TaskSlot))
    parts = [
        f"SELECT '{_type(Task)}', t.id::text FROM {task} t WHERE t.id = %(task)s",
        f"SELECT '{_type(Turn)}', id::text FROM {turn} WHERE task_id = %(task)s",
        f"SELECT '{_type(RubricVersion)}', id::text FROM judged",
        f"SELECT '{_type(RubricRevision)}', r.id::text FROM {quoted_table(RubricRevision)} r "
        f"WHERE r.to_version_id IN (SELECT id FROM judged)",
    ]
    if with_identities:
        parts += [
            f"SELECT '{_type(TaskSlot)}', id::text FROM {slot} WHERE task_id = %(task)s",
            f"SELECT '{_type(Candidate)}', c.id::text FROM {candidate} c "
            f"JOIN {turn} tu ON tu.id = c.turn_id WHERE tu.task_id = %(task)s",
        ]
    if with_reviews:
        parts += [
            f"SELECT '{_type(model)}', id::text FROM {quoted_table(model)} WHERE task_id = %(task)s"
            for model in (ReviewSlot, Assignment, Review, Arbitration, Outcome)
        ]
    review, outcome, arbitration = (quoted_table(m) for m in (Review, Outcome, Arbitration))
    # The rubric versions the task was judged under: the campaign's pinned version, the
    # versions its reviews and outcome name, and those its arbitrations created by revising.
    judged = f"""
        SELECT c.rubric_version_id AS id FROM {task} t JOIN {quoted_table(Campaign)} c
            ON c.id = t.campaign_id WHERE t.id = %(task)s
        UNION SELECT rubric_version_id FROM {review} WHERE task_id = %(task)s
        UNION SELECT rubric_version_id FROM {outcome} WHERE task_id = %(task)s
        UNION SELECT rv.to_version_id FROM {arbitration} a
            JOIN {quoted_table(RubricRevision)} rv ON rv.id = a.rubric_revision_id
            WHERE a.task_id = %(task)s
    """
    related = "\n        UNION ALL ".join(parts)
    columns = ", ".join(f"e.{f.column}" for f in AuditEvent._meta.concrete_fields)
    return f"""
    WITH judged AS ({judged}),
    related(object_type, object_id) AS (
        {related}
    )
    SELECT {columns} FROM related r
    JOIN audit_event e ON e.object_type = r.object_type AND e.object_id = r.object_id
    ORDER BY e.id
    """


def task_history(*, task_id: int, with_identities: bool, with_reviews: bool) -> list[AuditEvent]:
    """The task's whole story in order, in one query whatever its size.

    `with_identities`: candidates and slots (they name the model versions).
    `with_reviews`: review slots, assignments, reviews, arbitrations and the outcome (they name
    the reviewers). Objects deleted since are not found (the domain tables protect them).
    """
    sql = _task_history_sql(with_identities=with_identities, with_reviews=with_reviews)
    return list(AuditEvent.objects.raw(sql, {"task": task_id}))
