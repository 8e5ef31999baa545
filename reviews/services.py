"""Writes for the review pipeline. Each is one transaction; every state change is a transition."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from rest_framework.exceptions import NotFound, ValidationError

from core.context import audit_insert
from core.errors import Conflict
from core.fsm import apply_transition, transition_locked
from reviews.agreement import ReviewData, decide_round, evidence_conflicts
from reviews.models import (
    Arbitration,
    ArbitrationState,
    Assignment,
    AssignmentState,
    Outcome,
    Review,
    ReviewSlot,
    SlotState,
    WorkLog,
)
from rubrics.models import RubricVersion
from rubrics.services import rubric_revise
from tasks import services as task_services
from tasks.evidence.checks import NOT_ABOUT_THE_CHANGE
from tasks.models import Candidate, Task, TaskState, ValidatorResult
from tasks.validators import criterion_of


def task_submit(*, task: Task, actor: Any, preference: int, rationale: str) -> Task:
    """Sends a draft to review and opens the round's review slots.

    Every turn must be answered, the author's judgment given and the blocking validators pass
    (`tasks.services.task_check_submittable`, whose results are kept even when this refuses).
    """
    task_services.task_check_submittable(task=task, actor=actor, rationale=rationale)
    with transaction.atomic():
        submitted = apply_transition(
            task,
            "submit",
            actor=actor,
            preference=preference,
            rationale=rationale,
            at=timezone.now(),
        )
        review_slots_open(task=submitted)
        return submitted


@transaction.atomic
def task_cancel(*, task: Task, actor: Any, reason: str) -> Task:
    """A lead stops a task for good; its open review slots close."""
    cancelled = apply_transition(task, "cancel", actor=actor, reason=reason)
    review_slots_close(task=cancelled)
    return cancelled


def review_slots_open(*, task: Task) -> list[ReviewSlot]:
    """Opens the campaign's number of review slots for the task's current round."""
    return ReviewSlot.objects.bulk_create(
        ReviewSlot(task=task, round=task.round, number=n)
        for n in range(1, task.campaign.reviewers_per_task + 1)
    )


def review_slots_close(*, task: Task) -> None:
    """Stops the task's unfilled slots from taking reviewers (the task was cancelled)."""
    now = timezone.now()
    for slot in ReviewSlot.objects.select_for_update().filter(
        task=task, state__in=[SlotState.OPEN, SlotState.CLAIMED]
    ):
        for assignment in slot.assignments.select_for_update().filter(state=AssignmentState.ACTIVE):
            transition_locked(
                assignment, "expire", actor=None, reason="the task was cancelled", at=now
            )
        transition_locked(slot, "close", actor=None)


def _open_slots_for(reviewer: Any, campaign_id: int | None):  # type: ignore[no-untyped-def]
    already = Assignment.objects.filter(
        task=OuterRef("task"),
        reviewer=reviewer,
        state__in=[AssignmentState.ACTIVE, AssignmentState.SUBMITTED],
    )
    slots = (
        ReviewSlot.objects.filter(state=SlotState.OPEN, task__state=TaskState.IN_REVIEW)
        .exclude(task__author=reviewer)
        .exclude(Exists(already))
    )
    if campaign_id is not None:
        slots = slots.filter(task__campaign_id=campaign_id)
    # Oldest first: tasks waiting longest get their reviews first.
    return slots.order_by("opened_at", "id")


def assignment_claim_next(*, reviewer: Any, campaign_id: int | None = None) -> Assignment | None:
    """Gives the reviewer the next open slot, or None. Safe under concurrency.

    Slots locked by a concurrent claimer are skipped (SKIP LOCKED), so reviewers do not queue
    behind each other; only when every candidate slot is locked does it wait for one, so a burst
    of claims never answers "nothing open" while slots remain.
    """
    try:
        return _claim_next(reviewer, campaign_id)
    except IntegrityError:
        # The same reviewer claimed a slot of this task at the same moment elsewhere; the whole
        # claim rolls back (no savepoint around the insert: two round trips fewer per claim).
        raise Conflict("You already hold a slot of this task.") from None


