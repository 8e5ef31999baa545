"""Blinding in the web workspace, with the canary of test_blinding_canary: no page an author or a
reviewer can open, and no answer to a form they can post (accepted or refused), names a model.
"""

import pytest
from django.test import Client

from tests.security import test_blinding_canary as api_canary
from tests.security.calls import rolled_back
from tests.security.matrix import WEB_MATRIX, web_bodies, web_pages
from tests.security.world import CANARY, build_world
from tests.tasks.test_services_tasks import generate_inline

pytestmark = pytest.mark.django_db

BLIND = api_canary.BLIND


def test_no_page_an_author_or_reviewer_can_open_names_a_model(fake_models, monkeypatch):
    world = build_world(fake_models, monkeypatch)
    failed = api_canary.failed_generation(world, fake_models)
    body_for = web_bodies(world)
    clients = {}
    for principal in (*BLIND, "lead", "auditor"):
        clients[principal] = Client()
        clients[principal].force_login(world.users[principal])
    seen: list[tuple[str, str]] = []

    def call(principal, method, path, body=None):
        client = clients[principal]
        response = client.get(path) if method == "GET" else client.post(path, body or {})
        seen.append((f"{method} {path} as {principal}", api_canary.everything_in(response)))
        return response

    for page in web_pages():
        if page.name in ("login", "logout"):
            continue  # no data of anyone's; logout would end the session
        entry = WEB_MATRIX[page.name]
        paths = [page.path(world)]
        if "<int:pk>" in page.route:
            paths.append(page.path(world, pk=999999))
        with rolled_back():
            for principal in BLIND:
                for method in entry:
                    for path in paths:
                        call(principal, method, path, body_for.get((page.name, method)))
                        if method == "POST":
                            call(principal, method, path, {})  # the refusals of bad input

    # The author's failed task: its page, the progress poll, a retry, and the page once answered.
    base = f"/app/tasks/{failed.pk}"
    for path in (f"{base}/", f"{base}/progress/", "/app/tasks/", "/app/"):
        call("author", "GET", path)
    call("author", "POST", f"{base}/submit/", {"preference": "1", "rationale": "x" * 30})
    assert call("author", "POST", f"{base}/retry/").status_code == 302
    call("author", "GET", f"{base}/progress/")
    generate_inline(failed)
    call("author", "GET", f"{base}/")

    # A reviewer's scoring mistake is shown with slots and criteria, never models.
    wrong = dict(body_for[("review-detail", "POST")])
    wrong["score-1-C-correctness"] = "3"
    call("reviewer", "POST", f"/app/reviews/{world.assignment.pk}/", wrong)

    leaks = [where for where, text in seen if CANARY.lower() in text.lower()]
    assert len(seen) > 250
    assert leaks == []

    # The canary is there to be found: leads and auditors do see the model identities.
    lead_page = Client()
    lead_page.force_login(world.users["lead"])
    assert CANARY in lead_page.get(f"/app/campaigns/{world.campaign.pk}/").content.decode()
    auditor_page = Client()
    auditor_page.force_login(world.users["auditor"])
    assert CANARY in auditor_page.get(f"/app/audit/tasks/{world.arb_task.pk}/").content.decode()
    assert CANARY in auditor_page.get(f"/app/tasks/{world.arb_task.pk}/").content.decode()
