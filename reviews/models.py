"""Review rounds: slots, reviewers' claims and reviews, arbitration, and the task's outcome."""

from datetime import datetime

from django.conf import settings
from django.db import models
from django_fsm import FSMField, FSMModelMixin, transition

from core.roles import Role, user_has_role
from tasks.models import Task


class SlotState(models.TextChoices):
    OPEN = "open"
    CLAIMED = "claimed"
    FILLED = "filled"
    CLOSED = "closed"


class ReviewSlot(FSMModelMixin, models.Model):
    """One of the campaign's `reviewers_per_task` places in one round of one task."""

    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="review_slots")
    round = models.PositiveSmallIntegerField()
    number = models.PositiveSmallIntegerField()
    state = FSMField(default=SlotState.OPEN, choices=SlotState.choices, protected=True)
    opened_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "round", "number"]
        constraints = [
            models.UniqueConstraint(fields=["task", "round", "number"], name="review_slot_unique")
        ]
        indexes = [
            models.Index(
                fields=["opened_at", "id"],
                name="review_slot_open_queue",
                condition=models.Q(state="open"),
            )
        ]

    def __str__(self) -> str:
        return f"Task {self.task_id} round {self.round} slot {self.number}"

    @transition(
        field=state,
        source=[SlotState.OPEN],
        target=SlotState.CLAIMED,
        custom={"action": "reviewslot.claimed"},
    )
    def claim(self) -> None:
        pass

    @transition(
        field=state,
        source=[SlotState.CLAIMED],
        target=SlotState.OPEN,
        custom={"action": "reviewslot.reopened"},
    )
    def reopen(self) -> None:
        pass

    @transition(
        field=state,
        source=[SlotState.CLAIMED],
        target=SlotState.FILLED,
        custom={"action": "reviewslot.filled"},
    )
    def fill(self) -> None:
        pass

    @transition(
        field=state,
        source=[SlotState.OPEN, SlotState.CLAIMED],
        target=SlotState.CLOSED,
        custom={"action": "reviewslot.closed"},
    )
    def close(self) -> None:
        """The task left review (cancelled): the slot no longer takes reviewers."""


class AssignmentState(models.TextChoices):
    ACTIVE = "active"
    SUBMITTED = "submitted"
    RELEASED = "released"
    EXPIRED = "expired"


def _is_reviewer(assignment: "Assignment", user: object) -> bool:
    return getattr(user, "pk", None) == assignment.reviewer_id


class Assignment(FSMModelMixin, models.Model):
    """A reviewer's claim on one review slot; ends submitted, released or expired."""

    slot = models.ForeignKey(ReviewSlot, on_delete=models.PROTECT, related_name="assignments")
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="assignments")
    round = models.PositiveSmallIntegerField()
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments"
    )
    state = FSMField(
        default=AssignmentState.ACTIVE, choices=AssignmentState.choices, protected=True
    )
    claimed_at = models.DateTimeField()
    due_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # A reviewer judges a task once, in any round; released and expired claims do not count.
            models.UniqueConstraint(
                fields=["task", "reviewer"],
                condition=models.Q(state__in=["active", "submitted"]),
                name="assignment_one_review_per_task",
            ),
            models.UniqueConstraint(
                fields=["slot"],
                condition=models.Q(state__in=["active", "submitted"]),
                name="assignment_one_per_slot",
            ),
        ]
        indexes = [
            models.Index(fields=["reviewer", "-id"], name="assignment_reviewer"),
            models.Index(
                fields=["due_at"], name="assignment_active_due", condition=models.Q(state="active")
            ),
        ]

    def __str__(self) -> str:
        return f"Assignment {self.pk} ({self.reviewer_id} on task {self.task_id})"

    @transition(
        field=state,
        source=[AssignmentState.ACTIVE],
        target=AssignmentState.SUBMITTED,
        permission=_is_reviewer,
        custom={"action": "assignment.submitted"},
    )
    def submit(self, *, at: datetime) -> None:
        self.ended_at = at

    @transition(
        field=state,
        source=[AssignmentState.ACTIVE],
        target=AssignmentState.RELEASED,
        permission=_is_reviewer,
        custom={"action": "assignment.released"},
    )
    def release(self, *, at: datetime) -> None:
        self.ended_at = at

    @transition(
        field=state,
        source=[AssignmentState.ACTIVE],
        target=AssignmentState.EXPIRED,
        custom={"action": "assignment.expired"},
    )
    def expire(self, *, at: datetime) -> None:
        self.ended_at = at


class Review(models.Model):
    """What a reviewer submitted. Immutable: PostgreSQL refuses updates."""

    class Verdict(models.TextChoices):
        APPROVE = "approve"
        REQUEST_CHANGES = "request_changes"
        REJECT = "reject"

    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="review")
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="reviews")
    round = models.PositiveSmallIntegerField()
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews"
    )
    rubric_version = models.ForeignKey(
        "rubrics.RubricVersion", on_delete=models.PROTECT, related_name="+"
    )
    scores = models.JSONField(help_text="[{turn, slot, criterion, score, comment}]")
    preference = models.SmallIntegerField()
    rationale = models.TextField()
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    comments = models.TextField(blank=True)
    time_spent_seconds = models.PositiveIntegerField(null=True, blank=True)
    submitted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "round", "id"]
        indexes = [models.Index(fields=["task", "round"], name="review_task_round")]

    def __str__(self) -> str:
        return f"Review {self.pk} of task {self.task_id} round {self.round}"


