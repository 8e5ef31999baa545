"""Secrets never enter the trail: provider keys are never stored, passwords only as "[hidden]"."""

import pytest
from django.db import connection

from accounts.services import user_upsert
from audit.models import AuditEvent
from tests.reviews.helpers import task_in_review

pytestmark = pytest.mark.django_db

PROVIDER_KEY = "sk-test-secret-never-shown-0123456789"  # what live_campaign puts in the env


def entries_containing(text):
    """Every audit entry whose full hashed text (all columns) contains `text`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT e.id FROM audit_event e WHERE strpos(audit_event_canonical(e), %s) > 0",
            [text],
        )
        return [row[0] for row in cursor.fetchall()]


def test_a_model_versions_key_is_used_but_never_recorded(live_campaign, fake_models):
    task_in_review(live_campaign)
    sent = [r["headers"] for r in fake_models.requests]
    assert sent and all(
        PROVIDER_KEY in (h.get("authorization", "") + h.get("x-api-key", "")) for h in sent
    )
    assert AuditEvent.objects.filter(action="candidate.generated").count() == 2
    assert entries_containing(PROVIDER_KEY) == []
    assert entries_containing("sk-test-secret") == []
    version = live_campaign.model_versions.first()
    created = AuditEvent.objects.get(object_type="tasks.modelversion", object_id=str(version.pk))
    assert created.changes["api_key_env"] == [None, "MARLIN_TEST_PROVIDER_KEY"]  # the name only


def test_passwords_are_hidden_on_create_and_on_change():
    user, _ = user_upsert(username="carol", password="first-Passw0rd!", roles=["reviewer"])
    first_hash = user.password
    user_upsert(username="carol", password="second-Passw0rd!", roles=["reviewer"])
    user.refresh_from_db()
    entries = list(
        AuditEvent.objects.filter(object_type="accounts.user", object_id=str(user.pk)).order_by(
            "id"
        )
    )
    assert entries[0].changes["password"] == [None, "[hidden]"]
    assert entries[-1].changes["password"] == ["[hidden]", "[hidden]"]
    for secret in ("first-Passw0rd!", "second-Passw0rd!", first_hash, user.password):
        assert entries_containing(secret) == [], secret
