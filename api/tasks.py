"""Tasks: authors write their own; leads and auditors read all. One view per transition."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.fsm import available_transitions
from core.permissions import ReadersAndWriters, has_role
from core.roles import Role
from idempotency.decorators import idempotent
from reviews import selectors as review_selectors
from reviews import services as review_services
from tasks import selectors, services
from tasks.models import Campaign, Candidate, Repository, Task, ValidatorResult
from tasks.preferences import PREFERENCE_MAX, PREFERENCE_MIN

MAX_PROMPT_CHARS = 50_000
MAX_TEXT_CHARS = 20_000
SHA_PATTERN = r"^[0-9a-fA-F]{7,40}$"


class ValidatorResultOutput(serializers.ModelSerializer):
    class Meta:
        model = ValidatorResult
        fields = ["key", "passed", "severity", "message", "details"]


class ScenarioSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=300)
    description = serializers.CharField(max_length=MAX_TEXT_CHARS, allow_blank=True, default="")
    url = serializers.URLField(max_length=500, allow_blank=True, default="")


class TaskOutput(serializers.ModelSerializer):
    repository = serializers.SerializerMethodField()
    author = serializers.CharField(source="author.username")
    scenario = serializers.SerializerMethodField()
    turns = serializers.SerializerMethodField()
    validators = ValidatorResultOutput(source="validator_results", many=True)
    transitions = serializers.SerializerMethodField()
    feedback = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = [
            "id",
            "campaign",
            "author",
            "repository",
            "base_commit",
            "kind",
            "scenario",
            "state",
            "round",
            "turns",
            "author_preference",
            "author_rationale",
            "validators",
            "transitions",
            "feedback",
            "created_at",
            "updated_at",
            "submitted_at",
        ]

    def get_repository(self, task: Task) -> dict[str, Any]:
        return {"id": task.repository_id, "full_name": task.repository.full_name}

    def get_feedback(self, task: Task) -> list[dict[str, Any]]:
        """Reviewers' verdicts and comments of closed rounds, without who wrote them."""
        return [
            {
                "round": r.round,
                "verdict": r.verdict,
                "comments": r.comments,
                "rationale": r.rationale,
            }
            for r in review_selectors.author_feedback(task)
        ]

    def get_scenario(self, task: Task) -> dict[str, str]:
        return {
            "title": task.scenario_title,
            "description": task.scenario_description,
            "url": task.scenario_url,
        }

    def get_turns(self, task: Task) -> list[dict[str, Any]]:
        return [{"index": t.index, "prompt": t.prompt} for t in task.turns.all()]

    def get_transitions(self, task: Task) -> list[str]:
        return available_transitions(task, self.context["request"].user)


class TaskInput(serializers.Serializer):
    campaign = serializers.PrimaryKeyRelatedField(queryset=Campaign.objects.all())
    repository = serializers.PrimaryKeyRelatedField(queryset=Repository.objects.filter(active=True))
    base_commit = serializers.RegexField(SHA_PATTERN, max_length=40)
    kind = serializers.ChoiceField(choices=Task.Kind.choices)
    scenario = ScenarioSerializer()
    prompt = serializers.CharField(max_length=MAX_PROMPT_CHARS)


class ScenarioPatch(serializers.Serializer):
    """Only the scenario fields sent are changed (no defaults: a PATCH never blanks a field)."""

    title = serializers.CharField(max_length=300, required=False)
    description = serializers.CharField(max_length=MAX_TEXT_CHARS, allow_blank=True, required=False)
    url = serializers.URLField(max_length=500, allow_blank=True, required=False)


class TaskPatch(serializers.Serializer):
    repository = serializers.PrimaryKeyRelatedField(
        queryset=Repository.objects.filter(active=True), required=False
    )
    base_commit = serializers.RegexField(SHA_PATTERN, max_length=40, required=False)
    kind = serializers.ChoiceField(choices=Task.Kind.choices, required=False)
    scenario = ScenarioPatch(required=False)

    def to_fields(self) -> dict[str, Any]:
        data = dict(self.validated_data)
        scenario = data.pop("scenario", {}) or {}
        for key, value in scenario.items():
            data[f"scenario_{key}"] = value
        if "base_commit" in data:
            data["base_commit"] = data["base_commit"].lower()
        return data


class TurnInput(serializers.Serializer):
    prompt = serializers.CharField(max_length=MAX_PROMPT_CHARS)


class SubmitInput(serializers.Serializer):
    preference = serializers.IntegerField(min_value=PREFERENCE_MIN, max_value=PREFERENCE_MAX)
    rationale = serializers.CharField(max_length=MAX_TEXT_CHARS)


class CancelInput(serializers.Serializer):
    reason = serializers.CharField(max_length=MAX_TEXT_CHARS)


def _tasks_shown_to(user: Any) -> QuerySet[Task]:
    return review_selectors.with_author_feedback(selectors.tasks_visible_to(user=user))


def _task_response(request: Request, task: Task, status_code: int = 200) -> Response:
    fresh = _tasks_shown_to(request.user).get(pk=task.pk)
    return Response(TaskOutput(fresh, context={"request": request}).data, status=status_code)


