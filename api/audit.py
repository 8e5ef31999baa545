"""The auditor's API: the trail (filtered, paginated, exported), its verification, task histories.

Every read of the trail is recorded (`AuditRead`, itself audited) before the data is served.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import selectors, services
from audit.models import AuditEvent
from core.pagination import IdCursorPagination
from core.permissions import has_role
from core.roles import Role, user_has_role
from tasks import selectors as task_selectors

ENTRY_FIELDS = [
    "id",
    "at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "changes",
    "reason",
    "request_id",
    "origin",
]
ORDERINGS = ("-id", "id")
EXPORT_CHUNK_ROWS = 2_000


class AuditEventOutput(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ENTRY_FIELDS


def _ordering(request: Request, default: str) -> str:
    ordering = request.query_params.get("ordering", default)
    if ordering not in ORDERINGS:
        raise ValidationError({"ordering": [f"Use one of: {', '.join(ORDERINGS)}."]})
    return ordering


class AuditCursorPagination(IdCursorPagination):
    """Newest first by default; `?ordering=id` pages oldest first."""

    def get_ordering(self, request: Request, queryset: QuerySet, view: Any) -> tuple[str, ...]:
        return (_ordering(request, "-id"),)


def _filters(request: Request) -> dict[str, Any]:
    return {key: request.query_params.get(key) for key in sorted(request.query_params)}


def _filtered(request: Request) -> QuerySet[AuditEvent]:
    filterset = selectors.AuditEventFilter(request.query_params, queryset=selectors.audit_events())
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return filterset.qs


def _record_read(request: Request, **about: Any) -> None:
    services.audit_read_record(
        reader=request.user, path=request.path, filters=_filters(request), **about
    )


_FILTER_PARAMETERS = [
    OpenApiParameter("object_type", str, description="e.g. tasks.task"),
    OpenApiParameter("object_id", str),
    OpenApiParameter("actor", str, description="user id or username"),
    OpenApiParameter("action", str, description="e.g. task.submitted"),
    OpenApiParameter("request_id", str),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="at or after (ISO 8601)"),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="before (ISO 8601)"),
    OpenApiParameter("ordering", str, enum=list(ORDERINGS)),
]


class AuditEventList(generics.ListAPIView):
    """The audit trail, filtered; cursor-paginated, newest first unless `?ordering=id`."""

    permission_classes = [IsAuthenticated, has_role(Role.AUDITOR)]
    serializer_class = AuditEventOutput
    pagination_class = AuditCursorPagination
    filter_backends: list[Any] = []  # the filterset runs in get_queryset, shared with the export

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return _filtered(self.request)

    @extend_schema(parameters=_FILTER_PARAMETERS)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # Invalid filters or ordering are a 400 before anything is recorded.
        queryset = self.get_queryset()
        _ordering(request, "-id")
        _record_read(
            request,
            object_type=request.query_params.get("object_type", ""),
            object_id=request.query_params.get("object_id", ""),
        )
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


def _timestamp(value: datetime) -> str:
    # As DRF renders it in the list, so an export and a page agree byte for byte.
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _jsonl(queryset: QuerySet[AuditEvent]) -> Iterator[str]:
    for row in queryset.values(*ENTRY_FIELDS).iterator(chunk_size=EXPORT_CHUNK_ROWS):
        row["at"] = _timestamp(row["at"])
        yield json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"


class AuditEventExport(APIView):
    """The filtered trail as JSON Lines, streamed from a server-side cursor (oldest first
    unless `?ordering=-id`)."""

    permission_classes = [IsAuthenticated, has_role(Role.AUDITOR)]

    @extend_schema(
        parameters=_FILTER_PARAMETERS,
        responses={(200, "application/x-ndjson"): OpenApiTypes.STR},
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        queryset = _filtered(request).order_by(_ordering(request, "id"))
        _record_read(
            request,
            object_type=request.query_params.get("object_type", ""),
            object_id=request.query_params.get("object_id", ""),
        )
        response = StreamingHttpResponse(_jsonl(queryset), content_type="application/x-ndjson")
        response["Content-Disposition"] = 'attachment; filename="audit-events.jsonl"'
        return response


class CheckpointInput(serializers.Serializer):
    since_seq = serializers.IntegerField(required=False, min_value=1)
    since_hash = serializers.RegexField(r"^[0-9a-f]{64}$", required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if len(attrs) == 1:
            raise ValidationError(
                "Give both since_seq and since_hash (a head of a verify), or neither."
            )
        return attrs


class AuditVerify(APIView):
    """Seals what is pending, then recomputes the hash chain end to end, or from a checkpoint."""

    permission_classes = [IsAuthenticated, has_role(Role.AUDITOR)]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "since_seq",
                int,
                description="with since_hash: a head from an earlier verify; only the seals "
                "after it are re-checked, once its own hash is confirmed",
            ),
            OpenApiParameter("since_hash", str, description="the hash of that head"),
        ],
        responses=inline_serializer(
            "AuditVerifyReport",
            {
                "ok": serializers.BooleanField(),
                "checked": serializers.IntegerField(),
                "unsealed": serializers.IntegerField(),
                "head": serializers.DictField(required=False),
                "first_broken": serializers.DictField(required=False),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        checkpoint = CheckpointInput(data=request.query_params)
        checkpoint.is_valid(raise_exception=True)
        since = None
        if checkpoint.validated_data:
            since = services.Checkpoint(
                seq=checkpoint.validated_data["since_seq"],
                hash=checkpoint.validated_data["since_hash"],
            )
        _record_read(request)
        return Response(services.audit_seal_and_verify(since=since))


class TaskHistory(APIView):
    """One task's whole story in order: the task, its turns and validators, the rubric versions
    it was judged under and their revisions; for leads and auditors also its slots and candidates
    (model identities) and its review slots, assignments, reviews, arbitrations and outcome
    (reviewer identities)."""

    permission_classes = [IsAuthenticated, has_role(Role.AUTHOR, Role.LEAD, Role.AUDITOR)]

    @extend_schema(responses=AuditEventOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        visible = task_selectors.tasks_visible_to(user=request.user)
        task_id = visible.filter(pk=pk).values_list("pk", flat=True).first()
        if task_id is None:
            raise NotFound
        _record_read(request, object_type="tasks.task", object_id=task_id)
        insiders = user_has_role(request.user, Role.LEAD, Role.AUDITOR)
        events = selectors.task_history(
            task_id=task_id, with_identities=insiders, with_reviews=insiders
        )
        data = AuditEventOutput(events, many=True).data
        if not insiders:
            # A reviewer's submit closes the round and so changes the task: the author sees
            # that it happened, never who did it.
            for entry, event in zip(data, events, strict=True):
                if event.actor_id is not None and event.actor_id != request.user.pk:
                    entry["actor"] = None
        return Response(data)
