"""Writes for rubrics. Versions are immutable; a change is a new version plus its log entry."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from rest_framework.exceptions import ValidationError

from rubrics.models import Rubric, RubricVersion

DEFAULT_POLICY = {"max_score_spread": 1, "preference_sign_must_agree": True}


def validate_criteria(criteria: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Normalises criteria; raises ValidationError naming the first problem of each."""
    if not criteria:
        raise ValidationError({"criteria": ["At least one criterion is needed."]})
    seen: set[str] = set()
    normalised = []
    for i, criterion in enumerate(criteria):
        key = criterion.get("key", "")
        low, high = criterion.get("scale_min", 1), criterion.get("scale_max", 5)
        if key in seen:
            raise ValidationError({"criteria": [f"Criterion {i}: key '{key}' is used twice."]})
        if not isinstance(low, int) or not isinstance(high, int) or low >= high:
            raise ValidationError(
                {"criteria": [f"Criterion {i}: scale_min must be below scale_max."]}
            )
        seen.add(key)
        normalised.append(
            {
                "key": key,
                "title": criterion.get("title", key),
                "guidance": criterion.get("guidance", ""),
                "scale_min": low,
                "scale_max": high,
                "weight": float(criterion.get("weight", 1.0)),
            }
        )
    return normalised


def validate_policy(policy: dict[str, Any] | None) -> dict[str, Any]:
    merged = {**DEFAULT_POLICY, **(policy or {})}
    if not isinstance(merged["max_score_spread"], int) or merged["max_score_spread"] < 0:
        raise ValidationError(
            {"policy": ["max_score_spread must be a whole number of points, 0 or more."]}
        )
    if not isinstance(merged["preference_sign_must_agree"], bool):
        raise ValidationError({"policy": ["preference_sign_must_agree must be true or false."]})
    return merged


@transaction.atomic
def rubric_create(
    *,
    actor: Any,
    slug: str,
    title: str,
    criteria: list[dict[str, Any]],
    policy: dict[str, Any] | None = None,
) -> Rubric:
    """Creates a rubric and its version 1."""
    rubric = Rubric.objects.create(slug=slug, title=title, created_by=actor)
    RubricVersion.objects.create(
        rubric=rubric,
        number=1,
        criteria=validate_criteria(criteria),
        policy=validate_policy(policy),
        created_by=actor,
    )
    return rubric


CODE_CHANGE_CRITERIA = [
    {
        "key": "correctness",
        "title": "Correctness",
        "guidance": "Does the change do what the prompt asks, for every case the scenario implies? "
        "5: complete and right, edge cases handled; 3: main path right, an edge case missed; "
        "1: wrong or does not apply to the repository.",
        "scale_min": 1,
        "scale_max": 5,
        "weight": 2.0,
    },
    {
        "key": "security",
        "title": "Security",
        "guidance": "Does the change avoid introducing injection, unsafe deserialisation, secrets or "
        "widened permissions, and does a security fix block the whole class of attack? "
        "5: safe and closes the hole; 3: safe but leaves a variant open; 1: introduces a vulnerability.",
        "scale_min": 1,
        "scale_max": 5,
        "weight": 2.0,
    },
    {
        "key": "reliability",
        "title": "Reliability",
        "guidance": "Does the change fail safely: errors handled, no races, resources released, "
        "behaviour unchanged where it should be? 5: robust under failure; 1: crashes or corrupts data.",
        "scale_min": 1,
        "scale_max": 5,
        "weight": 1.0,
    },
    {
        "key": "maintainability",
        "title": "Maintainability",
        "guidance": "Would a maintainer accept it as is: follows the repository's style, small and "
        "focused, clear names, tests where the project has them? 5: merge as is; 1: needs a rewrite.",
        "scale_min": 1,
        "scale_max": 5,
        "weight": 1.0,
    },
]


def default_rubric(*, actor: Any = None) -> Rubric:
    """The shipped "code change" rubric (created once)."""
    existing = Rubric.objects.filter(slug="code-change").first()
    if existing:
        return existing
    return rubric_create(
        actor=actor,
        slug="code-change",
        title="Code change",
        criteria=CODE_CHANGE_CRITERIA,
        policy=DEFAULT_POLICY,
    )