class TaskListCreate(ReadersAndWriters, generics.ListAPIView):
    serializer_class = TaskOutput
    read_roles = (Role.AUTHOR, Role.LEAD, Role.AUDITOR)
    write_roles = (Role.AUTHOR,)
    filterset_fields = ["state", "campaign", "kind"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return _tasks_shown_to(self.request.user).order_by("-id")

    @extend_schema(request=TaskInput, responses={201: TaskOutput})
    @idempotent
    def post(self, request: Request) -> Response:
        data = TaskInput(data=request.data)
        data.is_valid(raise_exception=True)
        task = services.task_create(actor=request.user, **data.validated_data)
        return _task_response(request, task, status.HTTP_201_CREATED)


class TaskDetail(generics.RetrieveAPIView):
    serializer_class = TaskOutput
    permission_classes = [IsAuthenticated, has_role(Role.AUTHOR, Role.LEAD, Role.AUDITOR)]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return _tasks_shown_to(self.request.user)

    @extend_schema(request=TaskPatch, responses=TaskOutput)
    def patch(self, request: Request, pk: int) -> Response:
        task = self.get_object()
        data = TaskPatch(data=request.data)
        data.is_valid(raise_exception=True)
        task = services.task_update(task=task, actor=request.user, fields=data.to_fields())
        return _task_response(request, task)


class _TaskAction(APIView):
    """Base of the one-view-per-transition endpoints: find the visible task, then act."""

    permission_classes = [IsAuthenticated, has_role(Role.AUTHOR)]

    def task(self, request: Request, pk: int) -> Task:
        return generics.get_object_or_404(selectors.tasks_visible_to(user=request.user), pk=pk)


class TurnCreate(_TaskAction):
    @extend_schema(request=TurnInput, responses={201: TurnInput})
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        data = TurnInput(data=request.data)
        data.is_valid(raise_exception=True)
        turn = services.turn_add(
            task=self.task(request, pk), actor=request.user, **data.validated_data
        )
        return Response(
            {"index": turn.index, "prompt": turn.prompt}, status=status.HTTP_201_CREATED
        )


class TaskGenerate(_TaskAction):
    @extend_schema(request=None, responses={202: TaskOutput})
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        task = services.task_generate(task=self.task(request, pk), actor=request.user)
        return _task_response(request, task, status.HTTP_202_ACCEPTED)


class TaskRetry(_TaskAction):
    @extend_schema(request=None, responses={202: TaskOutput})
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        task = services.task_retry(task=self.task(request, pk), actor=request.user)
        return _task_response(request, task, status.HTTP_202_ACCEPTED)


class TaskSubmit(_TaskAction):
    @extend_schema(request=SubmitInput, responses=TaskOutput)
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        data = SubmitInput(data=request.data)
        data.is_valid(raise_exception=True)
        task = review_services.task_submit(
            task=self.task(request, pk), actor=request.user, **data.validated_data
        )
        return _task_response(request, task)


class TaskRevise(_TaskAction):
    @extend_schema(request=None, responses=TaskOutput)
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        task = services.task_revise(task=self.task(request, pk), actor=request.user)
        return _task_response(request, task)


class TaskCancel(_TaskAction):
    permission_classes = [IsAuthenticated, has_role(Role.LEAD)]

    @extend_schema(request=CancelInput, responses=TaskOutput)
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        data = CancelInput(data=request.data)
        data.is_valid(raise_exception=True)
        task = review_services.task_cancel(
            task=self.task(request, pk), actor=request.user, **data.validated_data
        )
        return _task_response(request, task)


class CandidateOutput(serializers.ModelSerializer):
    """A blinded candidate: a slot label, never the model behind it."""

    turn = serializers.IntegerField(source="turn.index")
    slot = serializers.CharField(source="slot.label")
    validators = ValidatorResultOutput(source="validator_results", many=True)
    error = serializers.SerializerMethodField()

    class Meta:
        model = Candidate
        fields = [
            "id",
            "turn",
            "slot",
            "state",
            "output",
            "diff",
            "attempts",
            "error",
            "validators",
        ]

    def get_error(self, candidate: Candidate) -> str:
        # Raw provider errors can name the provider or its URL; authors get the fact only.
        return "The model could not answer; retry the generation." if candidate.error else ""


class CandidateRevealed(CandidateOutput):
    """For leads and auditors: the model identity and the reproducibility record."""

    # Not required in the document: one schema describes both shapes (authors get no identity).
    model_version = serializers.CharField(source="slot.model_version.slug", required=False)
    error = serializers.CharField()

    class Meta(CandidateOutput.Meta):
        fields = [
            *CandidateOutput.Meta.fields,
            "model_version",
            "request",
            "response_meta",
            "usage",
            "latency_ms",
            "provider_request_id",
            "content_hash",
        ]


class TaskCandidates(_TaskAction):
    permission_classes = [IsAuthenticated, has_role(Role.AUTHOR, Role.LEAD, Role.AUDITOR)]

    @extend_schema(responses=CandidateRevealed(many=True))
    def get(self, request: Request, pk: int) -> Response:
        task = self.task(request, pk)
        serializer = (
            CandidateRevealed if selectors.sees_model_identities(request.user) else CandidateOutput
        )
        return Response(serializer(selectors.candidates_of(task=task), many=True).data)
