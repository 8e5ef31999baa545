"""Writes for the tasks app: one transaction each; the audit trigger records every row changed."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import Count
from rest_framework.exceptions import ValidationError

from core.errors import Conflict
from core.fsm import apply_transition, transition_check, transition_locked
from rubrics.models import RubricVersion
from tasks import generation, spend, validator_runs
from tasks.models import (
    Campaign,
    Candidate,
    CandidateState,
    ModelVersion,
    Repository,
    Task,
    TaskSlot,
    TaskState,
    Turn,
    ValidatorResult,
)

SLOT_LABELS = "ABCDEFGH"


class ValidationFailed(Conflict):
    """Blocking validators failed; `detail` lists them."""

    default_code = "validation_failed"
    default_detail = "Blocking validators failed."


@transaction.atomic
def repository_create(
    *,
    full_name: str,
    url: str,
    default_branch: str = "main",
    language: str = "",
    license: str = "",
    source_url: str = "",
) -> Repository:
    """Adds one repository to the catalogue."""
    return Repository.objects.create(
        full_name=full_name,
        url=url,
        default_branch=default_branch,
        language=language,
        license=license,
        source_url=source_url,
    )


@transaction.atomic
def model_version_create(
    *,
    slug: str,
    provider: str,
    model: str,
    base_url: str = "",
    api_key_env: str = "",
    parameters: dict[str, Any] | None = None,
) -> ModelVersion:
    """Registers a model version (its key stays in the environment variable it names)."""
    return ModelVersion.objects.create(
        slug=slug,
        provider=provider,
        model=model,
        base_url=base_url,
        api_key_env=api_key_env,
        parameters=parameters or {},
    )


@transaction.atomic
def campaign_create(
    *,
    actor: Any,
    name: str,
    rubric_version: RubricVersion,
    model_versions: Sequence[ModelVersion],
    reviewers_per_task: int = 3,
    **options: Any,
) -> Campaign:
    """Creates a campaign pinned to one rubric version over two or more model versions."""
    if len({mv.pk for mv in model_versions}) < 2:
        raise ValidationError(
            {"model_versions": ["A campaign compares at least two model versions."]}
        )
    if len(model_versions) > len(SLOT_LABELS):
        raise ValidationError({"model_versions": [f"At most {len(SLOT_LABELS)} model versions."]})
    campaign = Campaign.objects.create(
        name=name,
        rubric_version=rubric_version,
        reviewers_per_task=reviewers_per_task,
        created_by=actor,
        **options,
    )
    campaign.model_versions.set(model_versions)
    return campaign


def _times_first(campaign: Campaign) -> Counter[int]:
    return Counter(
        dict(
            TaskSlot.objects.filter(task__campaign=campaign, label="A")
            .values("model_version")
            .annotate(n=Count("id"))
            .values_list("model_version", "n")
        )
    )


def balanced_slot_orders(
    versions: Sequence[ModelVersion], times_first: Counter[int], count: int
) -> list[list[ModelVersion]]:
    """Slot orders (A, B, …) for `count` new tasks: each version goes first in as equal a share
    of the campaign's tasks as can be (`times_first` counts the tasks so far, and is updated);
    ties and the other slots are drawn at random, so no position is predictable."""
    orders = []
    for _ in range(count):
        fewest = min(times_first[v.pk] for v in versions)
        first = random.choice([v for v in versions if times_first[v.pk] == fewest])  # noqa: S311
        times_first[first.pk] += 1
        rest = [v for v in versions if v.pk != first.pk]
        random.shuffle(rest)
        orders.append([first, *rest])
    return orders


@transaction.atomic
def task_create(
    *,
    actor: Any,
    campaign: Campaign,
    repository: Repository,
    base_commit: str,
    kind: str,
    scenario: dict[str, str],
    prompt: str,
) -> Task:
    """Creates a draft task with its first turn and its blind slot labels."""
    # One task at a time per campaign, so the balance of `A` labels stays exact.
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    task = Task.objects.create(
        campaign=campaign,
        author=actor,
        repository=repository,
        base_commit=base_commit.lower(),
        kind=kind,
        scenario_title=scenario["title"],
        scenario_description=scenario.get("description", ""),
        scenario_url=scenario.get("url", ""),
    )
    versions = list(campaign.model_versions.order_by("pk"))
    (order,) = balanced_slot_orders(versions, _times_first(campaign), 1)
    TaskSlot.objects.bulk_create(
        TaskSlot(task=task, model_version=version, label=SLOT_LABELS[i])
        for i, version in enumerate(order)
    )
    Turn.objects.create(task=task, index=1, prompt=prompt)
    return task


def draft_locked(task: Task, actor: Any, doing: str) -> Task:
    """The task, locked, when `actor` is its author and it is a draft (inside a transaction)."""
    locked = Task.objects.select_for_update().get(pk=task.pk)
    if locked.author_id != actor.pk:
        raise PermissionError(f"Only the task's author may {doing}.")
    if locked.state != TaskState.DRAFT:
        raise Conflict(f"A task can {doing} only in draft; it is '{locked.state}'.")
    return locked


@transaction.atomic
def task_update(*, task: Task, actor: Any, fields: dict[str, Any]) -> Task:
    """Edits a draft task's scenario, repository, base commit or kind."""
    locked = draft_locked(task, actor, "be edited")
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.save()
    return locked


