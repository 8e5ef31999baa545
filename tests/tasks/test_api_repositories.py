import pytest

from audit.models import AuditEvent
from tasks.models import Repository

pytestmark = pytest.mark.django_db

NEW = {
    "full_name": "psf/requests",
    "url": "https://github.com/psf/requests",
    "language": "Python",
    "license": "Apache-2.0",
}


def test_a_lead_adds_a_repository_and_the_trail_ties_it_to_the_request(api, make_user):
    lead = make_user("lead")
    response = api.as_user(lead).post("/api/v1/repositories/", NEW)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["full_name"] == "psf/requests" and body["default_branch"] == "main"
    entry = AuditEvent.objects.get(object_type="tasks.repository", object_id=str(body["id"]))
    assert (entry.actor_id, entry.origin, entry.action) == (lead.id, "api", "repository.created")
    assert entry.request_id == response["X-Request-ID"]


@pytest.mark.parametrize("role", ["author", "reviewer", "arbiter", "auditor"])
def test_only_a_lead_may_add_a_repository(api, make_user, role):
    response = api.as_user(make_user(role)).post("/api/v1/repositories/", NEW)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not Repository.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("full_name", "not a name"), ("url", "nope"), ("full_name", "x" * 300)],
)
def test_bad_repository_input_is_a_400_naming_the_field(api, make_user, field, value):
    response = api.as_user(make_user("lead")).post("/api/v1/repositories/", {**NEW, field: value})
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]


def test_a_duplicate_repository_is_refused(api, make_user):
    client = api.as_user(make_user("lead"))
    assert client.post("/api/v1/repositories/", NEW).status_code == 201
    response = client.post("/api/v1/repositories/", {**NEW, "full_name": "PSF/Requests"})
    assert response.status_code == 400


def test_the_catalogue_is_searchable_and_paginated_in_constant_queries(
    api, make_user, django_assert_num_queries
):
    Repository.objects.bulk_create(
        Repository(
            full_name=f"org/repo-{i}",
            url=f"https://example.org/{i}",
            language="Go" if i % 2 else "Python",
        )
        for i in range(60)
    )
    client = api.as_user(make_user("reviewer"))
    with django_assert_num_queries(4):  # token+user, roles (rate), count, page
        response = client.get("/api/v1/repositories/", {"search": "repo-1"})
    body = response.json()
    assert body["count"] == 11
    assert {r["full_name"] for r in body["results"]} >= {"org/repo-1", "org/repo-15"}
    page = client.get("/api/v1/repositories/").json()
    assert page["count"] == 60 and len(page["results"]) == 50 and page["next"]
