"""Model versions and campaigns: leads write, auditors read."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from core.permissions import ReadersAndWriters, has_role
from core.roles import Role
from idempotency.decorators import idempotent
from rubrics.models import RubricVersion
from tasks import selectors, services, validators
from tasks.evidence import checks as evidence_checks
from tasks.models import Campaign, ModelVersion


class ParametersSerializer(serializers.Serializer):
    temperature = serializers.FloatField(required=False, min_value=0, max_value=2)
    max_tokens = serializers.IntegerField(required=False, min_value=1, max_value=200_000)
    seed = serializers.IntegerField(required=False)
    system_prompt = serializers.CharField(required=False, allow_blank=True, max_length=20_000)


class ModelVersionSerializer(serializers.ModelSerializer):
    parameters = ParametersSerializer(required=False)
    api_key_env = serializers.RegexField(
        r"^[A-Z_][A-Z0-9_]{0,99}$",
        required=False,
        allow_blank=True,
        help_text="the NAME of the environment variable holding the key, never the key",
    )

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "slug",
            "provider",
            "model",
            "base_url",
            "api_key_env",
            "parameters",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]

    def validate(self, attrs: dict) -> dict:
        if attrs["provider"] == ModelVersion.Provider.OPENAI and not attrs.get("base_url"):
            raise serializers.ValidationError(
                {"base_url": ["An OpenAI-compatible provider needs a base URL."]}
            )
        return attrs


class ModelVersionListCreate(ReadersAndWriters, generics.ListAPIView):
    serializer_class = ModelVersionSerializer
    read_roles = (Role.LEAD, Role.AUDITOR)
    write_roles = (Role.LEAD,)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.model_versions()

    @extend_schema(request=ModelVersionSerializer, responses={201: ModelVersionSerializer})
    @idempotent
    def post(self, request: Request) -> Response:
        data = ModelVersionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.model_version_create(**data.validated_data)
        return Response(ModelVersionSerializer(version).data, status=201)


class CampaignOutput(serializers.ModelSerializer):
    rubric = serializers.CharField(source="rubric_version.rubric.slug")
    rubric_version = serializers.IntegerField(source="rubric_version.number")
    model_versions = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    policy = serializers.JSONField()
    tokens_spent = serializers.IntegerField(
        read_only=True, help_text="tokens of answered calls plus the reservations of running ones"
    )

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "rubric",
            "rubric_version",
            "model_versions",
            "reviewers_per_task",
            "policy",
            "validators",
            "evidence",
            "author_rate_cents",
            "review_rate_cents",
            "arbitration_rate_cents",
            "review_timeout_minutes",
            "deadline",
            "token_budget",
            "tokens_spent",
            "rerun_of",
            "created_at",
        ]


class CampaignBlindOutput(serializers.ModelSerializer):
    """What an author sees of a campaign: nothing that names the models compared."""

    rubric = serializers.CharField(source="rubric_version.rubric.slug")
    rubric_version = serializers.IntegerField(source="rubric_version.number")

    class Meta:
        model = Campaign
        fields = ["id", "name", "rubric", "rubric_version", "reviewers_per_task", "deadline"]


def campaign_serializer_for(user: object) -> type[serializers.ModelSerializer]:
    return CampaignOutput if selectors.sees_model_identities(user) else CampaignBlindOutput


class CampaignInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    rubric = serializers.SlugField()
    rubric_version = serializers.IntegerField(min_value=1)
    model_versions = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=ModelVersion.objects.all()
    )
    reviewers_per_task = serializers.IntegerField(min_value=1, max_value=20, default=3)
    policy_override = serializers.JSONField(required=False, allow_null=True)
    validators = serializers.ListField(child=serializers.CharField(), required=False)
    evidence = serializers.JSONField(
        required=False,
        help_text='checks run on each candidate in a sandbox: {"test_command": ["python", "-m", '
        '"pytest"], "linters": ["ruff", "bandit"], "timeout_seconds": 120}',
    )
    author_rate_cents = serializers.IntegerField(min_value=0, required=False)
    review_rate_cents = serializers.IntegerField(min_value=0, required=False)
    arbitration_rate_cents = serializers.IntegerField(min_value=0, required=False)
    review_timeout_minutes = serializers.IntegerField(
        min_value=1, max_value=7 * 24 * 60, required=False
    )
    deadline = serializers.DateTimeField(required=False, allow_null=True)
    token_budget = serializers.IntegerField(
        min_value=1, max_value=10**15, required=False, allow_null=True
    )

    def validate_validators(self, keys: list[str]) -> list[str]:
        unknown = sorted(set(keys) - set(validators.REGISTRY))
        if unknown:
            raise serializers.ValidationError(f"Unknown validators: {', '.join(unknown)}.")
        return keys

    def validate_evidence(self, value: object) -> object:
        try:
            evidence_checks.parse_config(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return value or {}

    def validate(self, attrs: dict) -> dict:
        version = RubricVersion.objects.filter(
            rubric__slug=attrs.pop("rubric"), number=attrs["rubric_version"]
        ).first()
        if version is None:
            raise serializers.ValidationError({"rubric_version": ["No such rubric version."]})
        attrs["rubric_version"] = version
        return attrs


class CampaignListCreate(ReadersAndWriters, generics.ListAPIView):
    serializer_class = CampaignOutput
    read_roles = (Role.LEAD, Role.AUDITOR, Role.AUTHOR)
    write_roles = (Role.LEAD,)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.campaigns().order_by("-id")

    def get_serializer_class(self):  # type: ignore[no-untyped-def]
        return campaign_serializer_for(self.request.user)

    @extend_schema(request=CampaignInput, responses={201: CampaignOutput})
    @idempotent
    def post(self, request: Request) -> Response:
        data = CampaignInput(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = services.campaign_create(actor=request.user, **data.validated_data)
        campaign = selectors.campaigns().get(pk=campaign.pk)
        return Response(CampaignOutput(campaign).data, status=201)


class CampaignDetail(generics.RetrieveAPIView):
    permission_classes = [IsAuthenticated, has_role(Role.LEAD, Role.AUDITOR, Role.AUTHOR)]

    def get_serializer_class(self):  # type: ignore[no-untyped-def]
        return campaign_serializer_for(self.request.user)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.campaigns()


class RerunInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    model_versions = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=ModelVersion.objects.all()
    )


class CampaignRerun(generics.GenericAPIView):
    """Same prompts (every completed task, every turn), same rubric version, other model versions."""

    permission_classes = [IsAuthenticated, has_role(Role.LEAD)]
    serializer_class = RerunInput

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.campaigns()

    @extend_schema(request=RerunInput, responses={201: CampaignOutput})
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        source = self.get_object()
        data = RerunInput(data=request.data)
        data.is_valid(raise_exception=True)
        rerun = services.campaign_rerun(actor=request.user, campaign=source, **data.validated_data)
        return Response(CampaignOutput(selectors.campaigns().get(pk=rerun.pk)).data, status=201)
