"""Assignments (reviewers) and arbitrations (arbiters): thin views over the review services."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.tasks import MAX_TEXT_CHARS, ValidatorResultOutput
from core.permissions import has_role
from core.roles import Role
from idempotency.decorators import idempotent
from reviews import selectors, services
from reviews.models import Arbitration, Assignment, Review
from tasks.models import Task
from tasks.preferences import PREFERENCE_MAX, PREFERENCE_MIN


class BlindCandidateOutput(serializers.Serializer):
    slot = serializers.CharField(source="slot.label")
    output = serializers.CharField()
    diff = serializers.CharField()
    validators = ValidatorResultOutput(source="validator_results", many=True)


class BlindTurnOutput(serializers.Serializer):
    index = serializers.IntegerField()
    prompt = serializers.CharField()
    candidates = BlindCandidateOutput(many=True)


class BlindTaskOutput(serializers.ModelSerializer):
    """A task as reviewers and arbiters see it: no author, no model identity.

    Its turns come ready-made (`selectors.attach_blind_turns`), passed in the context as
    `blind_turns`; BlindTurnOutput documents their shape.
    """

    scenario = serializers.SerializerMethodField()
    repository = serializers.SerializerMethodField()
    turns = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = ["id", "kind", "scenario", "repository", "base_commit", "round", "turns"]

    def get_scenario(self, task: Task) -> dict[str, str]:
        return {
            "title": task.scenario_title,
            "description": task.scenario_description,
            "url": task.scenario_url,
        }

    def get_repository(self, task: Task) -> dict[str, str]:
        r = task.repository
        return {"full_name": r.full_name, "url": r.url, "default_branch": r.default_branch}

    @extend_schema_field(BlindTurnOutput(many=True))
    def get_turns(self, task: Task) -> list[dict[str, Any]]:
        return self.context["blind_turns"]


def blind_task(annotated: Assignment | Arbitration) -> dict[str, Any]:
    """The blinded task of an assignment or arbitration given `selectors.attach_blind_turns`."""
    return BlindTaskOutput(annotated.task, context={"blind_turns": annotated.blind_turns}).data


def rubric_of(task: Task) -> dict[str, Any]:
    version = task.campaign.rubric_version
    return {
        "slug": version.rubric.slug,
        "version": version.number,
        "criteria": version.criteria,
        "policy": task.campaign.policy,
    }


class ReviewOutput(serializers.ModelSerializer):
    class Meta:
        model = Review
        fields = [
            "id",
            "assignment",
            "round",
            "scores",
            "preference",
            "rationale",
            "verdict",
            "comments",
            "time_spent_seconds",
            "submitted_at",
        ]


class AssignmentOutput(serializers.ModelSerializer):
    task = serializers.SerializerMethodField()
    rubric = serializers.SerializerMethodField()
    review = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = ["id", "state", "round", "claimed_at", "due_at", "task", "rubric", "review"]

    @extend_schema_field(BlindTaskOutput)
    def get_task(self, assignment: Assignment) -> dict[str, Any]:
        return blind_task(assignment)

    def get_rubric(self, assignment: Assignment) -> dict[str, Any]:
        return rubric_of(assignment.task)

    def get_review(self, assignment: Assignment) -> dict[str, Any] | None:
        review = getattr(assignment, "review", None) if assignment.state == "submitted" else None
        return ReviewOutput(review).data if review else None


class ClaimInput(serializers.Serializer):
    campaign = serializers.IntegerField(required=False, min_value=1)


class ScoreInput(serializers.Serializer):
    turn = serializers.IntegerField(required=False, min_value=1)
    slot = serializers.CharField(max_length=2)
    criterion = serializers.CharField(max_length=50)
    score = serializers.IntegerField()
    comment = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEXT_CHARS)


class ReviewInput(serializers.Serializer):
    scores = ScoreInput(many=True, allow_empty=False, max_length=2000)
    preference = serializers.IntegerField(min_value=PREFERENCE_MIN, max_value=PREFERENCE_MAX)
    rationale = serializers.CharField(max_length=MAX_TEXT_CHARS)
    verdict = serializers.ChoiceField(choices=Review.Verdict.choices)
    comments = serializers.CharField(
        required=False, allow_blank=True, max_length=MAX_TEXT_CHARS, default=""
    )
    time_spent_seconds = serializers.IntegerField(
        required=False, min_value=0, max_value=7 * 24 * 3600
    )


class _ReviewerView(APIView):
    permission_classes = [IsAuthenticated, has_role(Role.REVIEWER)]

    def own(self, request: Request, pk: int) -> Assignment:
        assignment = generics.get_object_or_404(
            selectors.assignment_views_of(reviewer=request.user), pk=pk
        )
        selectors.attach_blind_turns([assignment])
        return assignment

    def assignment_response(self, request: Request, pk: int) -> Response:
        return Response(AssignmentOutput(self.own(request, pk)).data)


class AssignmentNext(_ReviewerView):
    @extend_schema(request=ClaimInput, responses={201: AssignmentOutput, 204: None})
    @idempotent
    def post(self, request: Request) -> Response:
        data = ClaimInput(data=request.data)
        data.is_valid(raise_exception=True)
        assignment = services.assignment_claim_next(
            reviewer=request.user, campaign_id=data.validated_data.get("campaign")
        )
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        selectors.attach_blind_turns([assignment])  # the claim read its task; no second read
        return Response(AssignmentOutput(assignment).data, status=status.HTTP_201_CREATED)


class AssignmentList(generics.ListAPIView):
    serializer_class = AssignmentOutput
    permission_classes = [IsAuthenticated, has_role(Role.REVIEWER)]
    filterset_fields = ["state"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Assignment.objects.none()
        return selectors.assignment_views_of(reviewer=self.request.user)

    def paginate_queryset(self, queryset):  # type: ignore[no-untyped-def]
        page = super().paginate_queryset(queryset)
        selectors.attach_blind_turns(page)
        return page


class AssignmentDetail(_ReviewerView):
    @extend_schema(responses=AssignmentOutput)
    def get(self, request: Request, pk: int) -> Response:
        return self.assignment_response(request, pk)


class AssignmentReview(_ReviewerView):
    @extend_schema(request=ReviewInput, responses={201: ReviewOutput})
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        data = ReviewInput(data=request.data)
        data.is_valid(raise_exception=True)
        # The service locks the reviewer's own assignment (404 if it is not theirs) and reads
        # what it needs itself; the blinded task with its answers would be read for nothing.
        review = services.review_submit(
            assignment=Assignment(pk=pk), actor=request.user, **data.validated_data
        )
        return Response(ReviewOutput(review).data, status=status.HTTP_201_CREATED)


class AssignmentRelease(_ReviewerView):
    @extend_schema(request=None, responses=AssignmentOutput)
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        services.assignment_release(assignment=Assignment(pk=pk), actor=request.user)
        return self.assignment_response(request, pk)


class ArbitrationReviewOutput(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username")

    class Meta:
        model = Review
        fields = [
            "id",
            "round",
            "reviewer",
            "scores",
            "preference",
            "rationale",
            "verdict",
            "comments",
            "submitted_at",
        ]


class ArbitrationOutput(serializers.ModelSerializer):
    task = serializers.IntegerField(source="task_id")
    arbiter = serializers.CharField(source="arbiter.username", allow_null=True, default=None)

    class Meta:
        model = Arbitration
        fields = [
            "id",
            "state",
            "task",
            "round",
            "disagreement",
            "arbiter",
            "claimed_at",
            "decided_at",
            "preference",
            "scores",
            "rationale",
            "rubric_revision",
            "created_at",
        ]


class ArbitrationDetailOutput(ArbitrationOutput):
    task_detail = serializers.SerializerMethodField()
    rubric = serializers.SerializerMethodField()
    reviews = serializers.SerializerMethodField()

    class Meta(ArbitrationOutput.Meta):
        fields = [*ArbitrationOutput.Meta.fields, "task_detail", "rubric", "reviews"]

    @extend_schema_field(BlindTaskOutput)
    def get_task_detail(self, arbitration: Arbitration) -> dict[str, Any]:
        return blind_task(arbitration)

    def get_rubric(self, arbitration: Arbitration) -> dict[str, Any]:
        return rubric_of(arbitration.task)

    def get_reviews(self, arbitration: Arbitration) -> list[dict[str, Any]]:
        reviews = [r for r in arbitration.task.reviews.all() if r.round == arbitration.round]
        return ArbitrationReviewOutput(reviews, many=True).data


class RubricRevisionInput(serializers.Serializer):
    criteria = serializers.ListField(child=serializers.DictField(), required=False)
    policy = serializers.DictField(required=False)
    rationale = serializers.CharField(max_length=MAX_TEXT_CHARS)


class ResolveInput(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["resolve", "send_back"])
    preference = serializers.IntegerField(
        min_value=PREFERENCE_MIN, max_value=PREFERENCE_MAX, required=False
    )
    scores = ScoreInput(many=True, required=False)
    rationale = serializers.CharField(max_length=MAX_TEXT_CHARS)
    rubric_revision = RubricRevisionInput(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["decision"] == "resolve":
            missing = [name for name in ("preference", "scores") if name not in attrs]
            if missing:
                raise serializers.ValidationError(
                    {name: ["Required to resolve."] for name in missing}
                )
        return attrs


class ArbitrationList(generics.ListAPIView):
    serializer_class = ArbitrationOutput
    permission_classes = [IsAuthenticated, has_role(Role.ARBITER, Role.LEAD, Role.AUDITOR)]
    filterset_fields = ["state", "task"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.arbitrations_visible_to(user=self.request.user)

    @extend_schema(
        parameters=[
            OpenApiParameter("state", str, enum=["open", "claimed", "resolved", "sent_back"])
        ]
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)


class _ArbitrationView(APIView):
    permission_classes = [IsAuthenticated, has_role(Role.ARBITER)]

    def visible(self, request: Request, pk: int) -> Arbitration:
        return generics.get_object_or_404(
            selectors.arbitrations_visible_to(user=request.user), pk=pk
        )

    def detail_response(self, request: Request, pk: int) -> Response:
        arbitration = generics.get_object_or_404(
            selectors.arbitration_views(user=request.user), pk=pk
        )
        selectors.attach_blind_turns([arbitration])
        return Response(ArbitrationDetailOutput(arbitration).data)


class ArbitrationDetail(_ArbitrationView):
    permission_classes = [IsAuthenticated, has_role(Role.ARBITER, Role.LEAD, Role.AUDITOR)]

    @extend_schema(responses=ArbitrationDetailOutput)
    def get(self, request: Request, pk: int) -> Response:
        return self.detail_response(request, pk)


class ArbitrationClaim(_ArbitrationView):
    @extend_schema(request=None, responses=ArbitrationDetailOutput)
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        services.arbitration_claim(arbitration=self.visible(request, pk), actor=request.user)
        return self.detail_response(request, pk)


class ArbitrationResolve(_ArbitrationView):
    @extend_schema(request=ResolveInput, responses=ArbitrationDetailOutput)
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        data = ResolveInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.arbitration_decide(
            arbitration=self.visible(request, pk), actor=request.user, **data.validated_data
        )
        return self.detail_response(request, pk)