@transaction.atomic
def turn_add(*, task: Task, actor: Any, prompt: str) -> Turn:
    """Adds a follow-up prompt; the models answer it at the next `generate`."""
    locked = draft_locked(task, actor, "take a follow-up")
    last = locked.turns.order_by("-index").values_list("index", flat=True).first() or 0
    return Turn.objects.create(task=locked, index=last + 1, prompt=prompt)


@transaction.atomic
def task_generate(*, task: Task, actor: Any) -> Task:
    """Queues a job for every unanswered (turn, slot); the task is `generating` until they end."""
    # The campaign comes along (unlocked) for the budget check.
    locked = Task.objects.select_for_update(of=("self",)).select_related("campaign").get(pk=task.pk)
    slots = list(locked.slots.all())
    answered = set(Candidate.objects.filter(turn__task=locked).values_list("turn_id", "slot_id"))
    missing = [
        Candidate(turn=turn, slot=slot)
        for turn in locked.turns.order_by("index")
        for slot in slots
        if (turn.pk, slot.pk) not in answered
    ]
    spend.ensure_budget_left(locked.campaign)
    transition_locked(locked, "generate", actor=actor)
    Candidate.objects.bulk_create(missing)
    generation.dispatch_on_commit(generation.next_candidates(locked))
    return locked


@transaction.atomic
def task_retry(*, task: Task, actor: Any) -> Task:
    """Gives failed candidates a fresh set of attempts and generates again."""
    # The campaign comes along (unlocked) for the budget check.
    locked = Task.objects.select_for_update(of=("self",)).select_related("campaign").get(pk=task.pk)
    spend.ensure_budget_left(locked.campaign)
    transition_locked(locked, "retry", actor=actor)
    for candidate in Candidate.objects.select_for_update().filter(
        turn__task=locked, state=CandidateState.FAILED
    ):
        transition_locked(candidate, "reset", actor=None)
    generation.dispatch_on_commit(generation.next_candidates(locked))
    return locked


def task_check_submittable(*, task: Task, actor: Any, rationale: str) -> None:
    """Checks the submit transition's guards, then runs the task validators and stores the results.

    The results are committed (they are shown with the task) whether or not submit proceeds;
    raises ValidationFailed when a blocking one fails. `reviews.services.task_submit` calls it.
    """
    with transaction.atomic():
        locked = Task.objects.select_for_update().get(pk=task.pk)
        transition_check(locked, "submit", actor=actor)
        locked.author_rationale = rationale
        results = validator_runs.task_validate(task=locked)
    failing = [
        {
            "key": r.key,
            "message": r.message,
            **({"candidate": r.candidate_id} if r.candidate_id else {}),
        }
        for r in [*results, *ValidatorResult.objects.filter(task=task, candidate__isnull=False)]
        if not r.passed and r.severity == ValidatorResult.Severity.BLOCKING
    ]
    if failing:
        raise ValidationFailed({"failing": failing})


@transaction.atomic
def task_revise(*, task: Task, actor: Any) -> Task:
    """The author reopens a task sent back for changes: draft again, in the next round."""
    return apply_transition(task, "revise", actor=actor)


@transaction.atomic
def campaign_rerun(
    *, actor: Any, campaign: Campaign, name: str, model_versions: Sequence[ModelVersion]
) -> Campaign:
    """A new campaign on the same prompts and rubric version, over other model versions.

    Every completed task of the first campaign becomes a draft task of the new one, by the same
    author, with every turn's prompt in order and a link to its source; the authors generate
    and submit them as usual.
    """
    rerun = campaign_create(
        actor=actor,
        name=name,
        rubric_version=campaign.rubric_version,
        model_versions=model_versions,
        reviewers_per_task=campaign.reviewers_per_task,
        policy_override=campaign.policy_override,
        validators=campaign.validators,
        evidence=campaign.evidence,
        author_rate_cents=campaign.author_rate_cents,
        review_rate_cents=campaign.review_rate_cents,
        arbitration_rate_cents=campaign.arbitration_rate_cents,
        review_timeout_minutes=campaign.review_timeout_minutes,
        deadline=campaign.deadline,
        rerun_of=campaign,
    )
    sources = list(
        Task.objects.filter(campaign=campaign, state=TaskState.COMPLETED)
        .prefetch_related("turns")
        .order_by("id")
    )
    tasks = Task.objects.bulk_create(
        Task(
            campaign=rerun,
            author_id=source.author_id,
            repository_id=source.repository_id,
            base_commit=source.base_commit,
            kind=source.kind,
            scenario_title=source.scenario_title,
            scenario_description=source.scenario_description,
            scenario_url=source.scenario_url,
            source_task=source,
        )
        for source in sources
    )
    versions = list(rerun.model_versions.order_by("pk"))
    orders = balanced_slot_orders(versions, Counter(), len(sources))
    turns: list[Turn] = []
    slots: list[TaskSlot] = []
    for source, task, order in zip(sources, tasks, orders, strict=True):
        slots.extend(
            TaskSlot(task=task, model_version=version, label=SLOT_LABELS[i])
            for i, version in enumerate(order)
        )
        turns.extend(
            Turn(task=task, index=turn.index, prompt=turn.prompt)
            for turn in sorted(source.turns.all(), key=lambda t: t.index)
        )
    TaskSlot.objects.bulk_create(slots)
    Turn.objects.bulk_create(turns)
    return rerun
