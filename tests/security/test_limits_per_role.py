"""Idempotency keys on every POST that creates or transitions, and request rates per role."""

import pytest

from api.accounts import TokenView
from core.throttling import RoleRateThrottle
from tasks.models import Task
from tests.security.matrix import api_endpoints
from tests.tasks.factories import make_campaign
from tests.tasks.test_api_tasks import new_task_body as task_body

# Exchanging a password for a token is anonymous and has no side effect to repeat.
NOT_IDEMPOTENT = {TokenView}


def test_every_post_that_creates_or_transitions_takes_an_idempotency_key():
    posts = [e for e in api_endpoints() if "POST" in e.methods and e.view not in NOT_IDEMPOTENT]
    assert len(posts) >= 15
    missing = [e.route for e in posts if not getattr(e.view.post, "idempotent", False)]
    assert missing == []


def test_the_schema_documents_the_key_on_every_such_post(api, make_user):
    schema = api.as_user(make_user("lead")).get("/api/schema/?format=json").json()
    posts = {
        path: operations["post"]
        for path, operations in schema["paths"].items()
        if "post" in operations and not path.startswith("/api/v1/auth/")
    }
    assert posts
    for path, operation in posts.items():
        names = {p["name"] for p in operation.get("parameters", [])}
        assert "Idempotency-Key" in names, path


@pytest.mark.django_db
def test_a_transition_replayed_with_its_key_happens_once(api, make_user):
    author = make_user("author")
    campaign = make_campaign()
    client = api.as_user(author)
    body = task_body(campaign)
    first = client.post("/api/v1/tasks/", body, format="json", HTTP_IDEMPOTENCY_KEY="task-1")
    again = client.post("/api/v1/tasks/", body, format="json", HTTP_IDEMPOTENCY_KEY="task-1")
    other = client.post(
        "/api/v1/tasks/",
        {**body, "prompt": body["prompt"] + " Also."},
        format="json",
        HTTP_IDEMPOTENCY_KEY="task-1",
    )

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert other.status_code == 422 and other.json()["error"]["code"] == "unprocessable"
    assert Task.objects.filter(author=author).count() == 1


@pytest.fixture
def role_rates(monkeypatch):
    rates = {
        "user": "100/min",
        "role_reviewer": "2/min",
        "role_auditor": "3/min",
        "role_lead": "5/min",
    }
    monkeypatch.setattr(RoleRateThrottle, "THROTTLE_RATES", rates)
    return rates


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("roles", "allowed"), [(("reviewer",), 2), (("auditor",), 3), (("reviewer", "lead"), 5)]
)
def test_each_role_has_its_own_rate_and_several_roles_get_the_most_generous(
    api, make_user, role_rates, roles, allowed
):
    client = api.as_user(make_user(*roles))
    statuses = [client.get("/api/v1/me/").status_code for _ in range(allowed + 1)]
    assert statuses == [200] * allowed + [429]
    assert client.get("/api/v1/me/").json()["error"]["code"] == "throttled"


@pytest.mark.django_db
def test_each_user_has_their_own_counter(api, make_user, role_rates):
    first, second = make_user("reviewer"), make_user("reviewer")
    for _ in range(2):
        assert api.as_user(first).get("/api/v1/me/").status_code == 200
    assert api.as_user(first).get("/api/v1/me/").status_code == 429
    assert api.as_user(second).get("/api/v1/me/").status_code == 200
