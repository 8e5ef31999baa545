import pytest

from audit.models import AuditEvent
from tasks.models import Repository

pytestmark = pytest.mark.django_db


def test_an_admin_edit_leaves_an_entry_with_who_and_why(client, make_user):
    lead = make_user("lead", is_staff=True, is_superuser=True)
    repository = Repository.objects.create(
        full_name="pallets/flask", url="https://github.com/pallets/flask"
    )
    client.force_login(lead)
    response = client.post(
        f"/admin/tasks/repository/{repository.pk}/change/",
        {
            "full_name": "pallets/flask",
            "url": "https://github.com/pallets/flask",
            "default_branch": "main",
            "language": "Python",
            "license": "BSD-3-Clause",
            "active": "on",
        },
    )
    assert response.status_code == 302, response.content
    entry = AuditEvent.objects.filter(
        object_type="tasks.repository", object_id=str(repository.pk)
    ).last()
    assert entry.action == "repository.updated"
    assert entry.changes["language"] == ["", "Python"]
    assert (entry.actor_id, entry.actor, entry.origin, entry.reason) == (
        lead.id,
        lead.username,
        "admin",
        "admin edit",
    )
    assert entry.request_id == response["X-Request-ID"]


def test_the_admin_cannot_change_the_trail(client, make_user):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    assert client.get("/admin/audit/auditevent/").status_code == 200
    assert client.get("/admin/audit/auditevent/add/").status_code == 403


def test_reading_the_trail_in_the_admin_is_recorded(client, make_user):
    from audit.models import AuditRead

    auditor = make_user("auditor", is_staff=True, is_superuser=True)
    client.force_login(auditor)
    assert client.get("/admin/audit/auditevent/", {"object_type": "tasks.task"}).status_code == 200
    read = AuditRead.objects.get(reader=auditor)
    assert read.path == "/admin/audit/auditevent/" and read.filters == {"object_type": "tasks.task"}
    assert AuditEvent.objects.filter(action="auditread.created", object_id=str(read.pk)).exists()
