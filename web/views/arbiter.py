"""The arbiter's pages: open disagreements, one disagreement with all its reviews, the decision."""

from __future__ import annotations

from statistics import median
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from api.reviews import ResolveInput
from core.roles import Role, user_has_role
from reviews import selectors, services
from reviews.models import Arbitration, ArbitrationState
from tasks.preferences import PREFERENCE_CHOICES
from web.access import RefusedError, attempt, role_required
from web.forms import resolve_body, revision_from
from web.highlight import guidance_diff
from web.views.common import rubric_rows, score_grid, turn_views

READERS = (Role.ARBITER, Role.LEAD, Role.AUDITOR)


@require_GET
@role_required(*READERS)
def arbitration_list(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", ArbitrationState.OPEN)
    arbitrations = selectors.arbitrations_visible_to(user=request.user)
    if state in ArbitrationState.values:
        arbitrations = arbitrations.filter(state=state)
    return render(
        request,
        "web/arbiter/list.html",
        {"arbitrations": arbitrations[:200], "state": state, "states": ArbitrationState.choices},
    )


def _suggested(reviews: list[Any]) -> dict[str, Any]:
    """The reviews' medians as the form's starting values; the arbiter changes what they decide."""
    per_cell: dict[str, list[int]] = {}
    for review in reviews:
        for s in review.scores:
            per_cell.setdefault(f"score-{s['turn']}-{s['slot']}-{s['criterion']}", []).append(
                s["score"]
            )
    return {name: round(median(scores)) for name, scores in per_cell.items()}


def _spread_by_cell(reviews: list[Any]) -> dict[tuple[int, str, str], list[int]]:
    cells: dict[tuple[int, str, str], list[int]] = {}
    for review in reviews:
        for s in review.scores:
            cells.setdefault((s["turn"], s["slot"], s["criterion"]), []).append(s["score"])
    return cells


def _arbitration_page(
    request: HttpRequest,
    arbitration: Arbitration,
    *,
    errors: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    task = arbitration.task
    version = task.campaign.rubric_version
    turns = turn_views(task.turns.all())
    reviews = [r for r in task.reviews.all() if r.round == arbitration.round]
    values = request.POST if request.method == "POST" else _suggested(reviews)
    cells = _spread_by_cell(reviews)
    disputed = [
        {"turn": t, "slot": s, "criterion": c, "scores": v, "spread": max(v) - min(v)}
        for (t, s, c), v in sorted(cells.items())
        if max(v) - min(v) > task.campaign.policy.get("max_score_spread", 1)
    ]
    # Reviewer identities are shown to arbiters, leads and auditors, as in the API.
    columns = [
        {
            "review": r,
            "scores": {(s["turn"], s["slot"], s["criterion"]): s["score"] for s in r.scores},
        }
        for r in reviews
    ]
    score_rows = [
        {
            "turn": t,
            "slot": s,
            "criterion": c,
            "values": [col["scores"].get((t, s, c)) for col in columns],
        }
        for (t, s, c) in sorted(cells)
    ]
    return render(
        request,
        "web/arbiter/detail.html",
        {
            "arbitration": arbitration,
            "task": task,
            "turns": turns,
            "reviews": reviews,
            "rubric_rows": rubric_rows(turns, version.criteria),
            "score_rows": score_rows,
            "disputed": disputed,
            "preferences_given": [r.preference for r in reviews],
            "guidance_fields": [
                {
                    "key": c["key"],
                    "title": c["title"],
                    "value": values.get(f"guidance-{c['key']}", c["guidance"]),
                }
                for c in version.criteria
            ],
            "policy": task.campaign.policy,
            "grid": score_grid(turns, version.criteria, values),
            "preferences": PREFERENCE_CHOICES,
            "values": values,
            "errors": errors or [],
            "may_decide": user_has_role(request.user, Role.ARBITER)
            and arbitration.state in (ArbitrationState.OPEN, ArbitrationState.CLAIMED),
        },
        status=status,
    )


def _visible(request: HttpRequest, pk: int) -> Arbitration:
    return get_object_or_404(selectors.arbitration_detail(user=request.user), pk=pk)


@require_GET
@role_required(*READERS)
def arbitration_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _arbitration_page(request, _visible(request, pk))


@require_POST
@role_required(Role.ARBITER)
def arbitration_claim(request: HttpRequest, pk: int) -> HttpResponse:
    arbitration = _visible(request, pk)
    try:
        attempt(lambda: services.arbitration_claim(arbitration=arbitration, actor=request.user))
    except RefusedError as refused:
        return _arbitration_page(
            request, _visible(request, pk), errors=refused.messages, status=refused.status
        )
    messages.success(request, "You hold this arbitration now.")
    return redirect("web:arbitration-detail", pk=pk)


@require_POST
@role_required(Role.ARBITER)
def arbitration_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    arbitration = _visible(request, pk)
    criteria = arbitration.task.campaign.rubric_version.criteria
    data = ResolveInput(data=resolve_body(request.POST, criteria))

    def decide() -> None:
        data.is_valid(raise_exception=True)
        services.arbitration_decide(
            arbitration=arbitration, actor=request.user, **data.validated_data
        )

    try:
        attempt(decide)
    except RefusedError as refused:
        return _arbitration_page(
            request, _visible(request, pk), errors=refused.messages, status=refused.status
        )
    messages.success(request, "Decision recorded.")
    return redirect("web:arbitration-detail", pk=pk)


@require_POST
@role_required(Role.ARBITER)
def revision_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The guidance diff of the revision being typed, before anything is saved (htmx partial)."""
    arbitration = _visible(request, pk)
    criteria = arbitration.task.campaign.rubric_version.criteria
    form = request.POST.copy()
    form["revise"] = "on"  # the preview shows the edits whether or not they will be saved
    revision = revision_from(form, criteria) or {}
    revised = {c["key"]: c["guidance"] for c in revision.get("criteria", criteria)}
    diffs = [
        guidance_diff(c["guidance"], revised.get(c["key"], c["guidance"]), name=c["title"])
        for c in criteria
        if revised.get(c["key"], c["guidance"]) != c["guidance"]
    ]
    policy = arbitration.task.campaign.policy
    spread = revision.get("policy", {}).get("max_score_spread")
    return render(
        request,
        "web/arbiter/_revision_preview.html",
        {
            "diffs": diffs,
            "spread_change": (policy.get("max_score_spread"), spread)
            if spread is not None and spread != policy.get("max_score_spread")
            else None,
        },
    )
