from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django_fsm import FSMField, FSMModelMixin, transition

from core.fsm import refusal
from core.roles import Role, user_has_role
from tasks.evidence.validation import validate_evidence, validate_source_url


class Repository(models.Model):
    """A catalogue entry an author can pick a pull-request scenario from."""

    full_name = models.CharField(max_length=200, unique=True, help_text="owner/name")
    url = models.URLField(max_length=500)
    default_branch = models.CharField(max_length=200, default="main")
    language = models.CharField(max_length=64, blank=True)
    license = models.CharField(max_length=64, blank=True)
    source_url = models.CharField(
        max_length=500,
        blank=True,
        default="",
        db_default="",  # the catalogue import inserts rows with SQL of its own
        validators=[validate_source_url],
        help_text="where evidence jobs clone it from: a git URL, file:// or an absolute path",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["full_name"]
        verbose_name_plural = "repositories"
        indexes = [models.Index(Lower("full_name"), name="repository_full_name_ci")]

    def __str__(self) -> str:
        return self.full_name


class ModelVersion(models.Model):
    """A model under comparison. Holds the name of the environment variable with its key, never the key."""

    class Provider(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible"
        ANTHROPIC = "anthropic", "Anthropic"
        REPLAY = "replay", "Replay of recordings"

    slug = models.SlugField(max_length=80, unique=True)
    provider = models.CharField(max_length=20, choices=Provider.choices)
    model = models.CharField(max_length=200, help_text="the provider's model id")
    base_url = models.URLField(max_length=500, blank=True)
    api_key_env = models.CharField(
        max_length=100, blank=True, help_text="name of the environment variable that holds the key"
    )
    parameters = models.JSONField(
        default=dict, blank=True, help_text="{temperature, max_tokens, seed, system_prompt}"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Campaign(models.Model):
    """A batch of tasks judged with one pinned rubric version over two or more model versions."""

    name = models.CharField(max_length=200)
    rubric_version = models.ForeignKey(
        "rubrics.RubricVersion", on_delete=models.PROTECT, related_name="campaigns"
    )
    model_versions = models.ManyToManyField(ModelVersion, related_name="campaigns")
    reviewers_per_task = models.PositiveSmallIntegerField(default=3)
    policy_override = models.JSONField(
        null=True, blank=True, help_text="a disagreement policy replacing the rubric version's"
    )
    validators = models.JSONField(
        default=list, blank=True, help_text="validator keys; empty = all built-in"
    )
    evidence = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_evidence],
        help_text='checks run on each candidate in a sandbox: {"test_command": [...], '
        '"linters": ["ruff", "bandit"], "timeout_seconds": 120}; empty = none',
    )
    author_rate_cents = models.PositiveIntegerField(default=28000)
    review_rate_cents = models.PositiveIntegerField(default=6000)
    arbitration_rate_cents = models.PositiveIntegerField(default=8000)
    review_timeout_minutes = models.PositiveIntegerField(default=120)
    deadline = models.DateTimeField(null=True, blank=True)
    token_budget = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="most tokens (input + output) its candidates may use; empty = no ceiling",
    )
    rerun_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reruns"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def policy(self) -> dict:
        return self.policy_override or self.rubric_version.policy


class TaskState(models.TextChoices):
    DRAFT = "draft"
    GENERATING = "generating"
    GENERATION_FAILED = "generation_failed"
    IN_REVIEW = "in_review"
    CHANGES_REQUESTED = "changes_requested"
    IN_ARBITRATION = "in_arbitration"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


FINAL_TASK_STATES = [TaskState.COMPLETED, TaskState.REJECTED, TaskState.CANCELLED]
CANCELLABLE = [s for s in TaskState.values if s not in FINAL_TASK_STATES]


def _is_author(task: "Task", user: object) -> bool:
    return getattr(user, "pk", None) == task.author_id


def _is_lead(task: "Task", user: object) -> bool:
    return user_has_role(user, Role.LEAD)


def _generation_counts(task: "Task") -> tuple[int, int, int]:
    """(answers needed, candidates created, candidates answered): annotated by the selectors."""
    if hasattr(task, "candidates_total"):
        return task.turns_total * task.slots_total, task.candidates_total, task.candidates_succeeded
    needed = task.turns.count() * task.slots.count()
    candidates = Candidate.objects.filter(turn__task=task)
    return needed, candidates.count(), candidates.filter(state=CandidateState.SUCCEEDED).count()


@refusal("Every turn is already answered; add a follow-up turn first.")
def has_unanswered_turn(task: "Task") -> bool:
    needed, created, _ = _generation_counts(task)
    return created < needed


@refusal("Every turn needs an answer from every model version; generate first.")
def every_turn_answered(task: "Task") -> bool:
    needed, _, answered = _generation_counts(task)
    return needed > 0 and answered == needed


