"""Walks the whole workflow through the API and checks each request's exact audit entries."""

from collections import Counter

import pytest

from audit.models import AuditEvent
from core.context import operation
from tasks import generation
from tasks.models import Task, TaskState
from tests.accounts.factories import UserFactory
from tests.reviews.helpers import review_body, score_sheet
from tests.tasks.factories import GOOD_RATIONALE

pytestmark = pytest.mark.django_db

CRITERIA = [
    {"key": k, "title": k.title(), "guidance": f"Judge {k}.", "scale_min": 1, "scale_max": 5}
    for k in ("correctness", "security", "reliability", "maintainability")
]


class Recorder:
    """Sends requests and returns the audit entries each one left, checked for who and when."""

    def __init__(self, api):
        self.api = api
        self.log = []

    def call(self, user, method, path, body=None, expected=200):
        client = self.api.as_user(user)
        response = getattr(client, method)(path, body, format="json")
        assert response.status_code == expected, (path, response.content)
        entries = list(
            AuditEvent.objects.filter(request_id=response["X-Request-ID"]).order_by("id")
        )
        for entry in entries:
            assert entry.at is not None and entry.changes, entry
            assert entry.origin == "api"
            if entry.actor_id is not None:
                assert entry.actor_id == user.pk, entry
        self.log.append((path, entries))
        return response, entries


def actions(entries):
    return Counter(e.action for e in entries)


def state_change(entries, action):
    (entry,) = [e for e in entries if e.action == action]
    return entry.changes["state"], entry.reason


