from django.contrib import admin

from core.admin import ReadOnlyAdmin
from rubrics.models import Rubric, RubricRevision, RubricVersion


@admin.register(Rubric)
class RubricAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "created_at"]
    search_fields = ["slug", "title"]


@admin.register(RubricVersion)
class RubricVersionAdmin(ReadOnlyAdmin):
    list_display = ["rubric", "number", "created_by", "created_at"]


@admin.register(RubricRevision)
class RubricRevisionAdmin(ReadOnlyAdmin):
    list_display = ["rubric", "from_version", "to_version", "changed_by", "source", "created_at"]
