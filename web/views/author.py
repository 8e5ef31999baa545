"""The author's pages: task list, new task, the task with live generation, follow-ups, submit."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Count, Min, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRefresh

from api.tasks import SubmitInput, TaskInput, TurnInput
from core.fsm import available_transitions
from core.roles import Role
from reviews import selectors as review_selectors
from reviews import services as review_services
from reviews.models import ReviewSlot
from tasks import selectors, services
from tasks.models import Candidate, CandidateState, Task, TaskState
from tasks.preferences import PREFERENCE_CHOICES
from web.access import RefusedError, attempt, role_required
from web.forms import integer_or_raw, task_body
from web.views.common import TurnView, card_for

READERS = (Role.AUTHOR, Role.LEAD, Role.AUDITOR)
SEARCH_LIMIT = 20


def _visible(request: HttpRequest, pk: int) -> Task:
    tasks = review_selectors.with_author_feedback(selectors.tasks_visible_to(user=request.user))
    return get_object_or_404(tasks, pk=pk)


@require_GET
@role_required(*READERS)
def task_list(request: HttpRequest) -> HttpResponse:
    tasks = selectors.tasks_visible_to(user=request.user).order_by("-id")
    state = request.GET.get("state", "")
    if state in TaskState.values:
        tasks = tasks.filter(state=state)
    return render(
        request,
        "web/author/task_list.html",
        {"tasks": tasks[:200], "states": TaskState.choices, "state": state},
    )


def _new_task_page(
    request: HttpRequest, *, errors: list[str] | None = None, status: int = 200
) -> HttpResponse:
    chosen = integer_or_raw(request.POST.get("repository")) if request.method == "POST" else None
    repository = (
        selectors.repositories_search(active=True).filter(pk=chosen).first()
        if isinstance(chosen, int)
        else None
    )
    return render(
        request,
        "web/author/task_new.html",
        {
            "campaigns": selectors.campaigns().order_by("-id"),
            "kinds": Task.Kind.choices,
            "values": request.POST,
            "chosen": [repository] if repository else [],
            "errors": errors or [],
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@role_required(Role.AUTHOR)
def task_new(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _new_task_page(request)
    data = TaskInput(data=task_body(request.POST))
    try:
        attempt(lambda: data.is_valid(raise_exception=True))
        task = attempt(lambda: services.task_create(actor=request.user, **data.validated_data))
    except RefusedError as refused:
        return _new_task_page(request, errors=refused.messages, status=refused.status)
    messages.success(request, "Task created. Generate the answers when the prompt is ready.")
    return redirect("web:task-detail", pk=task.pk)


@require_GET
@role_required(Role.AUTHOR)
def repository_search(request: HttpRequest) -> HttpResponse:
    """The catalogue, searched as the author types (an htmx partial)."""
    query = request.GET.get("q", "").strip()[:200]
    found = selectors.repositories_search(search=query, active=True)[:SEARCH_LIMIT] if query else []
    return render(
        request, "web/author/_repository_results.html", {"repositories": found, "query": query}
    )


def _progress(task: Task) -> dict[str, Any]:
    counts = Candidate.objects.filter(turn__task=task).aggregate(
        total=Count("id"),
        done=Count("id", filter=Q(state=CandidateState.SUCCEEDED)),
        failed=Count("id", filter=Q(state=CandidateState.FAILED)),
    )
    needed = task.turns_total * task.slots_total
    each = (
        Candidate.objects.filter(turn__task=task)
        .order_by("turn__index", "slot__label")
        .values("turn__index", "slot__label", "state", "attempts")
    )
    return {
        **counts,
        "needed": needed,
        "percent": round(100 * counts["done"] / needed) if needed else 0,
        "candidates": list(each),  # slot labels only: the page is the author's
    }


def _last_submission(task: Task) -> Any:
    """When the previous round was submitted (its review slots opened then), or None in round 1."""
    if task.round == 1:
        return None
    return ReviewSlot.objects.filter(task=task, round=task.round - 1).aggregate(
        at=Min("opened_at")
    )["at"]


def _task_page(
    request: HttpRequest,
    task: Task,
    *,
    errors: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    reveal = selectors.sees_model_identities(request.user)
    by_turn: dict[int, list[Any]] = {}
    for candidate in selectors.candidates_of(task=task):
        by_turn.setdefault(candidate.turn.index, []).append(card_for(candidate, reveal=reveal))
    since = _last_submission(task)
    turns = [
        TurnView(
            t.index,
            t.prompt,
            by_turn.get(t.index, []),
            new_this_round=since is not None and t.created_at > since,
        )
        for t in task.turns.all()
    ]
    return render(
        request,
        "web/author/task_detail.html",
        {
            "task": task,
            "turns": turns,
            "progress": _progress(task) if task.state == TaskState.GENERATING else None,
            "transitions": available_transitions(task, request.user),
            "feedback": review_selectors.author_feedback(task),
            "new_turns": [t.index for t in turns if t.new_this_round],
            "preferences": PREFERENCE_CHOICES,
            "values": request.POST if request.method == "POST" else {},
            "errors": errors or [],
            "is_author": task.author_id == request.user.pk,
        },
        status=status,
    )


@require_GET
@role_required(*READERS)
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _task_page(request, _visible(request, pk))


@require_GET
@role_required(*READERS)
def task_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """Polled by the task page while the answers are generated; reloads it when they are in."""
    task = _visible(request, pk)
    if task.state != TaskState.GENERATING:
        return HttpResponseClientRefresh()
    return render(request, "web/author/_progress.html", {"task": task, "progress": _progress(task)})


def _act(request: HttpRequest, pk: int, act: Any, done: str) -> HttpResponse:
    task = _visible(request, pk)
    try:
        attempt(lambda: act(task))
    except RefusedError as refused:
        return _task_page(
            request, _visible(request, pk), errors=refused.messages, status=refused.status
        )
    messages.success(request, done)
    return redirect("web:task-detail", pk=pk)


@require_POST
@role_required(Role.AUTHOR)
def task_generate(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda task: services.task_generate(task=task, actor=request.user),
        "Generation queued.",
    )


@require_POST
@role_required(Role.AUTHOR)
def task_retry(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda task: services.task_retry(task=task, actor=request.user),
        "Generation queued again.",
    )


@require_POST
@role_required(Role.AUTHOR)
def task_turn(request: HttpRequest, pk: int) -> HttpResponse:
    def add(task: Task) -> None:
        data = TurnInput(data={"prompt": request.POST.get("prompt", "")})
        data.is_valid(raise_exception=True)
        services.turn_add(task=task, actor=request.user, **data.validated_data)

    return _act(request, pk, add, "Follow-up added. Generate to get its answers.")


@require_POST
@role_required(Role.AUTHOR)
def task_submit(request: HttpRequest, pk: int) -> HttpResponse:
    def submit(task: Task) -> None:
        data = SubmitInput(
            data={
                "preference": integer_or_raw(request.POST.get("preference")),
                "rationale": request.POST.get("rationale", ""),
            }
        )
        data.is_valid(raise_exception=True)
        review_services.task_submit(task=task, actor=request.user, **data.validated_data)

    return _act(request, pk, submit, "Submitted for review.")


@require_POST
@role_required(Role.AUTHOR)
def task_revise(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda task: services.task_revise(task=task, actor=request.user),
        "The task is a draft again, in the next round.",
    )
