"""The start page: one panel per role the person holds, each with what waits for them."""

from __future__ import annotations

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.roles import Role
from reviews import selectors as review_selectors
from reviews.models import ArbitrationState, Assignment, AssignmentState
from tasks.models import Task
from web.access import role_required


@require_GET
@role_required()
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    roles = user.roles
    panels: dict[str, object] = {}
    if Role.AUTHOR in roles:
        panels["author"] = dict(
            Task.objects.filter(author=user)
            .values("state")
            .annotate(n=Count("id"))
            .values_list("state", "n")
            .order_by()
        )
    if Role.REVIEWER in roles:
        panels["reviewer"] = list(
            Assignment.objects.filter(reviewer=user, state=AssignmentState.ACTIVE)
            .select_related("task")
            .order_by("due_at")[:10]
        )
    if Role.ARBITER in roles:
        panels["arbiter"] = (
            review_selectors.arbitrations_visible_to(user=user)
            .filter(state=ArbitrationState.OPEN)
            .count()
        )
    return render(
        request,
        "web/home.html",
        {"panels": panels, "roles": sorted(roles), "no_role": not roles},
    )
