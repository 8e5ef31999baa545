"""Campaign results (leaderboard, agreement, export) and payouts: thin views over results and services."""

from typing import Any

import django_filters
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.filters import UTCIsoDateTimeFilter
from core.fsm import available_transitions
from core.permissions import has_role
from core.roles import Role
from idempotency.decorators import idempotent
from reviews import export, results, selectors, services
from reviews.models import WorkLog, WorkLogState
from tasks.models import Campaign

RESULT_READERS = has_role(Role.LEAD, Role.AUDITOR)
BIGINT = 2**63 - 1


def _campaign(pk: int) -> Campaign:
    return generics.get_object_or_404(
        Campaign.objects.select_related("rubric_version__rubric"), pk=pk
    )


class CampaignLeaderboard(APIView):
    permission_classes = [IsAuthenticated, RESULT_READERS]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "scope",
                str,
                enum=["campaign", "family"],
                description="family: the campaign with its reruns on the same rubric version",
            )
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, pk: int) -> Response:
        scope = request.query_params.get("scope", "campaign")
        if scope not in ("campaign", "family"):
            raise serializers.ValidationError({"scope": ["Use 'campaign' or 'family'."]})
        return Response(results.campaign_leaderboard(campaign=_campaign(pk), scope=scope))


class CampaignAgreement(APIView):
    permission_classes = [IsAuthenticated, RESULT_READERS]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, pk: int) -> Response:
        return Response(results.campaign_agreement(campaign=_campaign(pk)))


class _JSONOnly(DefaultContentNegotiation):
    """`?format=` names the export's file format here, not a DRF renderer."""

    def select_renderer(self, request, renderers, format_suffix=None):  # type: ignore[no-untyped-def]
        return renderers[0], renderers[0].media_type


EXPORT_FORMATS = {
    "jsonl": ("application/jsonl", export.jsonl_chunks),
    "parquet": ("application/vnd.apache.parquet", export.parquet_chunks),
}


class CampaignExport(APIView):
    permission_classes = [IsAuthenticated, RESULT_READERS]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _JSONOnly

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=list(EXPORT_FORMATS))],
        responses={
            (200, "application/jsonl"): OpenApiResponse(
                OpenApiTypes.STR, description="one JSON object per line"
            ),
            (200, "application/vnd.apache.parquet"): OpenApiResponse(OpenApiTypes.BINARY),
        },
        description=(export.__doc__ or "").strip(),
    )
    def get(self, request: Request, pk: int) -> StreamingHttpResponse:
        name = request.query_params.get("format", "jsonl")
        if name not in EXPORT_FORMATS:
            raise serializers.ValidationError({"format": [f"Use one of {sorted(EXPORT_FORMATS)}."]})
        campaign = _campaign(pk)
        media_type, encode = EXPORT_FORMATS[name]
        rows = export.export_rows(export.outcomes_for_export(campaign=campaign))
        response = StreamingHttpResponse(encode(rows), content_type=media_type)
        response["Content-Disposition"] = (
            f'attachment; filename="campaign-{campaign.pk}-preferences.{name}"'
        )
        return response


# Payouts


class WorkLogOutput(serializers.ModelSerializer):
    person = serializers.CharField(source="person.username")
    person_id = serializers.IntegerField()
    campaign = serializers.IntegerField(source="campaign_id")
    task = serializers.IntegerField(source="task_id")
    review = serializers.IntegerField(source="review_id", allow_null=True)
    arbitration = serializers.IntegerField(source="arbitration_id", allow_null=True)

    class Meta:
        model = WorkLog
        fields = [
            "id",
            "person",
            "person_id",
            "campaign",
            "task",
            "kind",
            "review",
            "arbitration",
            "amount_cents",
            "time_spent_seconds",
            "elapsed_seconds",
            "state",
            "earned_at",
            "approved_at",
            "paid_at",
        ]


class WorkLogDetailOutput(WorkLogOutput):
    transitions = serializers.SerializerMethodField()

    class Meta(WorkLogOutput.Meta):
        fields = [*WorkLogOutput.Meta.fields, "transitions"]

    def get_transitions(self, entry: WorkLog) -> list[str]:
        return available_transitions(entry, self.context["request"].user)


class WorkLogFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=WorkLogState.choices)
    kind = django_filters.ChoiceFilter(choices=WorkLog.Kind.choices)
    # Bounded: an id past bigint would reach PostgreSQL as an out-of-range error (a 500).
    campaign = django_filters.NumberFilter(field_name="campaign_id", min_value=1, max_value=BIGINT)
    person = django_filters.NumberFilter(field_name="person_id", min_value=1, max_value=BIGINT)
    since = UTCIsoDateTimeFilter(field_name="earned_at", lookup_expr="gte")
    until = UTCIsoDateTimeFilter(field_name="earned_at", lookup_expr="lt")

    class Meta:
        model = WorkLog
        fields = ["state", "kind", "campaign", "person", "since", "until"]


class PayoutList(generics.ListAPIView):
    """Earnings and time: each person's own; a lead sees everyone's. Totals follow the filters."""

    serializer_class = WorkLogOutput
    permission_classes = [IsAuthenticated]
    filterset_class = WorkLogFilter

    def get_queryset(self):  # type: ignore[no-untyped-def]
        if getattr(self, "swagger_fake_view", False):
            return WorkLog.objects.none()
        return selectors.work_visible_to(self.request.user)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        response.data.update(selectors.work_totals(self.filter_queryset(self.get_queryset())))
        return response


class _PayoutTransition(APIView):
    permission_classes = [IsAuthenticated, has_role(Role.LEAD)]
    service: Any = None

    @extend_schema(request=None, responses=WorkLogDetailOutput)
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        entry = generics.get_object_or_404(selectors.work_visible_to(request.user), pk=pk)
        type(self).service(entry=entry, actor=request.user)
        entry = selectors.work_visible_to(request.user).get(pk=pk)
        return Response(WorkLogDetailOutput(entry, context={"request": request}).data)


class PayoutApprove(_PayoutTransition):
    service = staticmethod(services.worklog_approve)


class PayoutPay(_PayoutTransition):
    service = staticmethod(services.worklog_pay)
