"""Reads for the tasks app, each query shaped once (no N+1 in the API)."""

from typing import Any

from django.db.models import F, Func, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from core.roles import Role, user_has_role
from tasks.models import (
    Campaign,
    Candidate,
    CandidateState,
    ModelVersion,
    Repository,
    Task,
    TaskSlot,
    Turn,
    ValidatorResult,
)


def repositories_search(
    *, search: str | None = None, active: bool | None = None
) -> QuerySet[Repository]:
    queryset = Repository.objects.all()
    if search:
        queryset = queryset.filter(Q(full_name__icontains=search) | Q(language__iexact=search))
    if active is not None:
        queryset = queryset.filter(active=active)
    return queryset.order_by("full_name")


def sees_model_identities(user: Any) -> bool:
    return user_has_role(user, Role.LEAD, Role.AUDITOR)


def _count(model: type, **filters: Any) -> Subquery:
    rows = model.objects.filter(**filters).order_by().values("pk")
    return Subquery(rows.annotate(n=Func(F("pk"), function="COUNT")).values("n")[:1])


def with_generation_counts(queryset: QuerySet[Task]) -> QuerySet[Task]:
    """Adds what the transition conditions read, so listing tasks needs no query per task."""
    return queryset.annotate(
        turns_total=Coalesce(_count(Turn, task=OuterRef("pk")), 0),
        slots_total=Coalesce(_count(TaskSlot, task=OuterRef("pk")), 0),
        candidates_total=Coalesce(_count(Candidate, turn__task=OuterRef("pk")), 0),
        candidates_succeeded=Coalesce(
            _count(Candidate, turn__task=OuterRef("pk"), state=CandidateState.SUCCEEDED), 0
        ),
    )


def tasks_visible_to(*, user: Any) -> QuerySet[Task]:
    """Leads and auditors see every task; an author sees their own; anyone else none."""
    queryset = with_generation_counts(
        Task.objects.select_related("repository", "author", "campaign")
    ).prefetch_related(
        Prefetch("turns", queryset=Turn.objects.order_by("index")),
        Prefetch(
            "validator_results", queryset=ValidatorResult.objects.filter(candidate__isnull=True)
        ),
    )
    if user_has_role(user, Role.LEAD, Role.AUDITOR):
        return queryset
    if user_has_role(user, Role.AUTHOR):
        return queryset.filter(author=user)
    return queryset.none()


def candidates_of(*, task: Task) -> QuerySet[Candidate]:
    return (
        Candidate.objects.filter(turn__task=task)
        .select_related("turn", "slot__model_version")
        .prefetch_related("validator_results")
        .order_by("turn__index", "slot__label")
    )


def model_versions() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.order_by("slug")


def campaigns() -> QuerySet[Campaign]:
    spent = (
        Candidate.objects.filter(turn__task__campaign=OuterRef("pk"))
        .order_by()
        .values("turn__task__campaign")
        .annotate(total=Sum("token_charge"))
        .values("total")
    )
    return (
        Campaign.objects.select_related("rubric_version__rubric")
        .prefetch_related("model_versions")
        .annotate(tokens_spent=Coalesce(Subquery(spent), 0))
    )
