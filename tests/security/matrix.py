"""Who may call what: the expectation table, the URL-conf walk and request bodies that would work.

The table is the single statement of the design's roles table as the API applies
it. Every URL pattern under /api/v1/ needs an entry (the permission matrix test fails without
one), so a new endpoint cannot slip in without someone deciding who may call it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

from reviews.models import Assignment, WorkLog
from tasks.models import Task
from tests.reviews.helpers import review_body, score_sheet
from tests.security.world import PASSWORD, PRINCIPALS, ROLE_OF, World, unique
from tests.tasks.factories import GOOD_RATIONALE

API_PREFIX = "api/v1/"

ANYONE = frozenset(PRINCIPALS)
SIGNED_IN = ANYONE - {"anonymous"}
AUTHORS = frozenset({"author", "author_other"})
REVIEWERS = frozenset({"reviewer", "reviewer_other"})
LEAD_AUDITOR = frozenset({"lead", "auditor"})

# endpoint name -> {method: principals who may call it}. "author" and "reviewer" are the owners
# of the objects the paths name (the author's task, the reviewer's assignment); "author_other" and
# "reviewer_other" hold the same role but own nothing there, so they must get 404, not 403.
# HEAD follows GET; OPTIONS (a description of the endpoint, no object data) follows the roles.
MATRIX: dict[str, dict[str, frozenset[str]]] = {
    "auth-token": {"POST": ANYONE},
    "me": {"GET": SIGNED_IN},
    "repository-list": {"GET": SIGNED_IN, "POST": frozenset({"lead"})},
    "repository-detail": {"GET": SIGNED_IN},
    "model-version-list": {"GET": LEAD_AUDITOR, "POST": frozenset({"lead"})},
    "campaign-list": {"GET": LEAD_AUDITOR | AUTHORS, "POST": frozenset({"lead"})},
    "campaign-detail": {"GET": LEAD_AUDITOR | AUTHORS},
    "campaign-rerun": {"POST": frozenset({"lead"})},
    "task-list": {"GET": LEAD_AUDITOR | AUTHORS, "POST": AUTHORS},
    "task-detail": {"GET": LEAD_AUDITOR | {"author"}, "PATCH": frozenset({"author"})},
    "task-turns": {"POST": frozenset({"author"})},
    "task-generate": {"POST": frozenset({"author"})},
    "task-retry": {"POST": frozenset({"author"})},
    "task-submit": {"POST": frozenset({"author"})},
    "task-cancel": {"POST": frozenset({"lead"})},
    "task-revise": {"POST": frozenset({"author"})},
    "task-candidates": {"GET": LEAD_AUDITOR | {"author"}},
    "task-history": {"GET": LEAD_AUDITOR | {"author"}},
    "rubric-list": {"GET": SIGNED_IN, "POST": frozenset({"lead"})},
    "rubric-detail": {"GET": SIGNED_IN},
    "rubric-version-detail": {"GET": SIGNED_IN},
    "rubric-revision-list": {"GET": SIGNED_IN, "POST": frozenset({"lead"})},
    "assignment-list": {"GET": REVIEWERS},
    "assignment-next": {"POST": REVIEWERS},
    "assignment-detail": {"GET": frozenset({"reviewer"})},
    "assignment-review": {"POST": frozenset({"reviewer"})},
    "assignment-release": {"POST": frozenset({"reviewer"})},
    "arbitration-list": {"GET": LEAD_AUDITOR | {"arbiter"}},
    "arbitration-detail": {"GET": LEAD_AUDITOR | {"arbiter"}},
    "arbitration-claim": {"POST": frozenset({"arbiter"})},
    "arbitration-resolve": {"POST": frozenset({"arbiter"})},
    "audit-event-list": {"GET": frozenset({"auditor"})},
    "audit-event-export": {"GET": frozenset({"auditor"})},
    "audit-verify": {"GET": frozenset({"auditor"})},
    "campaign-leaderboard": {"GET": LEAD_AUDITOR},
    "campaign-agreement": {"GET": LEAD_AUDITOR},
    "campaign-export": {"GET": LEAD_AUDITOR},
    "payout-list": {"GET": SIGNED_IN},
    "payout-approve": {"POST": frozenset({"lead"})},
    "payout-pay": {"POST": frozenset({"lead"})},
}


def _all(world: World, principal: str) -> None:
    return None


def _own_tasks(world: World, principal: str) -> set[Any] | None:
    if ROLE_OF.get(principal) in ("lead", "auditor"):
        return None
    return set(Task.objects.filter(author=world.users[principal]).values_list("pk", flat=True))


def _own_assignments(world: World, principal: str) -> set[Any]:
    return set(
        Assignment.objects.filter(reviewer=world.users[principal]).values_list("pk", flat=True)
    )


def _own_work(world: World, principal: str) -> set[Any] | None:
    if ROLE_OF.get(principal) == "lead":
        return None
    return set(WorkLog.objects.filter(person=world.users[principal]).values_list("pk", flat=True))


# Paginated list endpoint -> the row ids (or slugs) the principal may see; None: every row.
VISIBLE_ROWS: dict[str, Callable[[World, str], set[Any] | None]] = {
    "repository-list": _all,
    "model-version-list": _all,
    "campaign-list": _all,
    "task-list": _own_tasks,
    "rubric-list": _all,
    "rubric-revision-list": _all,
    "assignment-list": _own_assignments,
    "arbitration-list": _all,
    "audit-event-list": _all,
    "payout-list": _own_work,
}


def row_key(row: dict[str, Any]) -> Any:
    return row.get("id", row.get("slug"))


# Which object fills `<int:pk>`, by the path's first segment, unless the endpoint names its own.
_PK_BY_PREFIX: dict[str, Callable[[World], int]] = {
    "repositories": lambda w: w.repository.pk,
    "campaigns": lambda w: w.campaign.pk,
    "tasks": lambda w: w.draft.pk,
    "assignments": lambda w: w.assignment.pk,
    "arbitrations": lambda w: w.arbitration.pk,
    # The reviewer's pay for their review: the object a payout path names has an owner too.
    "payouts": lambda w: WorkLog.objects.filter(person=w.users["reviewer"]).first().pk,
}
_PK_BY_NAME: dict[str, Callable[[World], int]] = {
    # A task with candidates, reviews and an arbitration behind it: more to leak, if anything does.
    "task-candidates": lambda w: w.arb_task.pk,
    "task-history": lambda w: w.arb_task.pk,
}


def bodies(world: World) -> dict[tuple[str, str], Callable[[], Any]]:
    """(endpoint, method) -> a body the allowed caller's request would be accepted with."""
    slugs = list(world.campaign.model_versions.values_list("slug", flat=True))
    return {
        ("auth-token", "POST"): lambda: {"username": "no_role", "password": PASSWORD},
        ("repository-list", "POST"): lambda: {
            "full_name": f"sec/new-{unique()}",
            "url": "https://example.org/sec/new",
        },
        ("model-version-list", "POST"): lambda: {
            "slug": f"new-model-{unique()}",
            "provider": "openai",
            "model": "new-model",
            "base_url": "http://127.0.0.1:9/v1",
            "api_key_env": "NEW_MODEL_KEY",
        },
        ("campaign-list", "POST"): lambda: {
            "name": "Another",
            "rubric": world.rubric_slug,
            "rubric_version": 1,
            "model_versions": slugs,
        },
        ("campaign-rerun", "POST"): lambda: {"name": "Rerun", "model_versions": slugs},
        ("task-list", "POST"): lambda: {
            "campaign": world.campaign.pk,
            "repository": world.repository.pk,
            "base_commit": "3f2a9c1d4e5b6a7980c1d2e3f4a5b6c7d8e9f0a1",
            "kind": "bug_fix",
            "scenario": {"title": "A bug", "description": "It breaks.", "url": ""},
            "prompt": "Fix the bug in the request handler, with a test.",
        },
        ("task-detail", "PATCH"): lambda: {"kind": "refactor"},
        ("task-turns", "POST"): lambda: {"prompt": "Now add a test for the empty input case."},
        ("task-submit", "POST"): lambda: {"preference": 1, "rationale": GOOD_RATIONALE},
        ("task-cancel", "POST"): lambda: {"reason": "A duplicate of another task."},
        ("rubric-list", "POST"): lambda: {
            "slug": f"rubric-{unique()}",
            "title": "Another rubric",
            "criteria": [{"key": "correctness", "title": "Correctness"}],
        },
        ("rubric-revision-list", "POST"): lambda: {
            "rationale": "Allow a wider spread.",
            "policy": {"max_score_spread": 2},
        },
        ("assignment-next", "POST"): lambda: {"campaign": world.campaign.pk},
        ("assignment-review", "POST"): lambda: review_body(world.review_task),
        ("arbitration-resolve", "POST"): lambda: {
            "decision": "resolve",
            "preference": -1,
            "scores": score_sheet(world.arb_task),
            "rationale": "A handles the edge cases; B does not.",
        },
    }


