"""Per-task independence, as visibility: an arbiter who wrote a task never sees its arbitration
(its reviews name their reviewers, which its author must never learn); it answers 404, and the
list leaves it out. Leads and auditors still see every arbitration.
"""

import pytest
from django.contrib.auth.models import Group

from tests.security.world import build_world

pytestmark = pytest.mark.django_db


def test_an_author_who_is_also_an_arbiter_never_sees_their_tasks_arbitration(
    fake_models, monkeypatch
):
    world = build_world(fake_models, monkeypatch)
    author = world.users["author"]
    author.groups.add(Group.objects.get(name="arbiter"))
    client = world.client("author")
    pk = world.arbitration.pk
    assert world.arbitration.task.author_id == author.pk

    listed = client.get("/api/v1/arbitrations/").json()["results"]
    assert pk not in [row["id"] for row in listed]
    assert client.get(f"/api/v1/arbitrations/{pk}/").status_code == 404
    assert client.post(f"/api/v1/arbitrations/{pk}/claim/").status_code == 404
    resolve = {"decision": "send_back", "rationale": "Not mine to judge."}
    assert client.post(f"/api/v1/arbitrations/{pk}/resolve/", resolve).status_code == 404
    world.arbitration.refresh_from_db()
    assert (world.arbitration.state, world.arbitration.arbiter_id) == ("open", None)

    for reviewer in ("reviewer", "reviewer_other"):
        assert world.users[reviewer].username not in str(listed)
    for principal in ("arbiter", "lead", "auditor"):
        response = world.client(principal).get(f"/api/v1/arbitrations/{pk}/")
        assert response.status_code == 200
