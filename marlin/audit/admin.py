from django.contrib import admin

from marlin.admin import ReadOnlyAdmin
from marlin.audit.models import AuditEvent, AuditRead


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


@admin.register(AuditRead)
class AuditReadAdmin(ReadOnlyAdmin):
    """Who read the trail: written by the auditor endpoints, never edited."""

    list_display = ["id", "at", "reader", "path", "object_type", "object_id"]
    list_select_related = ["reader"]
    search_fields = ["path", "object_type", "object_id", "reader__username"]