class ArbitrationState(models.TextChoices):
    OPEN = "open"
    CLAIMED = "claimed"
    RESOLVED = "resolved"
    SENT_BACK = "sent_back"


class Arbitration(FSMModelMixin, models.Model):
    """A round whose reviews disagree, waiting for (or settled by) an arbiter."""

    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="arbitrations")
    round = models.PositiveSmallIntegerField()
    state = FSMField(
        default=ArbitrationState.OPEN, choices=ArbitrationState.choices, protected=True
    )
    disagreement = models.JSONField(
        help_text="which criteria and preferences disagree, by how much"
    )
    arbiter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="arbitrations",
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    preference = models.SmallIntegerField(null=True, blank=True)
    scores = models.JSONField(null=True, blank=True)
    rationale = models.TextField(blank=True)
    rubric_revision = models.ForeignKey(
        "rubrics.RubricRevision", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["task", "round"], name="arbitration_one_per_round")
        ]
        indexes = [models.Index(fields=["state", "id"], name="arbitration_state")]

    def __str__(self) -> str:
        return f"Arbitration {self.pk} of task {self.task_id}"

    @transition(
        field=state,
        source=[ArbitrationState.OPEN],
        target=ArbitrationState.CLAIMED,
        custom={"action": "arbitration.claimed"},
    )
    def claim(self, *, arbiter: object, at: datetime) -> None:
        self.arbiter = arbiter
        self.claimed_at = at

    @transition(
        field=state,
        source=[ArbitrationState.CLAIMED],
        target=ArbitrationState.RESOLVED,
        custom={"action": "arbitration.resolved"},
    )
    def resolve(self, *, preference: int, scores: list, rationale: str, at: datetime) -> None:
        self.preference = preference
        self.scores = scores
        self.rationale = rationale
        self.decided_at = at

    @transition(
        field=state,
        source=[ArbitrationState.CLAIMED],
        target=ArbitrationState.SENT_BACK,
        custom={"action": "arbitration.sent_back"},
    )
    def send_back(self, *, rationale: str, at: datetime) -> None:
        self.rationale = rationale
        self.decided_at = at


class Outcome(models.Model):
    """The final label of a completed task."""

    class Method(models.TextChoices):
        CONSENSUS = "consensus"
        ARBITRATION = "arbitration"

    task = models.OneToOneField(Task, on_delete=models.PROTECT, related_name="outcome")
    round = models.PositiveSmallIntegerField()
    method = models.CharField(max_length=20, choices=Method.choices)
    preference = models.FloatField()
    scores = models.JSONField(help_text="[{turn, slot, criterion, score}]")
    rubric_version = models.ForeignKey(
        "rubrics.RubricVersion", on_delete=models.PROTECT, related_name="+"
    )
    agreement = models.JSONField(help_text="agreement figures of the deciding round")
    arbitration = models.OneToOneField(
        Arbitration, null=True, blank=True, on_delete=models.PROTECT, related_name="outcome"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Outcome of task {self.task_id} ({self.method})"


class WorkLogState(models.TextChoices):
    EARNED = "earned"
    APPROVED = "approved"
    PAID = "paid"


def _is_lead(entry: "WorkLog", user: object) -> bool:
    return user_has_role(user, Role.LEAD)


class WorkLogKind(models.TextChoices):
    AUTHORED = "authored"
    REVIEW = "review"
    ARBITRATION = "arbitration"


class WorkLog(FSMModelMixin, models.Model):
    """One completed piece of work and what it earns at the campaign's rate: earned → approved → paid."""

    Kind = WorkLogKind

    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="work_log"
    )
    campaign = models.ForeignKey(
        "tasks.Campaign", on_delete=models.PROTECT, related_name="work_log"
    )
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="work_log")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    review = models.OneToOneField(
        Review, null=True, blank=True, on_delete=models.PROTECT, related_name="work_log"
    )
    arbitration = models.OneToOneField(
        Arbitration, null=True, blank=True, on_delete=models.PROTECT, related_name="work_log"
    )
    amount_cents = models.PositiveIntegerField()
    time_spent_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="active time the client reported, where it did"
    )
    elapsed_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="wall-clock time from claim (or creation) to submission"
    )
    state = FSMField(default=WorkLogState.EARNED, choices=WorkLogState.choices, protected=True)
    earned_at = models.DateTimeField()
    approved_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # The author earns once per task, however many rounds it took.
            models.UniqueConstraint(
                fields=["task"], condition=models.Q(kind="authored"), name="work_log_one_authored"
            ),
        ]
        indexes = [
            models.Index(fields=["person", "-id"], name="work_log_person"),
            models.Index(fields=["campaign", "state"], name="work_log_campaign_state"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.person_id} on task {self.task_id}: {self.amount_cents}c"

    @transition(
        field=state,
        source=[WorkLogState.EARNED],
        target=WorkLogState.APPROVED,
        permission=_is_lead,
        custom={"action": "worklog.approved"},
    )
    def approve(self, *, at: datetime) -> None:
        self.approved_at = at

    @transition(
        field=state,
        source=[WorkLogState.APPROVED],
        target=WorkLogState.PAID,
        permission=_is_lead,
        custom={"action": "worklog.paid"},
    )
    def pay(self, *, at: datetime) -> None:
        self.paid_at = at