@dataclass(frozen=True)
class Endpoint:
    name: str
    route: str  # e.g. "api/v1/tasks/<int:pk>/"
    view: Any  # the view class
    methods: tuple[str, ...]  # what the view answers, OPTIONS and HEAD included

    def path(self, world: World) -> str:
        def fill(match: re.Match[str]) -> str:
            name = match.group("name")
            if name == "pk":
                prefix = self.route.removeprefix(API_PREFIX).split("/")[0]
                pick = _PK_BY_NAME.get(self.name) or _PK_BY_PREFIX.get(prefix)
                if pick is None:
                    raise KeyError(f"{self.name}: say which object fills <pk> (matrix.py)")
                return str(pick(world))
            if name == "slug":
                return world.rubric_slug
            if name == "number":
                return "1"
            raise KeyError(f"{self.name}: say what fills <{name}> (matrix.py)")

        return "/" + re.sub(r"<(?:\w+:)?(?P<name>\w+)>", fill, self.route)


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def api_endpoints() -> list[Endpoint]:
    """Every URL pattern under /api/v1/, from the URL conf, with the methods its view answers."""
    found = []
    for route, pattern in _walk(get_resolver().url_patterns):
        if not route.startswith(API_PREFIX):
            continue
        view = getattr(pattern.callback, "cls", None) or getattr(
            pattern.callback, "view_class", None
        )
        if view is None:
            methods: tuple[str, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE")
        else:
            methods = tuple(
                m.upper()
                for m in view.http_method_names
                if m != "trace" and (hasattr(view, m) or (m == "head" and hasattr(view, "get")))
            )
        found.append(Endpoint(name=pattern.name or route, route=route, view=view, methods=methods))
    return found


def allowed(endpoint: Endpoint, method: str) -> frozenset[str]:
    """The principals the table lets call `method` (HEAD and OPTIONS derived, see MATRIX)."""
    entry = MATRIX[endpoint.name]
    if method == "HEAD":
        return entry["GET"]
    if method == "OPTIONS":
        described = entry.get("GET") or frozenset().union(*entry.values())
        return described | _role_mates(described)
    return entry.get(method, frozenset())


def _role_mates(principals: frozenset[str]) -> frozenset[str]:
    roles = {ROLE_OF.get(p) for p in principals}
    return frozenset(p for p in PRINCIPALS if p != "anonymous" and ROLE_OF[p] in roles - {None})


def expected_refusal(endpoint: Endpoint, method: str, principal: str) -> int:
    """The status a principal the table does not allow must get: 401, 404 or 403."""
    if principal == "anonymous":
        return 401
    if principal in _role_mates(allowed(endpoint, method)):
        return 404  # the role may, but not on someone else's object: it is not there for them
    return 403


# The web workspace (/app/): HTML pages and their form posts, under the same rules. Anonymous
# visitors are sent to the login page (302) instead of a 401; role-mates who do not own the
# object get 404 and other roles 403, as in the API. A method a page does not take is a 405.
WEB_PREFIX = "app/"
WEB_READERS = LEAD_AUDITOR | {"author"}
WEB_MATRIX: dict[str, dict[str, frozenset[str]]] = {
    "login": {"GET": ANYONE, "POST": ANYONE},
    "logout": {"POST": ANYONE},
    "home": {"GET": SIGNED_IN},
    "task-list": {"GET": LEAD_AUDITOR | AUTHORS},
    "task-new": {"GET": AUTHORS, "POST": AUTHORS},
    "repository-search": {"GET": AUTHORS},
    "task-detail": {"GET": WEB_READERS},
    "task-progress": {"GET": WEB_READERS},
    "task-generate": {"POST": frozenset({"author"})},
    "task-retry": {"POST": frozenset({"author"})},
    "task-turn": {"POST": frozenset({"author"})},
    "task-submit": {"POST": frozenset({"author"})},
    "task-revise": {"POST": frozenset({"author"})},
    "review-queue": {"GET": REVIEWERS},
    "review-next": {"POST": REVIEWERS},
    "review-detail": {"GET": frozenset({"reviewer"}), "POST": frozenset({"reviewer"})},
    "review-release": {"POST": frozenset({"reviewer"})},
    "arbitration-list": {"GET": LEAD_AUDITOR | {"arbiter"}},
    "arbitration-detail": {"GET": LEAD_AUDITOR | {"arbiter"}},
    "arbitration-claim": {"POST": frozenset({"arbiter"})},
    "arbitration-resolve": {"POST": frozenset({"arbiter"})},
    "arbitration-revision-preview": {"POST": frozenset({"arbiter"})},
    "audit-timeline": {"GET": frozenset({"auditor"})},
    "audit-verify": {"GET": frozenset({"auditor"})},
    "audit-task": {"GET": LEAD_AUDITOR},
    "rubric-log": {"GET": SIGNED_IN},
    "campaign-list": {"GET": LEAD_AUDITOR},
    "campaign-detail": {"GET": LEAD_AUDITOR},
    "payouts": {"GET": SIGNED_IN},
}

_WEB_PK_BY_PREFIX: dict[str, Callable[[World], int]] = {
    "tasks": lambda w: w.draft.pk,
    "reviews": lambda w: w.assignment.pk,
    "arbitrations": lambda w: w.arbitration.pk,
    "audit": lambda w: w.arb_task.pk,
    "campaigns": lambda w: w.campaign.pk,
}


@dataclass(frozen=True)
class WebPage:
    name: str  # without the "web:" namespace
    route: str  # e.g. "app/tasks/<int:pk>/"

    def path(self, world: World, *, pk: int | None = None) -> str:
        if "<int:pk>" not in self.route:
            return "/" + self.route
        prefix = self.route.removeprefix(WEB_PREFIX).split("/")[0]
        filled = pk if pk is not None else _WEB_PK_BY_PREFIX[prefix](world)
        return "/" + self.route.replace("<int:pk>", str(filled))


def web_pages() -> list[WebPage]:
    """Every URL pattern under /app/, from the URL conf."""
    return [
        WebPage(name=pattern.name or route, route=route)
        for route, pattern in _walk(get_resolver().url_patterns)
        if route.startswith(WEB_PREFIX)
    ]


def web_expected_refusal(page: WebPage, method: str, principal: str) -> int:
    if principal == "anonymous":
        return 302  # to the login page
    if principal in _role_mates(WEB_MATRIX[page.name].get(method, frozenset())):
        return 404
    return 403


def web_bodies(world: World) -> dict[tuple[str, str], dict[str, Any]]:
    """(page, method) -> form fields the allowed caller's post would be accepted with."""
    return {
        ("login", "POST"): {"username": "no_role", "password": PASSWORD},
        ("task-new", "POST"): {
            "campaign": world.campaign.pk,
            "repository": world.repository.pk,
            "base_commit": "3f2a9c1d4e5b6a7980c1d2e3f4a5b6c7d8e9f0a1",
            "kind": "bug_fix",
            "title": "A bug",
            "description": "It breaks.",
            "prompt": "Fix the bug in the request handler, with a test.",
        },
        ("task-turn", "POST"): {"prompt": "Now add a test for the empty input case."},
        ("task-submit", "POST"): {"preference": "1", "rationale": GOOD_RATIONALE},
        ("review-next", "POST"): {"campaign": world.campaign.pk},
        ("review-detail", "POST"): _review_form(world),
        ("arbitration-resolve", "POST"): {
            "decision": "resolve",
            "preference": "-1",
            "rationale": "A handles the edge cases; B does not.",
            **{
                f"score-{s['turn']}-{s['slot']}-{s['criterion']}": str(s["score"])
                for s in score_sheet(world.arb_task)
            },
        },
        ("arbitration-revision-preview", "POST"): {"guidance-security": "Name the attack."},
    }


def _review_form(world: World) -> dict[str, Any]:
    body = review_body(world.review_task)
    form = {
        f"score-{s['turn']}-{s['slot']}-{s['criterion']}": str(s["score"]) for s in body["scores"]
    }
    return {
        **form,
        "preference": str(body["preference"]),
        "verdict": body["verdict"],
        "rationale": body["rationale"],
    }