class Task(FSMModelMixin, models.Model):
    """One pull-request scenario judged across model versions; a finite-state machine."""

    class Kind(models.TextChoices):
        FEATURE = "feature"
        BUG_FIX = "bug_fix"
        REFACTOR = "refactor"
        SECURITY_FIX = "security_fix"
        PERFORMANCE = "performance"
        TESTS = "tests"
        DOCS = "docs"

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="tasks")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="authored_tasks"
    )
    repository = models.ForeignKey(Repository, on_delete=models.PROTECT, related_name="tasks")
    base_commit = models.CharField(max_length=40)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    scenario_title = models.CharField(max_length=300)
    scenario_description = models.TextField(blank=True)
    scenario_url = models.URLField(max_length=500, blank=True)
    state = FSMField(
        default=TaskState.DRAFT, choices=TaskState.choices, protected=True, db_index=True
    )
    round = models.PositiveSmallIntegerField(default=1)
    author_preference = models.SmallIntegerField(null=True, blank=True)
    author_rationale = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    source_task = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reruns",
        help_text="the task of an earlier campaign whose prompts this one reruns",
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["campaign", "state"]),
            models.Index(fields=["author", "-id"]),
        ]

    def __str__(self) -> str:
        return f"Task {self.pk}: {self.scenario_title}"

    # Transitions. Their conditions and permissions are the guards; services only call them
    # (core.fsm), and check them ahead with `transition_check` when work comes first.

    @transition(
        field=state,
        source=[TaskState.DRAFT],
        target=TaskState.GENERATING,
        permission=_is_author,
        conditions=[has_unanswered_turn],
        custom={"action": "task.generation_started"},
    )
    def generate(self) -> None:
        pass

    @transition(
        field=state,
        source=[TaskState.GENERATION_FAILED],
        target=TaskState.GENERATING,
        permission=_is_author,
        custom={"action": "task.retried"},
    )
    def retry(self) -> None:
        pass

    @transition(
        field=state,
        source=[TaskState.GENERATING],
        target=TaskState.DRAFT,
        custom={"action": "task.generation_finished"},
    )
    def finish_generation(self) -> None:
        pass

    @transition(
        field=state,
        source=[TaskState.GENERATING],
        target=TaskState.GENERATION_FAILED,
        custom={"action": "task.generation_failed"},
    )
    def fail_generation(self) -> None:
        pass

    @transition(
        field=state,
        source=[TaskState.DRAFT],
        target=TaskState.IN_REVIEW,
        permission=_is_author,
        conditions=[every_turn_answered],
        custom={"action": "task.submitted"},
    )
    def submit(self, *, preference: int, rationale: str, at: datetime) -> None:
        self.author_preference = preference
        self.author_rationale = rationale
        self.submitted_at = at

    # The review phase: the round's verdict, arbitration, and the author's revision.

    @transition(
        field=state,
        source=[TaskState.IN_REVIEW],
        target=TaskState.CHANGES_REQUESTED,
        custom={"action": "task.changes_requested"},
    )
    def request_changes(self) -> None:
        pass

    @transition(
        field=state,
        source=[TaskState.IN_REVIEW],
        target=TaskState.REJECTED,
        custom={"action": "task.rejected"},
    )
    def reject(self) -> None:
        pass

    @transition(
        field=state,
        source=[TaskState.IN_REVIEW],
        target=TaskState.COMPLETED,
        custom={"action": "task.completed"},
    )
    def complete(self) -> None:
        pass

    @transition(
        field=state,
        source=[TaskState.IN_REVIEW],
        target=TaskState.IN_ARBITRATION,
        custom={"action": "task.escalated"},
    )
    def escalate(self) -> None:
        pass

    @transition(
        field=state,
        source=[TaskState.IN_ARBITRATION],
        target=TaskState.COMPLETED,
        custom={"action": "task.resolved"},
    )
    def resolve(self) -> None:
        pass

    @transition(
        field=state,
        source=[TaskState.IN_ARBITRATION],
        target=TaskState.CHANGES_REQUESTED,
        custom={"action": "task.sent_back"},
    )
    def send_back(self) -> None:
        pass

    @transition(
        field=state,
        source=[TaskState.CHANGES_REQUESTED],
        target=TaskState.DRAFT,
        permission=_is_author,
        custom={"action": "task.revised"},
    )
    def revise(self) -> None:
        self.round += 1

    @transition(
        field=state,
        source=CANCELLABLE,
        target=TaskState.CANCELLED,
        permission=_is_lead,
        custom={"action": "task.cancelled"},
    )
    def cancel(self) -> None:
        pass


class Turn(models.Model):
    """One prompt of the task's conversation: the first, then follow-ups."""

    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="turns")
    index = models.PositiveSmallIntegerField()
    prompt = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "index"]
        constraints = [models.UniqueConstraint(fields=["task", "index"], name="turn_index_unique")]

    def __str__(self) -> str:
        return f"Task {self.task_id} turn {self.index}"