def claimable_slots(reviewer: Any, campaign_id: int | None) -> QuerySet[ReviewSlot]:
    """The open slots a claim picks from, read with what the claimant is shown next (the task,
    its repository and rubric)."""
    return _open_slots_for(reviewer, campaign_id).select_related(
        "task__repository", "task__campaign__rubric_version__rubric"
    )


@transaction.atomic
def _claim_next(reviewer: Any, campaign_id: int | None) -> Assignment | None:
    slots = claimable_slots(reviewer, campaign_id)
    slot = None
    for _ in range(5):
        slot = slots.select_for_update(skip_locked=True, of=("self",)).first()
        if slot is not None:
            break
        waited_for = slots.select_for_update(of=("self",)).first()  # every one is locked: wait
        if waited_for is None:
            return None
        waited_for.refresh_from_db(fields=["state"])
        if waited_for.state == SlotState.OPEN:
            slot = waited_for
            break
    if slot is None:
        return None
    task = slot.task
    now = timezone.now()
    transition_locked(slot, "claim", actor=None)
    return Assignment.objects.create(
        slot=slot,
        task=task,
        round=slot.round,
        reviewer=reviewer,
        claimed_at=now,
        due_at=now + timedelta(minutes=task.campaign.review_timeout_minutes),
    )


def _lock_own_active(assignment: Assignment, actor: Any, *, with_task: bool = False) -> Assignment:
    """Locks the actor's assignment with its slot (and its task) in one query; 404 if not theirs."""
    locks, related = ("self", "slot"), ["slot"]
    if with_task:
        locks, related = (*locks, "task"), [*related, "task__campaign__rubric_version"]
    locked = (
        Assignment.objects.select_for_update(of=locks)
        .select_related(*related)
        .filter(pk=assignment.pk, reviewer=actor)
        .first()
    )
    if locked is None:
        raise NotFound("You have no such assignment.")
    if locked.state != AssignmentState.ACTIVE:
        raise Conflict(f"This assignment is '{locked.state}'; it takes no more changes.")
    if locked.due_at <= timezone.now():
        raise Conflict("This assignment has expired; claim the next one.")
    return locked


@transaction.atomic
def assignment_release(*, assignment: Assignment, actor: Any) -> Assignment:
    """The reviewer gives the slot back to the queue."""
    locked = _lock_own_active(assignment, actor)
    transition_locked(
        locked, "release", actor=actor, reason="released by the reviewer", at=timezone.now()
    )
    transition_locked(locked.slot, "reopen", actor=None)
    return locked


def assignments_expire_due() -> int:
    """Expires active assignments past their due time and reopens their slots. Returns how many."""
    expired = 0
    due = Assignment.objects.filter(state=AssignmentState.ACTIVE, due_at__lte=timezone.now())
    for assignment_id in list(due.values_list("pk", flat=True)[:1000]):
        with transaction.atomic():
            assignment = (
                Assignment.objects.select_for_update(skip_locked=True)
                .filter(pk=assignment_id, state=AssignmentState.ACTIVE)
                .first()
            )
            if assignment is None:
                continue
            slot = ReviewSlot.objects.select_for_update().get(pk=assignment.slot_id)
            transition_locked(
                assignment, "expire", actor=None, reason="not submitted in time", at=timezone.now()
            )
            if slot.state == SlotState.CLAIMED:
                transition_locked(slot, "reopen", actor=None)
            expired += 1
    return expired


def expected_score_keys(
    task: Task, version: RubricVersion
) -> dict[tuple[int, str, str], tuple[int, int]]:
    """Every (turn, slot, criterion) a review must score, with the criterion's scale."""
    shown = Candidate.objects.filter(turn__task=task).values_list("turn__index", "slot__label")
    return {
        (turn, label, c["key"]): (c["scale_min"], c["scale_max"])
        for turn, label in shown.order_by().distinct()
        for c in version.criteria
    }


