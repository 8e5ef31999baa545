"""Reads for rubrics, each list shaped in one query (no query per row in the API)."""

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import F, OuterRef, QuerySet, Subquery

from rubrics.models import Rubric, RubricRevision, RubricVersion


def rubric_latest_version(rubric: Rubric) -> RubricVersion:
    """The rubric's current (highest-numbered) version; every rubric has at least version 1."""
    return RubricVersion.objects.filter(rubric=rubric).latest("number")


def _latest(field: str) -> Subquery:
    newest = RubricVersion.objects.filter(rubric=OuterRef("pk")).order_by("-number")
    return Subquery(newest.values(field)[:1])


def rubrics_list() -> QuerySet[Rubric]:
    """Rubrics with `current_version` (the latest version's number)."""
    return Rubric.objects.annotate(current_version=_latest("number")).order_by("slug")


def rubrics_detailed() -> QuerySet[Rubric]:
    """Rubrics with `current_version`, its `criteria` and `policy`, and every version's number."""
    numbers = RubricVersion.objects.filter(rubric=OuterRef("pk")).order_by("number")
    return (
        Rubric.objects.select_related("created_by")
        .annotate(
            current_version=_latest("number"),
            current_criteria=_latest("criteria"),
            current_policy=_latest("policy"),
            version_numbers=ArraySubquery(numbers.values("number")),
        )
        .order_by("slug")
    )


def rubric_versions(*, slug: str) -> QuerySet[RubricVersion]:
    """The versions of the rubric named `slug`, oldest first."""
    return (
        RubricVersion.objects.filter(rubric__slug=slug)
        .select_related("created_by")
        .order_by("number")
    )


def rubric_revisions(*, rubric: Rubric) -> QuerySet[RubricRevision]:
    """The revision log of a rubric, oldest first, with the version numbers and who changed it."""
    return (
        RubricRevision.objects.filter(rubric=rubric)
        .select_related("changed_by")
        .annotate(from_number=F("from_version__number"), to_number=F("to_version__number"))
        .order_by("id")
    )
