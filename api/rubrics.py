"""Rubrics, their immutable versions and the revision log: everyone reads, leads write."""

import math
from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.permissions import ReadersAndWriters
from core.roles import Role
from idempotency.decorators import idempotent
from rubrics import selectors, services
from rubrics.models import Rubric, RubricRevision, RubricVersion

MAX_CRITERIA = 50


class RubricCriterionSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=50)
    title = serializers.CharField(max_length=200)
    guidance = serializers.CharField(max_length=5000, allow_blank=True, default="")
    scale_min = serializers.IntegerField(default=1)
    scale_max = serializers.IntegerField(default=5)
    weight = serializers.FloatField(default=1.0)

    def validate_weight(self, value: float) -> float:
        if not math.isfinite(value) or value <= 0:
            raise serializers.ValidationError("The weight must be a positive number.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["scale_min"] >= attrs["scale_max"]:
            raise serializers.ValidationError({"scale_max": ["Must be above scale_min."]})
        return attrs


class RubricPolicySerializer(serializers.Serializer):
    max_score_spread = serializers.IntegerField(
        min_value=0,
        required=False,
        help_text="the widest spread of one criterion's scores that still counts as agreement",
    )
    preference_sign_must_agree = serializers.BooleanField(
        required=False, help_text="whether reviewers' preferences must share a sign"
    )


def criteria_field(**kwargs: Any) -> serializers.ListSerializer:
    return RubricCriterionSerializer(
        many=True, allow_empty=False, max_length=MAX_CRITERIA, **kwargs
    )


class RubricInput(serializers.Serializer):
    slug = serializers.SlugField(max_length=80)
    title = serializers.CharField(max_length=200)
    criteria = criteria_field()
    policy = RubricPolicySerializer(required=False)

    def validate_slug(self, value: str) -> str:
        if Rubric.objects.filter(slug=value).exists():
            raise serializers.ValidationError("A rubric with this slug already exists.")
        return value


class RubricReviseInput(serializers.Serializer):
    criteria = criteria_field(required=False, help_text="the whole new list of criteria")
    policy = RubricPolicySerializer(
        required=False, help_text="the fields to change, merged over the current policy"
    )
    rationale = serializers.CharField(max_length=20_000)


class RubricListOutput(serializers.ModelSerializer):
    current_version = serializers.IntegerField()

    class Meta:
        model = Rubric
        fields = ["slug", "title", "current_version", "created_at"]


class RubricDetailOutput(serializers.ModelSerializer):
    current_version = serializers.IntegerField()
    versions = serializers.ListField(child=serializers.IntegerField(), source="version_numbers")
    criteria = RubricCriterionSerializer(many=True, source="current_criteria")
    policy = RubricPolicySerializer(source="current_policy")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Rubric
        fields = [
            "slug",
            "title",
            "current_version",
            "criteria",
            "policy",
            "versions",
            "created_by",
            "created_at",
        ]


class RubricVersionOutput(serializers.ModelSerializer):
    version = serializers.IntegerField(source="number")
    criteria = RubricCriterionSerializer(many=True)
    policy = RubricPolicySerializer()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = RubricVersion
        fields = ["version", "criteria", "policy", "created_by", "created_at"]


class RubricRevisionOutput(serializers.ModelSerializer):
    from_version = serializers.IntegerField(source="from_number")
    to_version = serializers.IntegerField(source="to_number")
    changed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    diff = serializers.JSONField()
    source = serializers.SerializerMethodField()

    class Meta:
        model = RubricRevision
        fields = [
            "id",
            "from_version",
            "to_version",
            "changed_by",
            "rationale",
            "diff",
            "source",
            "created_at",
        ]

    @extend_schema_field(
        {
            "type": "object",
            "properties": {
                "kind": {"type": "string", "enum": list(RubricRevision.Source.values)},
                "arbitration": {"type": "integer"},
            },
            "required": ["kind"],
        }
    )
    def get_source(self, revision: RubricRevision) -> dict[str, Any]:
        source: dict[str, Any] = {"kind": revision.source}
        if revision.source == RubricRevision.Source.ARBITRATION:
            source["arbitration"] = revision.arbitration_id
        return source


class RubricListCreate(ReadersAndWriters, generics.ListAPIView):
    """Rubrics with their current version number; a lead creates one (its version 1)."""

    serializer_class = RubricListOutput
    write_roles = (Role.LEAD,)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.rubrics_list()

    @extend_schema(request=RubricInput, responses={201: RubricDetailOutput})
    @idempotent
    def post(self, request: Request) -> Response:
        data = RubricInput(data=request.data)
        data.is_valid(raise_exception=True)
        rubric = services.rubric_create(actor=request.user, **data.validated_data)
        rubric = selectors.rubrics_detailed().get(pk=rubric.pk)
        return Response(RubricDetailOutput(rubric).data, status=201)


class RubricDetail(generics.RetrieveAPIView):
    """A rubric: its current version's criteria and policy, and every version's number."""

    serializer_class = RubricDetailOutput
    lookup_field = "slug"

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.rubrics_detailed()


class RubricVersionDetail(generics.RetrieveAPIView):
    """One immutable version of a rubric."""

    serializer_class = RubricVersionOutput
    lookup_field = "number"
    lookup_url_kwarg = "number"

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.rubric_versions(slug=self.kwargs["slug"])


class RubricRevisionListCreate(ReadersAndWriters, generics.ListAPIView):
    """The revision log, oldest first; a lead's POST makes the next version with its rationale."""

    serializer_class = RubricRevisionOutput
    write_roles = (Role.LEAD,)

    def rubric(self) -> Rubric:
        return get_object_or_404(Rubric, slug=self.kwargs["slug"])

    def get_queryset(self):  # type: ignore[no-untyped-def]
        if getattr(self, "swagger_fake_view", False):
            return RubricRevision.objects.none()
        return selectors.rubric_revisions(rubric=self.rubric())

    @extend_schema(request=RubricReviseInput, responses={201: RubricRevisionOutput})
    @idempotent
    def post(self, request: Request, slug: str) -> Response:
        rubric = self.rubric()
        data = RubricReviseInput(data=request.data)
        data.is_valid(raise_exception=True)
        revision = services.rubric_revise(rubric=rubric, actor=request.user, **data.validated_data)
        revision = selectors.rubric_revisions(rubric=rubric).get(pk=revision.pk)
        return Response(RubricRevisionOutput(revision).data, status=201)
