"""Writes for rubrics. Versions are immutable; a change is a new version plus its log entry."""

from __future__ import annotations

import math
from typing import Any

from django.db import IntegrityError, transaction
from rest_framework.exceptions import ValidationError
from rest_framework.settings import api_settings

from core.context import audit_insert, audit_reason
from rubrics.models import Rubric, RubricRevision, RubricVersion
from rubrics.selectors import rubric_latest_version

DEFAULT_POLICY = {"max_score_spread": 1, "preference_sign_must_agree": True}
CRITERION_FIELDS = ("key", "title", "guidance", "scale_min", "scale_max", "weight")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _criterion_problem(criterion: Any, seen: set[str]) -> str | None:
    if not isinstance(criterion, dict):
        return "must be an object."
    key = criterion.get("key", "")
    low, high = criterion.get("scale_min", 1), criterion.get("scale_max", 5)
    weight = criterion.get("weight", 1.0)
    if not isinstance(key, str) or not key:
        return "a key is needed."
    if key in seen:
        return f"key '{key}' is used twice."
    if not isinstance(criterion.get("title", key), str):
        return "the title must be text."
    if not isinstance(criterion.get("guidance", ""), str):
        return "the guidance must be text."
    if not _is_int(low) or not _is_int(high) or low >= high:
        return "scale_min must be below scale_max."
    if not (_is_int(weight) or isinstance(weight, float)) or not 0 < weight < math.inf:
        return "the weight must be a positive number."
    return None


def validate_criteria(criteria: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Normalises criteria; raises ValidationError naming the first problem found."""
    if not isinstance(criteria, list) or not criteria:
        raise ValidationError({"criteria": ["At least one criterion is needed."]})
    seen: set[str] = set()
    normalised = []
    for i, criterion in enumerate(criteria):
        problem = _criterion_problem(criterion, seen)
        if problem:
            raise ValidationError({"criteria": [f"Criterion {i}: {problem}"]})
        key = criterion["key"]
        seen.add(key)
        normalised.append(
            {
                "key": key,
                "title": criterion.get("title", key),
                "guidance": criterion.get("guidance", ""),
                "scale_min": criterion.get("scale_min", 1),
                "scale_max": criterion.get("scale_max", 5),
                "weight": float(criterion.get("weight", 1.0)),
            }
        )
    return normalised


def validate_policy(policy: dict[str, Any] | None) -> dict[str, Any]:
    """The policy completed with the defaults; raises ValidationError on a wrong or unknown field."""
    if policy is not None and not isinstance(policy, dict):
        raise ValidationError({"policy": ["The policy must be an object."]})
    unknown = sorted(set(policy or {}) - set(DEFAULT_POLICY))
    if unknown:
        raise ValidationError({"policy": [f"Unknown policy fields: {', '.join(unknown)}."]})
    merged = {**DEFAULT_POLICY, **(policy or {})}
    spread = merged["max_score_spread"]
    if not _is_int(spread) or spread < 0:
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
    criteria, policy = validate_criteria(criteria), validate_policy(policy)
    try:
        with transaction.atomic():
            rubric = Rubric.objects.create(slug=slug, title=title, created_by=actor)
    except IntegrityError as exc:  # the slug was taken by a concurrent request
        raise ValidationError({"slug": ["A rubric with this slug already exists."]}) from exc
    RubricVersion.objects.create(
        rubric=rubric, number=1, criteria=criteria, policy=policy, created_by=actor
    )
    return rubric


def revision_diff(
    *,
    before_criteria: list[dict[str, Any]],
    after_criteria: list[dict[str, Any]],
    before_policy: dict[str, Any],
    after_policy: dict[str, Any],
) -> dict[str, Any]:
    """What a revision changes; empty when nothing does.

    `{"criteria": {"added": [criterion...], "removed": [criterion...],
    "changed": [{"key", "fields": {field: [before, after]}}], "order": [keys before, keys after]},
    "policy": {field: [before, after]}}`, each key present only when non-empty ("order" only when
    criteria kept by the revision change places).
    """
    before = {c["key"]: c for c in before_criteria}
    after = {c["key"]: c for c in after_criteria}
    criteria: dict[str, Any] = {}
    added = [c for c in after_criteria if c["key"] not in before]
    removed = [c for c in before_criteria if c["key"] not in after]
    changed = []
    for key, new in after.items():
        old = before.get(key)
        if old is None:
            continue
        fields = {
            name: [old.get(name), new.get(name)]
            for name in CRITERION_FIELDS
            if old.get(name) != new.get(name)
        }
        if fields:
            changed.append({"key": key, "fields": fields})
    kept_before = [c["key"] for c in before_criteria if c["key"] in after]
    kept_after = [c["key"] for c in after_criteria if c["key"] in before]
    for name, value in (("added", added), ("removed", removed), ("changed", changed)):
        if value:
            criteria[name] = value
    if kept_before != kept_after:
        criteria["order"] = [list(before), list(after)]
    policy = {
        name: [before_policy.get(name), after_policy.get(name)]
        for name in sorted(set(before_policy) | set(after_policy))
        if before_policy.get(name) != after_policy.get(name)
    }
    diff: dict[str, Any] = {}
    if criteria:
        diff["criteria"] = criteria
    if policy:
        diff["policy"] = policy
    return diff


def rubric_revise(
    *,
    rubric: Rubric,
    actor: Any,
    rationale: str,
    criteria: list[dict[str, Any]] | None = None,
    policy: dict[str, Any] | None = None,
    arbitration_id: int | None = None,
) -> RubricRevision:
    """Makes the next version of a rubric and its revision-log entry.

    `criteria`, when given, is the whole new list; `policy` is merged over the current one. The
    rubric row is locked for the transaction, so concurrent revisions queue up and number their
    versions one after another (the unique (rubric, number) constraint backs this up).
    """
    if not isinstance(rationale, str) or not rationale.strip():
        raise ValidationError({"rationale": ["A revision needs a rationale."]})
    with transaction.atomic(), audit_reason(rationale):
        locked = Rubric.objects.select_for_update().get(pk=rubric.pk)
        current = rubric_latest_version(locked)
        new_criteria = current.criteria if criteria is None else validate_criteria(criteria)
        if policy is not None and not isinstance(policy, dict):
            raise ValidationError({"policy": ["The policy must be an object."]})
        new_policy = validate_policy({**current.policy, **(policy or {})})
        diff = revision_diff(
            before_criteria=current.criteria,
            after_criteria=new_criteria,
            before_policy=current.policy,
            after_policy=new_policy,
        )
        if not diff:
            raise ValidationError(
                {
                    api_settings.NON_FIELD_ERRORS_KEY: [
                        f"This changes nothing in version {current.number}."
                    ]
                }
            )
        version = RubricVersion.objects.create(
            rubric=locked,
            number=current.number + 1,
            criteria=new_criteria,
            policy=new_policy,
            created_by=actor,
        )
        with audit_insert("rubric.revised", object_type="rubrics.rubricrevision"):
            return RubricRevision.objects.create(
                rubric=locked,
                from_version=current,
                to_version=version,
                changed_by=actor,
                rationale=rationale,
                diff=diff,
                source=(
                    RubricRevision.Source.MANUAL
                    if arbitration_id is None
                    else RubricRevision.Source.ARBITRATION
                ),
                arbitration_id=arbitration_id,
            )


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