def validate_scores(
    scores: list[dict[str, Any]],
    expected: dict[tuple[int, str, str], tuple[int, int]],
    *,
    single_turn: bool,
) -> list[dict[str, Any]]:
    """Checks scores against the pinned rubric version; returns them normalised, or raises 400."""
    problems: list[str] = []
    seen: dict[tuple[int, str, str], dict[str, Any]] = {}
    criteria = {key[2] for key in expected}
    labels = {key[1] for key in expected}
    for i, item in enumerate(scores):
        turn = item.get("turn", 1 if single_turn else None)
        key = (turn, item["slot"], item["criterion"])
        if item["criterion"] not in criteria:
            problems.append(
                f"scores[{i}]: '{item['criterion']}' is not a criterion of this rubric version."
            )
        elif item["slot"] not in labels:
            problems.append(f"scores[{i}]: there is no slot '{item['slot']}'.")
        elif turn is None:
            problems.append(f"scores[{i}]: name the turn; this task has several.")
        elif key not in expected:
            problems.append(f"scores[{i}]: there is no turn {turn}.")
        elif key in seen:
            problems.append(
                f"scores[{i}]: {key[2]} of slot {key[1]} turn {key[0]} is scored twice."
            )
        else:
            low, high = expected[key]
            if not low <= item["score"] <= high:
                problems.append(f"scores[{i}]: {item['score']} is off the scale {low}..{high}.")
            seen[key] = {
                "turn": turn,
                "slot": key[1],
                "criterion": key[2],
                "score": item["score"],
                "comment": item.get("comment", ""),
            }
    missing = sorted(set(expected) - set(seen))
    if missing and not problems:
        shown = ", ".join(f"{c} of {s} (turn {t})" for t, s, c in missing[:10])
        problems.append(f"Missing scores: {shown}.")
    if problems:
        raise ValidationError({"scores": problems})
    return list(seen.values())


@transaction.atomic
def review_submit(
    *,
    assignment: Assignment,
    actor: Any,
    scores: list[dict[str, Any]],
    preference: int,
    rationale: str,
    verdict: str,
    comments: str = "",
    time_spent_seconds: int | None = None,
) -> Review:
    """Stores the review (immutable) and, when it is the round's last, closes the round."""
    locked = _lock_own_active(assignment, actor, with_task=True)
    task = locked.task
    if task.state != TaskState.IN_REVIEW or task.round != locked.round:
        raise Conflict("This task is no longer in this review round.")
    version = task.campaign.rubric_version
    expected = expected_score_keys(task, version)
    single_turn = len({key[0] for key in expected}) == 1
    normalised = validate_scores(scores, expected, single_turn=single_turn)
    with audit_insert("review.submitted", object_type="reviews.review"):
        review = Review.objects.create(
            assignment=locked,
            task=task,
            round=locked.round,
            reviewer=actor,
            rubric_version=version,
            scores=normalised,
            preference=preference,
            rationale=rationale,
            verdict=verdict,
            comments=comments,
            time_spent_seconds=time_spent_seconds,
        )
    now = timezone.now()
    transition_locked(locked, "submit", actor=actor, at=now)
    worklog_record(
        person=actor,
        task=task,
        kind=WorkLog.Kind.REVIEW,
        review=review,
        time_spent_seconds=time_spent_seconds,
        started_at=locked.claimed_at,
        at=now,
    )
    transition_locked(locked.slot, "fill", actor=None)
    filled = ReviewSlot.objects.filter(task=task, round=task.round, state=SlotState.FILLED).count()
    if filled == task.campaign.reviewers_per_task:
        _close_round(task, version)
    return review


