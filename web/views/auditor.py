"""The auditor's pages: the trail with filters and before/after, a task's story, the chain check,
and the rubric revision log. Every read of the trail is recorded, as through the API."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from audit import selectors, services
from core.roles import Role
from rubrics import selectors as rubric_selectors
from rubrics.models import Rubric
from tasks import selectors as task_selectors
from web.access import role_required
from web.highlight import guidance_diff

PAGE = 50
FILTERS = ("object_type", "object_id", "actor", "action", "request_id", "since", "until")


def _entries(events: Any) -> list[dict[str, Any]]:
    return [
        {
            "event": e,
            "changes": [
                {"field": name, "before": pair[0], "after": pair[1]}
                for name, pair in sorted((e.changes or {}).items())
                if isinstance(pair, list) and len(pair) == 2
            ],
        }
        for e in events
    ]


def _record(request: HttpRequest, **about: Any) -> None:
    filters = {key: request.GET[key] for key in sorted(request.GET)}
    services.audit_read_record(reader=request.user, path=request.path, filters=filters, **about)


@require_GET
@role_required(Role.AUDITOR)
def timeline(request: HttpRequest) -> HttpResponse:
    query = {key: request.GET.get(key, "") for key in FILTERS}
    filterset = selectors.AuditEventFilter(
        {k: v for k, v in query.items() if v}, queryset=selectors.audit_events()
    )
    if not filterset.is_valid():
        errors = [f"{name}: {' '.join(problems)}" for name, problems in filterset.errors.items()]
        return render(
            request,
            "web/auditor/timeline.html",
            {"query": query, "entries": [], "errors": errors},
            status=400,
        )
    events = filterset.qs.order_by("-id")
    before = request.GET.get("before", "")
    if before.isdigit():
        events = events.filter(id__lt=int(before))
    _record(request, object_type=query["object_type"], object_id=query["object_id"])
    page = list(events[: PAGE + 1])
    more = page[PAGE - 1].id if len(page) > PAGE else None
    return render(
        request,
        "web/auditor/timeline.html",
        {"query": query, "entries": _entries(page[:PAGE]), "more": more, "errors": []},
    )


@require_GET
@role_required(Role.AUDITOR)
def verify(request: HttpRequest) -> HttpResponse:
    """Seals what is pending and recomputes the chain (an htmx partial, or a page of its own)."""
    _record(request)
    report = services.audit_seal_and_verify()
    template = "web/auditor/_verify.html" if request.htmx else "web/auditor/verify.html"
    return render(request, template, {"report": report})


@require_GET
@role_required(Role.AUDITOR, Role.LEAD)
def task_story(request: HttpRequest, pk: int) -> HttpResponse:
    """Everything the task consists of, in order, model and reviewer identities included."""
    task = get_object_or_404(task_selectors.tasks_visible_to(user=request.user), pk=pk)
    _record(request, object_type="tasks.task", object_id=task.pk)
    events = selectors.task_history(task_id=task.pk, with_identities=True, with_reviews=True)
    return render(
        request, "web/auditor/task_story.html", {"task": task, "entries": _entries(events)}
    )


def _revision_entries(rubric: Rubric) -> list[dict[str, Any]]:
    entries = []
    for revision in rubric_selectors.rubric_revisions(rubric=rubric):
        changed = revision.diff.get("criteria", {}).get("changed", [])
        guidance = [
            guidance_diff(*item["fields"]["guidance"], name=item["key"])
            for item in changed
            if "guidance" in item["fields"]
        ]
        other = [
            {"key": item["key"], "field": name, "before": pair[0], "after": pair[1]}
            for item in changed
            for name, pair in item["fields"].items()
            if name != "guidance"
        ]
        entries.append(
            {
                "revision": revision,
                "guidance": guidance,
                "other": other,
                "added": revision.diff.get("criteria", {}).get("added", []),
                "removed": revision.diff.get("criteria", {}).get("removed", []),
                "policy": revision.diff.get("policy", {}),
            }
        )
    return entries


@require_GET
@role_required()
def rubric_log(request: HttpRequest) -> HttpResponse:
    """Every rubric's revision log with the diffs (everyone reads rubrics, as in the API)."""
    rubrics = [
        {"rubric": rubric, "revisions": _revision_entries(rubric)}
        for rubric in rubric_selectors.rubrics_list()
    ]
    return render(request, "web/auditor/rubric_log.html", {"rubrics": rubrics})
