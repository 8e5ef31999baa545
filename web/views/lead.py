"""The lead's pages: campaign progress, the leaderboard chart, agreement, and payouts."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from core.roles import Role, user_has_role
from reviews import results
from reviews import selectors as review_selectors
from reviews.models import Arbitration, ReviewSlot, SlotState
from tasks import selectors as task_selectors
from tasks.models import Task, TaskState
from web.access import role_required
from web.charts import leaderboard_chart

RESULT_READERS = (Role.LEAD, Role.AUDITOR)


def _progress(campaign_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per campaign: tasks per state, review slots outstanding, arbitrations opened."""
    found: dict[int, dict[str, Any]] = {
        pk: {"states": dict.fromkeys(TaskState.values, 0), "tasks": 0} for pk in campaign_ids
    }
    for row in (
        Task.objects.filter(campaign_id__in=campaign_ids)
        .values("campaign_id", "state")
        .annotate(n=Count("id"))
        .order_by()
    ):
        found[row["campaign_id"]]["states"][row["state"]] = row["n"]
        found[row["campaign_id"]]["tasks"] += row["n"]
    outstanding = dict(
        ReviewSlot.objects.filter(
            task__campaign_id__in=campaign_ids,
            task__state=TaskState.IN_REVIEW,
            state__in=[SlotState.OPEN, SlotState.CLAIMED],
        )
        .values("task__campaign_id")
        .annotate(n=Count("id"))
        .values_list("task__campaign_id", "n")
        .order_by()
    )
    arbitrated = dict(
        Arbitration.objects.filter(task__campaign_id__in=campaign_ids)
        .values("task__campaign_id")
        .annotate(n=Count("id"))
        .values_list("task__campaign_id", "n")
        .order_by()
    )
    decided = dict(
        Task.objects.filter(campaign_id__in=campaign_ids)
        .values("campaign_id")
        .annotate(
            n=Count(
                "id",
                filter=Q(
                    state__in=[TaskState.COMPLETED, TaskState.IN_ARBITRATION, TaskState.REJECTED]
                ),
            )
        )
        .values_list("campaign_id", "n")
        .order_by()
    )
    for pk, row in found.items():
        row["outstanding"] = outstanding.get(pk, 0)
        row["arbitrations"] = arbitrated.get(pk, 0)
        closed = decided.get(pk, 0)
        row["arbitration_rate"] = round(100 * row["arbitrations"] / closed) if closed else None
        done = row["states"][TaskState.COMPLETED]
        row["percent_done"] = round(100 * done / row["tasks"]) if row["tasks"] else 0
    return found


@require_GET
@role_required(*RESULT_READERS)
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = list(task_selectors.campaigns().order_by("-id")[:100])
    progress = _progress([c.pk for c in campaigns])
    rows = [{"campaign": c, **progress[c.pk]} for c in campaigns]
    return render(request, "web/lead/campaigns.html", {"rows": rows, "states": TaskState.choices})


@require_GET
@role_required(*RESULT_READERS)
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(task_selectors.campaigns(), pk=pk)
    board = results.campaign_leaderboard(campaign=campaign)
    agreement = results.campaign_agreement(campaign=campaign)
    criteria = {c["key"]: c["title"] for c in campaign.rubric_version.criteria}
    return render(
        request,
        "web/lead/campaign.html",
        {
            "campaign": campaign,
            "progress": _progress([campaign.pk])[campaign.pk],
            "states": TaskState.choices,
            "board": board,
            "chart": leaderboard_chart(board["ranking"]),
            "agreement": agreement,
            "criteria_rows": [
                {"key": key, "title": criteria.get(key, key), **figures}
                for key, figures in agreement["criteria"].items()
            ],
        },
    )


@require_GET
@role_required()
def payouts(request: HttpRequest) -> HttpResponse:
    """Earnings and time: everyone their own; a lead everyone's."""
    entries = review_selectors.work_visible_to(request.user).select_related("campaign")
    campaign = request.GET.get("campaign", "")
    if campaign.isdigit():
        entries = entries.filter(campaign_id=int(campaign))
    summary = review_selectors.work_totals(entries)
    return render(
        request,
        "web/lead/payouts.html",
        {
            "entries": entries[:200],
            "summary": summary,
            "dollars": {
                state: f"{summary['totals'][f'{state}_cents'] / 100:,.2f}"
                for state in ("amount", "earned", "approved", "paid")
            },
            "everyone": user_has_role(request.user, Role.LEAD),
        },
    )
