from django.contrib import admin
from django.http import HttpRequest

from tasks.models import (
    Campaign,
    Candidate,
    ModelVersion,
    Repository,
    Task,
    TaskSlot,
    Turn,
    ValidatorResult,
)


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin):
    list_display = ["full_name", "language", "license", "default_branch", "active"]
    list_filter = ["active", "language"]
    search_fields = ["full_name"]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["slug", "provider", "model", "base_url", "api_key_env"]
    list_filter = ["provider"]
    search_fields = ["slug", "model"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "rubric_version", "reviewers_per_task", "deadline", "created_at"]
    filter_horizontal = ["model_versions"]
    raw_id_fields = ["rerun_of"]


class TurnInline(admin.TabularInline):
    model = Turn
    extra = 0
    fields = ["index", "prompt"]
    readonly_fields = ["index", "prompt"]
    can_delete = False


class SlotInline(admin.TabularInline):
    model = TaskSlot
    extra = 0
    readonly_fields = ["label", "model_version"]
    can_delete = False


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "scenario_title", "campaign", "author", "state", "round", "created_at"]
    list_filter = ["state", "kind", "campaign"]
    search_fields = ["scenario_title", "author__username", "repository__full_name"]
    list_select_related = ["campaign", "author"]
    raw_id_fields = ["author", "repository", "campaign"]
    readonly_fields = ["state", "round", "submitted_at", "author_preference", "author_rationale"]
    inlines = [TurnInline, SlotInline]


@admin.register(Candidate)
class CandidateAdmin(admin.ModelAdmin):
    list_display = ["id", "turn", "slot", "state", "attempts", "updated_at"]
    list_filter = ["state"]
    list_select_related = ["turn", "slot"]
    readonly_fields = [f.name for f in Candidate._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ValidatorResult)
class ValidatorResultAdmin(admin.ModelAdmin):
    list_display = ["task", "candidate", "key", "passed", "severity"]
    list_filter = ["key", "passed", "severity"]
    raw_id_fields = ["task", "candidate"]