def test_each_request_leaves_exactly_its_entries(api, fake_models, monkeypatch):
    monkeypatch.setenv("MARLIN_TEST_PROVIDER_KEY", "sk-test")
    lead, author, arbiter = (
        UserFactory(roles=["lead"]),
        UserFactory(roles=["author"]),
        UserFactory(roles=["arbiter"]),
    )
    people = [UserFactory(roles=["reviewer"]) for _ in range(3)]
    rec = Recorder(api)

    _, entries = rec.call(
        lead,
        "post",
        "/api/v1/repositories/",
        {"full_name": "org/app", "url": "https://example.org/app"},
        201,
    )
    assert actions(entries) == {"repository.created": 1}
    repository = entries[0].object_id
    for slug, provider, url in (
        ("m-one", "openai", fake_models.openai_base_url),
        ("m-two", "anthropic", fake_models.anthropic_base_url),
    ):
        _, entries = rec.call(
            lead,
            "post",
            "/api/v1/model-versions/",
            {
                "slug": slug,
                "provider": provider,
                "model": slug,
                "base_url": url,
                "api_key_env": "MARLIN_TEST_PROVIDER_KEY",
            },
            201,
        )
        assert actions(entries) == {"modelversion.created": 1}
    _, entries = rec.call(
        lead,
        "post",
        "/api/v1/rubrics/",
        {"slug": "walk", "title": "Walk", "criteria": CRITERIA},
        201,
    )
    assert actions(entries) == {"rubric.created": 1, "rubricversion.created": 1}
    response, entries = rec.call(
        lead,
        "post",
        "/api/v1/campaigns/",
        {
            "name": "Walk",
            "rubric": "walk",
            "rubric_version": 1,
            "model_versions": ["m-one", "m-two"],
        },
        201,
    )
    assert actions(entries) == {"campaign.created": 1, "campaign_model_versions.created": 2}
    campaign = response.json()["id"]

    response, entries = rec.call(
        author,
        "post",
        "/api/v1/tasks/",
        {
            "campaign": campaign,
            "repository": int(repository),
            "base_commit": "a" * 40,
            "kind": "bug_fix",
            "scenario": {"title": "Fix it", "description": "It is broken."},
            "prompt": "Fix the crash when the configuration file is empty.",
        },
        201,
    )
    assert actions(entries) == {"task.created": 1, "taskslot.created": 2, "turn.created": 1}
    task_id = response.json()["id"]
    base = f"/api/v1/tasks/{task_id}"
    _, entries = rec.call(
        author, "patch", f"{base}/", {"scenario": {"title": "Fix the empty-config crash"}}
    )
    assert actions(entries) == {"task.updated": 1}
    assert entries[0].changes["scenario_title"] == ["Fix it", "Fix the empty-config crash"]
    _, entries = rec.call(
        author, "post", f"{base}/turns/", {"prompt": "Also add a regression test for it."}, 201
    )
    assert actions(entries) == {"turn.created": 1}

    _, entries = rec.call(author, "post", f"{base}/generate/", None, 202)
    assert actions(entries) == {
        "task.generation_started": 1,
        "candidate.created": 4,
        "candidate.updated": 2,
    }
    assert state_change(entries, "task.generation_started") == (["draft", "generating"], None)
    task = Task.objects.get(pk=task_id)
    with operation(
        origin="job:tasks.generate_candidate", actor_label="system", operation_id="job-1"
    ):
        while Task.objects.get(pk=task_id).state == TaskState.GENERATING:
            for candidate_id in generation.next_candidates(task):
                generation.run_candidate(candidate_id)
    job = list(AuditEvent.objects.filter(request_id="job-1"))
    assert actions(job)["candidate.claimed"] == 4 and actions(job)["candidate.generated"] == 4
    assert actions(job)["task.generation_finished"] == 1 and {e.actor for e in job} == {"system"}

    _, entries = rec.call(
        author, "post", f"{base}/submit/", {"preference": -1, "rationale": GOOD_RATIONALE}
    )
    assert actions(entries) == {
        "validatorresult.created": 5,
        "task.submitted": 1,
        "reviewslot.created": 3,
    }
    assert state_change(entries, "task.submitted") == (["draft", "in_review"], None)

    for n, person in enumerate(people):
        response, entries = rec.call(person, "post", "/api/v1/assignments/next/", {}, 201)
        assert actions(entries) == {"reviewslot.claimed": 1, "assignment.created": 1}
        body = review_body(task, preference=[-2, 2, -1][n])
        _, entries = rec.call(
            person, "post", f"/api/v1/assignments/{response.json()['id']}/review/", body, 201
        )
        expected = {
            "review.submitted": 1,
            "assignment.submitted": 1,
            "reviewslot.filled": 1,
            "worklog.earned": 1,
        }
        if n == 2:  # the last review closes the round: the reviews disagree
            expected |= {"task.escalated": 1, "arbitration.created": 1}
        assert actions(entries) == expected
    assert state_change(entries, "task.escalated") == (
        ["in_review", "in_arbitration"],
        "round 1 closed: disagreement",
    )

    arbitration = entries[[e.action for e in entries].index("arbitration.created")].object_id
    _, entries = rec.call(arbiter, "post", f"/api/v1/arbitrations/{arbitration}/claim/")
    assert actions(entries) == {"arbitration.claimed": 1}
    _, entries = rec.call(
        arbiter,
        "post",
        f"/api/v1/arbitrations/{arbitration}/resolve/",
        {
            "decision": "resolve",
            "preference": -1,
            "scores": score_sheet(task),
            "rationale": "A fixes it.",
            "rubric_revision": {
                "policy": {"max_score_spread": 2},
                "rationale": "Two points is honest doubt.",
            },
        },
    )
    assert actions(entries) == {
        "rubricversion.created": 1,
        "rubric.revised": 1,
        "arbitration.resolved": 1,
        "task.resolved": 1,
        "outcome.created": 1,
        "worklog.earned": 2,
    }
    assert state_change(entries, "task.resolved") == (
        ["in_arbitration", "completed"],
        "A fixes it.",
    )
    revised = next(e for e in entries if e.action == "rubric.revised")
    assert revised.reason == "Two points is honest doubt." and revised.actor_id == arbiter.pk

    worklog = next(e for e in entries if e.action == "worklog.earned")
    _, entries = rec.call(lead, "post", f"/api/v1/payouts/{worklog.object_id}/approve/")
    assert actions(entries) == {"worklog.approved": 1}
    assert state_change(entries, "worklog.approved")[0] == ["earned", "approved"]
