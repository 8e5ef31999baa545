"""The auditor's API: the trail filtered and paged, its export, verify; reads are recorded."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent, AuditRead
from core.context import audit_reason, operation
from tasks.models import Repository

pytestmark = pytest.mark.django_db

ENTRY_KEYS = {
    "id",
    "at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "changes",
    "reason",
    "request_id",
    "origin",
}


@pytest.fixture
def auditor(make_user):
    return make_user("auditor")


@pytest.fixture
def repository(make_user):
    lead = make_user("lead")
    with operation(origin="command:test", actor=lead), audit_reason("catalogue fix"):
        repository = Repository.objects.create(
            full_name="pallets/click", url="https://github.com/pallets/click"
        )
        for language in ("Python", "Cython", "Rust"):
            Repository.objects.filter(pk=repository.pk).update(language=language)
    repository.lead = lead
    return repository


def about(repository):
    return {"object_type": "tasks.repository", "object_id": str(repository.pk)}


def test_only_auditors_read_the_trail(api, make_user):
    for roles in (("lead",), ("author",), ("reviewer",), ("arbiter",)):
        client = api.as_user(make_user(*roles))
        for path in (
            "/api/v1/audit/events/",
            "/api/v1/audit/events/export/",
            "/api/v1/audit/verify/",
        ):
            response = client.get(path)
            assert response.status_code == 403, (roles, path)
            assert response.json()["error"]["code"] == "permission_denied"
    api.credentials()
    assert api.get("/api/v1/audit/events/").status_code == 401


def test_an_objects_history_newest_first_with_every_field(api, auditor, repository):
    response = api.as_user(auditor).get("/api/v1/audit/events/", about(repository))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) >= {"next", "previous", "results"}
    entries = body["results"]
    assert [e["action"] for e in entries] == ["repository.updated"] * 3 + ["repository.created"]
    assert entries[0]["changes"] == {"language": ["Cython", "Rust"]}
    assert set(entries[0]) == ENTRY_KEYS
    assert (entries[0]["actor"], entries[0]["reason"], entries[0]["origin"]) == (
        repository.lead.username,
        "catalogue fix",
        "command:test",
    )
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)


def test_ordering_id_pages_oldest_first_through_the_cursor(api, auditor, repository):
    client = api.as_user(auditor)
    first = client.get(
        "/api/v1/audit/events/", {**about(repository), "ordering": "id", "page_size": 3}
    ).json()
    assert [e["action"] for e in first["results"]] == ["repository.created"] + [
        "repository.updated"
    ] * 2
    second = client.get(first["next"]).json()
    assert [e["changes"] for e in second["results"]] == [{"language": ["Cython", "Rust"]}]
    assert second["next"] is None


@pytest.mark.parametrize(
    "params",
    [{"ordering": "at"}, {"since": "yesterday"}, {"until": "2026-13-01T00:00:00Z"}],
)
def test_bad_filters_are_400(api, auditor, params):
    response = api.as_user(auditor).get("/api/v1/audit/events/", params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert not AuditRead.objects.exists()


def test_filters_by_actor_name_or_id_action_and_time(api, auditor, repository, make_user):
    client = api.as_user(auditor)
    lead = repository.lead

    def ids(**params):
        return {e["id"] for e in client.get("/api/v1/audit/events/", params).json()["results"]}

    mine = set(AuditEvent.objects.filter(actor_id=lead.pk).values_list("id", flat=True))
    assert ids(actor=lead.username) == ids(actor=str(lead.pk)) == mine
    assert len(mine) == 4
    with connection.cursor() as cursor:  # no application context: recorded with no actor
        cursor.execute("UPDATE tasks_repository SET active = false WHERE id = %s", [repository.pk])
    unknown = ids(actor="nobody-by-that-name")
    assert unknown == set()
    updated = ids(action="repository.updated", object_id=str(repository.pk))
    assert len(updated) == 4
    now = timezone.now()
    assert ids(since=(now - timedelta(minutes=5)).isoformat(), **about(repository)) >= updated
    assert ids(until=(now - timedelta(minutes=5)).isoformat(), **about(repository)) == set()


def test_the_export_streams_the_filtered_trail_as_json_lines(api, auditor, repository):
    response = api.as_user(auditor).get("/api/v1/audit/events/export/", about(repository))
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/x-ndjson"
    lines = b"".join(response.streaming_content).decode().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["action"] for e in entries] == ["repository.created"] + ["repository.updated"] * 3
    assert set(entries[0]) == ENTRY_KEYS
    page = api.get("/api/v1/audit/events/", {**about(repository), "ordering": "id"}).json()
    assert entries == page["results"]  # an export line and a page entry agree field for field


def test_every_read_of_the_trail_is_itself_in_the_trail(api, auditor, repository):
    client = api.as_user(auditor)
    client.get("/api/v1/audit/events/", about(repository))
    b"".join(client.get("/api/v1/audit/events/export/", {"action": "x"}).streaming_content)
    client.get("/api/v1/audit/verify/")
    reads = list(AuditRead.objects.order_by("id"))
    assert [(r.reader, r.path) for r in reads] == [
        (auditor, "/api/v1/audit/events/"),
        (auditor, "/api/v1/audit/events/export/"),
        (auditor, "/api/v1/audit/verify/"),
    ]
    assert (reads[0].object_type, reads[0].object_id) == ("tasks.repository", str(repository.pk))
    assert reads[1].filters == {"action": "x"}
    entries = client.get(
        "/api/v1/audit/events/", {"object_type": "audit.auditread", "actor": auditor.username}
    ).json()["results"]
    assert [e["action"] for e in entries][-3:] == ["auditread.created"] * 3
    assert entries[-1]["changes"]["path"] == [None, "/api/v1/audit/events/"]


def test_verify_reports_ok_then_names_a_tampered_entry(api, auditor, repository):
    client = api.as_user(auditor)
    report = client.get("/api/v1/audit/verify/").json()
    assert report["ok"] is True and report["unsealed"] == 0 and report["checked"] >= 4
    target = AuditEvent.objects.filter(**about(repository)).order_by("id")[1]
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
        cursor.execute("UPDATE audit_event SET actor = 'somebody' WHERE id = %s", [target.id])
        cursor.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")
    report = client.get("/api/v1/audit/verify/").json()
    assert report["ok"] is False
    assert report["first_broken"]["event_id"] == target.id
    assert report["first_broken"]["reason"] == "event_changed"


def test_verify_from_a_head_it_reported_and_refuses_half_a_checkpoint(api, auditor, repository):
    client = api.as_user(auditor)
    head = client.get("/api/v1/audit/verify/").json()["head"]
    report = client.get(
        "/api/v1/audit/verify/", {"since_seq": head["seq"], "since_hash": head["hash"]}
    ).json()
    # Only what was sealed since: the entry recording the first verify's read, and so on.
    assert report["ok"] is True and 0 < report["checked"] < head["seq"], report
    for query in ({"since_seq": head["seq"]}, {"since_seq": 1, "since_hash": "not-a-hash"}):
        response = client.get("/api/v1/audit/verify/", query)
        assert response.status_code == 400, response.content
        assert response.json()["error"]["code"] == "invalid"


def test_the_list_runs_a_fixed_number_of_queries(
    api, auditor, repository, django_assert_num_queries
):
    client = api.as_user(auditor)
    client.get("/api/v1/me/")
    # token and user, roles, the read's insert (with its audit context), the page
    with django_assert_num_queries(4):
        response = client.get("/api/v1/audit/events/", {"page_size": 200})
    assert len(response.json()["results"]) > 5
