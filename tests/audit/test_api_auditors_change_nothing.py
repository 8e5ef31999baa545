"""Auditors read everything and change nothing: every write to every /api/v1/ route is refused.

The routes come from the URLConf itself, so an endpoint added later is walked too.
"""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from audit.models import AuditEvent
from reviews.models import Arbitration
from tests.accounts.factories import UserFactory
from tests.reviews.helpers import review_body, reviewers, task_in_review

pytestmark = pytest.mark.django_db

WRITES = ("post", "put", "patch", "delete")
# Logging in is not a change of anything audited, and anyone may try it.
NOT_WRITES = {"api/v1/auth/token/"}
_CONVERTER = re.compile(r"<(?:(?P<kind>\w+):)?(?P<name>\w+)>")


def api_routes():
    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern), pattern.callback

    for route, callback in walk(get_resolver().url_patterns):
        if route.startswith("api/v1/") and route not in NOT_WRITES:
            yield route, getattr(callback, "cls", None) or callback.view_class


@pytest.fixture
def world(api, live_campaign):
    """Real objects behind every kind of id: a task in arbitration, an assignment, a rubric."""
    task = task_in_review(live_campaign)
    for reviewer, preference in zip(reviewers(3), (-2, 2, -1), strict=True):
        client = api.as_user(reviewer)
        assignment = client.post("/api/v1/assignments/next/").json()
        client.post(
            f"/api/v1/assignments/{assignment['id']}/review/",
            review_body(task, preference=preference),
            format="json",
        )
    return {
        "tasks": task.pk,
        "campaigns": live_campaign.pk,
        "repositories": task.repository_id,
        "assignments": assignment["id"],
        "arbitrations": Arbitration.objects.get(task=task).pk,
        "slug": live_campaign.rubric_version.rubric.slug,
        "number": live_campaign.rubric_version.number,
    }


def concrete(route, world):
    collection = route.removeprefix("api/v1/").split("/")[0]

    def value(match):
        name = match["name"]
        if name in world:
            return str(world[name])
        return str(world.get(collection, 1))

    return "/" + _CONVERTER.sub(value, route)


def test_every_write_endpoint_answers_an_auditor_403_and_nothing_changes(api, world):
    auditor = UserFactory(roles=["auditor"])
    client = api.as_user(auditor)
    routes = list(api_routes())
    assert len(routes) > 30
    before = AuditEvent.objects.count()
    refused, absent = [], []
    for route, view in routes:
        url = concrete(route, world)
        for method in WRITES:
            response = getattr(client, method)(url, {}, format="json")
            if hasattr(view, method):
                assert response.status_code == 403, (method, url, response.content)
                assert response.json()["error"]["code"] == "permission_denied"
                refused.append((method, url))
            else:
                # Role checks run before DRF looks for the handler: a route the auditor may
                # read answers 405 to a method it lacks, one they may not read answers 403.
                assert response.status_code in (403, 405), (method, url, response.status_code)
                absent.append((method, url, response.status_code))
    assert AuditEvent.objects.count() == before, list(
        AuditEvent.objects.order_by("-id").values_list("action", "object_type")[:10]
    )
    assert ("post", f"/api/v1/tasks/{world['tasks']}/submit/") in refused
    assert ("patch", f"/api/v1/tasks/{world['tasks']}/") in refused
    assert ("delete", "/api/v1/audit/events/", 405) in absent


def test_the_auditor_reads_everything_including_model_identities(api, world, live_campaign):
    client = api.as_user(UserFactory(roles=["auditor"]))
    candidates = client.get(f"/api/v1/tasks/{world['tasks']}/candidates/").json()
    slugs = {version.slug for version in live_campaign.model_versions.all()}
    assert {c["model_version"] for c in candidates} == slugs
    assert client.get(f"/api/v1/arbitrations/{world['arbitrations']}/").status_code == 200
    assert client.get("/api/v1/model-versions/").status_code == 200
