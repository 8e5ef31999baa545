"""Blinding, with canaries: the model versions' slug, model id and base URL all carry one string,
and no response an author or a reviewer can get, on any endpoint, names it: not a body, not a
header, not an error (a failed generation's, a validation error, a 404, a 409).
"""

from urllib.parse import urlsplit

import pytest

from tasks import services as task_services
from tasks.models import Candidate, TaskState
from tests.security.calls import content_of, rolled_back, send
from tests.security.matrix import MATRIX, api_endpoints, bodies
from tests.security.world import CANARY, build_world
from tests.tasks.factories import ModelVersionFactory, make_campaign, make_task
from tests.tasks.test_services_tasks import generate_inline

pytestmark = pytest.mark.django_db

# Owners and non-owners: every endpoint, every method, allowed or refused.
BLIND = ("author", "author_other", "reviewer", "reviewer_other")


def everything_in(response):
    headers = "\n".join(f"{name}: {value}" for name, value in response.items())
    return f"{response.status_code}\n{headers}\n{content_of(response).decode(errors='replace')}"


def failed_generation(world, fake_models):
    """A task of the author's whose generation failed with an error naming the canary."""
    host = urlsplit(fake_models.url).netloc
    broken = ModelVersionFactory(
        slug=f"{CANARY}-broken",
        model=f"broken-{CANARY}",
        # No such route on the fake server: a 404 whose message repeats the path.
        base_url=f"http://{host}/{CANARY}/v1",
    )
    working = world.campaign.model_versions.order_by("pk").first()
    campaign = make_campaign(model_versions=[working, broken], lead=world.users["lead"])
    task = make_task(campaign=campaign, author=world.users["author"])
    task_services.task_generate(task=task, actor=task.author)
    task = generate_inline(task)
    assert task.state == TaskState.GENERATION_FAILED
    errors = Candidate.objects.filter(turn__task=task).exclude(error="")
    assert any(CANARY in c.error for c in errors), "the stored error should name the canary"
    return task


def test_no_response_an_author_or_reviewer_can_get_names_a_model(fake_models, monkeypatch):
    world = build_world(fake_models, monkeypatch)
    failed = failed_generation(world, fake_models)
    body_for = bodies(world)
    seen: list[tuple[str, str]] = []

    def call(principal, method, path, body=None):
        response = send(world.client(principal), method, path, body)
        seen.append((f"{method} {path} as {principal}", everything_in(response)))
        return response

    for endpoint in api_endpoints():
        if endpoint.name not in MATRIX:
            continue
        path = endpoint.path(world)
        missing = "/" + endpoint.route.replace("<int:pk>", "999999")
        missing = missing.replace("<slug:slug>", "no-such-rubric").replace("<int:number>", "999")
        with rolled_back():
            for principal in BLIND:
                for method in endpoint.methods:
                    make_body = body_for.get((endpoint.name, method))
                    call(principal, method, path, make_body() if make_body else None)
                    if method in ("POST", "PATCH"):
                        call(principal, method, path, {})  # validation errors
                    if missing != path:
                        call(principal, method, missing, {} if method != "GET" else None)

    # The failed task, for its author: what they read, and retrying and submitting it.
    author = "author"
    base = f"/api/v1/tasks/{failed.pk}"
    for method, path in (
        ("GET", f"{base}/"),
        ("GET", f"{base}/candidates/"),
        ("GET", f"{base}/history/"),
        ("GET", "/api/v1/tasks/"),
        ("POST", f"{base}/submit/"),
        ("POST", f"{base}/generate/"),
    ):
        call(
            author,
            method,
            path,
            {"preference": 1, "rationale": "x" * 30} if "submit" in path else None,
        )
    response = call(author, "POST", f"{base}/retry/")
    assert response.status_code == 202
    generate_inline(failed)
    for path in (f"{base}/", f"{base}/candidates/", f"{base}/history/"):
        call(author, "GET", path)

    # A reviewer's scoring mistakes come back as errors naming slots and criteria, never models.
    review = f"/api/v1/assignments/{world.assignment.pk}/review/"
    wrong = bodies(world)[("assignment-review", "POST")]()
    wrong["scores"][0]["slot"] = "C"
    call("reviewer", "POST", review, wrong)

    leaks = [where for where, text in seen if CANARY.lower() in text.lower()]
    assert len(seen) > 800
    assert leaks == []

    # The canary is there to be found: leads and auditors do see the model identities.
    for principal in ("lead", "auditor"):
        response = send(world.client(principal), "GET", f"{base}/candidates/")
        assert CANARY in everything_in(response)
