from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from audit.models import AuditEvent, AuditRead
from audit.services import audit_read_record
from core.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: the trail is written by the database and never edited."""

    list_display = [
        "id",
        "at",
        "actor",
        "origin",
        "action",
        "object_type",
        "object_id",
        "request_id",
    ]
    list_filter = ["origin", "object_type"]
    search_fields = ["action", "object_id", "request_id", "actor"]
    show_full_result_count = False

    # Reading the trail is itself recorded, in the admin as through the API.
    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        audit_read_record(reader=request.user, path=request.path, filters=dict(request.GET.items()))
        return super().changelist_view(request, extra_context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        audit_read_record(
            reader=request.user,
            path=request.path,
            filters={},
            object_type="audit.auditevent",
            object_id=object_id,
        )
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(AuditRead)
class AuditReadAdmin(ReadOnlyAdmin):
    """Who read the trail: written by the auditor endpoints, never edited."""

    list_display = ["id", "at", "reader", "path", "object_type", "object_id"]
    list_select_related = ["reader"]
    search_fields = ["path", "object_type", "object_id", "reader__username"]