def _close_round(task: Task, version: RubricVersion) -> None:
    reviews = list(Review.objects.filter(task=task, round=task.round).order_by("id"))
    decision = decide_round(
        [ReviewData(r.preference, r.verdict, r.scores) for r in reviews], task.campaign.policy
    )
    conflicts = []
    if decision.kind in ("consensus", "disagreement"):
        conflicts = _evidence_conflicts(task, reviews, version)
    if decision.kind == "consensus" and conflicts:
        # Agreeing on a top score that the candidate's own evidence contradicts is for an arbiter.
        decision = replace(decision, kind="disagreement")
    reason = f"round {task.round} closed: {decision.kind}"
    if decision.kind == "changes_requested":
        transition_locked(task, "request_changes", actor=None, reason=reason)
    elif decision.kind == "rejected":
        transition_locked(task, "reject", actor=None, reason=reason)
    elif decision.kind == "consensus":
        transition_locked(task, "complete", actor=None, reason=reason)
        _author_earns(task)
        Outcome.objects.create(
            task=task,
            round=task.round,
            method=Outcome.Method.CONSENSUS,
            preference=decision.preference,
            scores=decision.scores,
            rubric_version=version,
            agreement=decision.agreement,
        )
    else:
        transition_locked(task, "escalate", actor=None, reason=reason)
        Arbitration.objects.create(
            task=task,
            round=task.round,
            disagreement={
                **decision.disagreement,
                "agreement": decision.agreement,
                "evidence_conflicts": conflicts,
            },
        )


def _evidence_conflicts(
    task: Task, reviews: list[Review], version: RubricVersion
) -> list[dict[str, Any]]:
    failing: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for result in ValidatorResult.objects.filter(
        task=task, candidate__isnull=False, key__startswith="evidence.", passed=False
    ).values("key", "message", "details", "candidate__turn__index", "candidate__slot__label"):
        if result["details"].get("stage") in NOT_ABOUT_THE_CHANGE:
            continue  # the repository could not be had: no evidence about the change itself
        failing.setdefault(
            (result["candidate__turn__index"], result["candidate__slot__label"]), []
        ).append(
            {
                "key": result["key"],
                "message": result["message"],
                "bears_on": criterion_of(result["key"]),
            }
        )
    if not failing:
        return []
    return evidence_conflicts([(r.pk, r.scores) for r in reviews], failing, version.criteria)


def _lock_arbitration(arbitration: Arbitration) -> tuple[Arbitration, Task]:
    locked = Arbitration.objects.select_for_update().get(pk=arbitration.pk)
    task = (
        Task.objects.select_for_update()
        .select_related("campaign__rubric_version__rubric")
        .get(pk=locked.task_id)
    )
    return locked, task


def _check_independent(task: Task, actor: Any) -> None:
    if task.author_id == actor.pk:
        raise PermissionError("You authored this task; another arbiter must decide it.")
    if Review.objects.filter(task=task, reviewer=actor).exists():
        raise PermissionError("You reviewed this task; another arbiter must decide it.")


@transaction.atomic
def arbitration_claim(*, arbitration: Arbitration, actor: Any) -> Arbitration:
    """One arbiter takes the disagreement; never the task's author or one of its reviewers."""
    locked, task = _lock_arbitration(arbitration)
    _check_independent(task, actor)
    return transition_locked(locked, "claim", actor=actor, arbiter=actor, at=timezone.now())


def _claimed_by(locked: Arbitration, task: Task, actor: Any) -> None:
    if locked.state == ArbitrationState.OPEN:
        _check_independent(task, actor)
        transition_locked(locked, "claim", actor=actor, arbiter=actor, at=timezone.now())
    elif locked.state == ArbitrationState.CLAIMED and locked.arbiter_id != actor.pk:
        raise Conflict("Another arbiter holds this arbitration.")


@transaction.atomic
def arbitration_resolve(
    *,
    arbitration: Arbitration,
    actor: Any,
    preference: int,
    scores: list[dict[str, Any]],
    rationale: str,
    rubric_revision: dict[str, Any] | None = None,
) -> Arbitration:
    """Decides the task (completed, by arbitration); may revise the rubric in the same transaction."""
    locked, task = _lock_arbitration(arbitration)
    _claimed_by(locked, task, actor)
    version = task.campaign.rubric_version
    single_turn = task.turns.count() == 1
    normalised = validate_scores(
        scores, expected_score_keys(task, version), single_turn=single_turn
    )
    revision = None
    if rubric_revision:
        revision = rubric_revise(
            rubric=version.rubric,
            actor=actor,
            rationale=rubric_revision["rationale"],
            criteria=rubric_revision.get("criteria"),
            policy=rubric_revision.get("policy"),
            arbitration_id=locked.pk,
        )
    locked.rubric_revision = revision
    transition_locked(
        locked,
        "resolve",
        actor=actor,
        reason=rationale,
        preference=preference,
        scores=normalised,
        rationale=rationale,
        at=timezone.now(),
    )
    transition_locked(task, "resolve", actor=actor, reason=rationale)
    _author_earns(task)
    _arbiter_earns(locked, task)
    Outcome.objects.create(
        task=task,
        round=locked.round,
        method=Outcome.Method.ARBITRATION,
        preference=preference,
        scores=[{k: s[k] for k in ("turn", "slot", "criterion", "score")} for s in normalised],
        rubric_version=version,
        agreement=locked.disagreement.get("agreement", {}),
        arbitration=locked,
    )
    return locked