class TaskSlot(models.Model):
    """The blind: which model version answers under which label in one task."""

    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="slots")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    label = models.CharField(max_length=2)

    class Meta:
        ordering = ["task", "label"]
        constraints = [
            models.UniqueConstraint(fields=["task", "label"], name="task_slot_label_unique"),
            models.UniqueConstraint(
                fields=["task", "model_version"], name="task_slot_model_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"Task {self.task_id} slot {self.label}"


def usage_tokens(usage: dict | None) -> int:
    """Input + output tokens of a provider's usage record (0 when it reported none)."""
    usage = usage or {}
    return int(usage.get("input_tokens") or 0) + int(usage.get("output_tokens") or 0)


class CandidateState(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Candidate(FSMModelMixin, models.Model):
    """One model version's answer to one turn, with what it takes to reproduce it."""

    turn = models.ForeignKey(Turn, on_delete=models.PROTECT, related_name="candidates")
    slot = models.ForeignKey(TaskSlot, on_delete=models.PROTECT, related_name="candidates")
    state = FSMField(default=CandidateState.PENDING, choices=CandidateState.choices, protected=True)
    output = models.TextField(blank=True)
    diff = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    request = models.JSONField(null=True, blank=True, help_text="exactly what was sent")
    response_meta = models.JSONField(null=True, blank=True)
    usage = models.JSONField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    provider_request_id = models.CharField(max_length=200, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    token_charge = models.PositiveIntegerField(
        default=0,
        help_text="tokens counted against the campaign's budget: while running, the most the "
        "call can use; once answered, what the provider reported",
    )
    # Evidence (tasks/evidence): when the sweep is to send the candidate's evidence job again
    # unless its results are stored by then (null: nothing due), and how many runs have started.
    evidence_due_at = models.DateTimeField(null=True, blank=True)
    evidence_attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["turn", "slot__label"]
        constraints = [
            models.UniqueConstraint(fields=["turn", "slot"], name="candidate_turn_slot_unique")
        ]
        indexes = [
            models.Index(fields=["state", "updated_at"], name="candidate_state_updated"),
            # Only the few candidates whose evidence is outstanding: the sweep reads no others.
            models.Index(
                fields=["evidence_due_at"],
                name="candidate_evidence_due",
                condition=models.Q(evidence_due_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"Candidate {self.slot.label} of turn {self.turn_id}"

    @transition(
        field=state,
        source=[CandidateState.PENDING],
        target=CandidateState.RUNNING,
        custom={"action": "candidate.claimed"},
    )
    def claim(self, *, token: str, at: datetime) -> None:
        self.attempts += 1
        self.claim_token = token
        self.claimed_at = at

    @transition(
        field=state,
        source=[CandidateState.RUNNING],
        target=CandidateState.SUCCEEDED,
        custom={"action": "candidate.generated"},
    )
    def succeed(self, **record: object) -> None:
        for name, value in record.items():
            setattr(self, name, value)
        self.error = ""
        self.claim_token = ""
        self.token_charge = usage_tokens(self.usage) or self.token_charge

    @transition(
        field=state,
        source=[CandidateState.RUNNING],
        target=CandidateState.PENDING,
        custom={"action": "candidate.released"},
    )
    def release(self, *, error: str) -> None:
        """Back to the queue: a retryable failure, or a job lost with its worker."""
        self.error = error
        self.claim_token = ""
        self.token_charge = 0  # a failed call returns no usage to charge

    @transition(
        field=state,
        source=[CandidateState.RUNNING],
        target=CandidateState.FAILED,
        custom={"action": "candidate.failed"},
    )
    def fail(self, *, error: str) -> None:
        self.error = error
        self.claim_token = ""
        self.token_charge = 0

    @transition(
        field=state,
        source=[CandidateState.PENDING],
        target=CandidateState.FAILED,
        custom={"action": "candidate.refused"},
    )
    def refuse(self, *, error: str) -> None:
        """Not sent at all: the call could take the campaign past its token budget."""
        self.error = error

    @transition(
        field=state,
        source=[CandidateState.FAILED],
        target=CandidateState.PENDING,
        # The name the trail has always stored, kept so that filters over old entries still match.
        custom={"action": "candidate.reseted"},
    )
    def reset(self) -> None:
        self.attempts = 0
        self.error = ""


class ValidatorResult(models.Model):
    """The outcome of one automated check on a task or one of its candidates."""

    class Severity(models.TextChoices):
        BLOCKING = "blocking"
        ADVISORY = "advisory"

    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="validator_results")
    candidate = models.ForeignKey(
        Candidate, null=True, blank=True, on_delete=models.PROTECT, related_name="validator_results"
    )
    key = models.CharField(max_length=80)
    passed = models.BooleanField()
    severity = models.CharField(max_length=10, choices=Severity.choices)
    message = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["task", "candidate", "key"]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "candidate", "key"],
                name="validator_result_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.key}: {'pass' if self.passed else 'fail'}"
