"""The reviewer's pages: the queue, "start next review", and the review page itself."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from api.reviews import ReviewInput
from core.roles import Role
from reviews import selectors, services
from reviews.models import Assignment, AssignmentState, Review
from tasks.preferences import PREFERENCE_CHOICES
from web.access import RefusedError, attempt, role_required
from web.forms import integer_or_raw, review_body
from web.views.common import rubric_rows, score_grid, turn_views


@require_GET
@role_required(Role.REVIEWER)
def review_queue(request: HttpRequest) -> HttpResponse:
    assignments = (
        Assignment.objects.filter(reviewer=request.user)
        .select_related("task__repository")
        .order_by("-id")[:100]
    )
    return render(request, "web/reviewer/queue.html", {"assignments": assignments})


@require_POST
@role_required(Role.REVIEWER)
def review_next(request: HttpRequest) -> HttpResponse:
    campaign = integer_or_raw(request.POST.get("campaign"))
    try:
        assignment = attempt(
            lambda: services.assignment_claim_next(
                reviewer=request.user, campaign_id=campaign if isinstance(campaign, int) else None
            )
        )
    except RefusedError as refused:
        messages.error(request, " ".join(refused.messages))
        return redirect("web:review-queue")
    if assignment is None:
        messages.info(request, "Nothing is waiting for your review right now.")
        return redirect("web:review-queue")
    return redirect("web:review-detail", pk=assignment.pk)


def _review_page(
    request: HttpRequest,
    assignment: Assignment,
    *,
    errors: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    task = assignment.task
    version = task.campaign.rubric_version
    turns = turn_views(task.turns.all())
    values = request.POST if request.method == "POST" else {}
    review = getattr(assignment, "review", None) if assignment.state == "submitted" else None
    return render(
        request,
        "web/reviewer/review.html",
        {
            "assignment": assignment,
            "task": task,
            "turns": turns,
            "criteria": version.criteria,
            "rubric_rows": rubric_rows(turns, version.criteria),
            "grid": score_grid(turns, version.criteria, values),
            "preferences": PREFERENCE_CHOICES,
            "verdicts": Review.Verdict.choices,
            "values": values,
            "errors": errors or [],
            "active": assignment.state == AssignmentState.ACTIVE,
            "review": review,
        },
        status=status,
    )


def _own(request: HttpRequest, pk: int) -> Assignment:
    return get_object_or_404(selectors.assignments_of(reviewer=request.user), pk=pk)


@require_http_methods(["GET", "POST"])
@role_required(Role.REVIEWER)
def review_detail(request: HttpRequest, pk: int) -> HttpResponse:
    assignment = _own(request, pk)
    if request.method != "POST":
        return _review_page(request, assignment)
    data = ReviewInput(data=review_body(request.POST))
    try:
        attempt(lambda: data.is_valid(raise_exception=True))
        attempt(
            lambda: services.review_submit(
                assignment=assignment, actor=request.user, **data.validated_data
            )
        )
    except RefusedError as refused:
        return _review_page(
            request, _own(request, pk), errors=refused.messages, status=refused.status
        )
    messages.success(request, "Review submitted. Thank you.")
    return redirect("web:review-queue")


@require_POST
@role_required(Role.REVIEWER)
def review_release(request: HttpRequest, pk: int) -> HttpResponse:
    assignment = _own(request, pk)
    try:
        attempt(lambda: services.assignment_release(assignment=assignment, actor=request.user))
    except RefusedError as refused:
        return _review_page(
            request, _own(request, pk), errors=refused.messages, status=refused.status
        )
    messages.info(request, "The review went back to the queue.")
    return redirect("web:review-queue")