@transaction.atomic
def arbitration_send_back(*, arbitration: Arbitration, actor: Any, rationale: str) -> Arbitration:
    """The arbiter returns the task to its author for changes."""
    locked, task = _lock_arbitration(arbitration)
    _claimed_by(locked, task, actor)
    transition_locked(
        locked, "send_back", actor=actor, reason=rationale, rationale=rationale, at=timezone.now()
    )
    transition_locked(task, "send_back", actor=actor, reason=rationale)
    _arbiter_earns(locked, task)
    return locked


def arbitration_decide(
    *, arbitration: Arbitration, actor: Any, decision: str, rationale: str, **resolution: Any
) -> Arbitration:
    """The arbiter's decision as the API and the workspace take it: `resolve` or `send_back`."""
    if decision == "send_back":
        return arbitration_send_back(arbitration=arbitration, actor=actor, rationale=rationale)
    return arbitration_resolve(
        arbitration=arbitration,
        actor=actor,
        preference=resolution["preference"],
        scores=resolution["scores"],
        rationale=rationale,
        rubric_revision=resolution.get("rubric_revision"),
    )


_RATES = {
    WorkLog.Kind.AUTHORED: "author_rate_cents",
    WorkLog.Kind.REVIEW: "review_rate_cents",
    WorkLog.Kind.ARBITRATION: "arbitration_rate_cents",
}


def worklog_record(
    *,
    person: Any,
    task: Task,
    kind: str,
    at: Any,
    started_at: Any = None,
    time_spent_seconds: int | None = None,
    review: Review | None = None,
    arbitration: Arbitration | None = None,
) -> WorkLog:
    """Records earned work at the campaign's rate for its kind; call inside the earning transaction."""
    elapsed = None
    if started_at is not None:
        elapsed = max(0, int((at - started_at).total_seconds()))
    with audit_insert("worklog.earned", object_type="reviews.worklog"):
        return WorkLog.objects.create(
            person=person,
            campaign=task.campaign,
            task=task,
            kind=kind,
            review=review,
            arbitration=arbitration,
            amount_cents=getattr(task.campaign, _RATES[WorkLog.Kind(kind)]),
            time_spent_seconds=time_spent_seconds,
            elapsed_seconds=elapsed,
            earned_at=at,
        )


def _author_earns(task: Task) -> None:
    # Time for the author: from the task's creation to its last submission (every round).
    worklog_record(
        person=task.author,
        task=task,
        kind=WorkLog.Kind.AUTHORED,
        started_at=task.created_at,
        at=task.submitted_at or timezone.now(),
    )


def _arbiter_earns(arbitration: Arbitration, task: Task) -> None:
    worklog_record(
        person=arbitration.arbiter,
        task=task,
        kind=WorkLog.Kind.ARBITRATION,
        arbitration=arbitration,
        started_at=arbitration.claimed_at,
        at=arbitration.decided_at or timezone.now(),
    )


def worklog_approve(*, entry: WorkLog, actor: Any) -> WorkLog:
    """A lead approves earned work for payment."""
    return apply_transition(entry, "approve", actor=actor, at=timezone.now())


def worklog_pay(*, entry: WorkLog, actor: Any) -> WorkLog:
    """A lead marks approved work as paid."""
    return apply_transition(entry, "pay", actor=actor, at=timezone.now())
