"""The web pages over the service layer: what they refuse, what they store, and how many queries
the main pages run (a fixed number, whatever the number of turns)."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from reviews import services as review_services
from reviews.models import Arbitration, Review
from tasks import services as task_services
from tasks.models import Task, TaskState
from tests.accounts.factories import UserFactory
from tests.reviews.helpers import review_body, reviewers, task_in_review
from tests.tasks.factories import RepositoryFactory, make_campaign, make_task
from tests.tasks.test_services_tasks import generate_inline

pytestmark = pytest.mark.django_db


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def queries_for(client, path):
    client.get(path)  # warm: session and the first-use queries of the process
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, response.content[:500]
    return len(captured)


def generated(campaign, *, turns):
    task = make_task(campaign=campaign)
    for n in range(2, turns + 1):
        task_services.turn_add(task=task, actor=task.author, prompt=f"Follow-up {n}, with a test.")
    task_services.task_generate(task=task, actor=task.author)
    return generate_inline(task)


def test_the_task_page_runs_the_same_queries_for_one_turn_or_three(live_campaign):
    small, large = generated(live_campaign, turns=1), generated(live_campaign, turns=3)
    counts = [
        queries_for(signed_in(task.author), f"/app/tasks/{task.pk}/") for task in (small, large)
    ]
    assert counts == [9, 9]


def test_the_review_page_runs_the_same_queries_for_one_turn_or_two(live_campaign):
    counts = []
    versions = list(live_campaign.model_versions.all())
    for turns in (1, 2):
        campaign = make_campaign(model_versions=versions)
        task = task_in_review(campaign, turns=turns)
        reviewer = UserFactory(roles=["reviewer"])
        assignment = review_services.assignment_claim_next(
            reviewer=reviewer, campaign_id=campaign.pk
        )
        assert assignment.task_id == task.pk
        counts.append(queries_for(signed_in(reviewer), f"/app/reviews/{assignment.pk}/"))
    assert counts == [7, 7]


def disagreement(campaign, *, turns):
    task = task_in_review(campaign, turns=turns)
    for person, preference in zip(reviewers(3), (-2, 2, -1), strict=True):
        assignment = review_services.assignment_claim_next(reviewer=person, campaign_id=campaign.pk)
        review_services.review_submit(
            assignment=assignment, actor=person, **review_body(task, preference=preference)
        )
    return Arbitration.objects.get(task=task)


def test_the_arbitration_page_runs_the_same_queries_for_one_turn_or_two(live_campaign):
    arbiter = signed_in(UserFactory(roles=["arbiter"]))
    counts = [
        queries_for(arbiter, f"/app/arbitrations/{disagreement(live_campaign, turns=n).pk}/")
        for n in (1, 2)
    ]
    assert counts == [8, 8]


def test_a_new_task_with_a_bad_commit_is_refused_with_the_reason_and_stores_nothing(live_campaign):
    author = UserFactory(roles=["author"])
    repository = RepositoryFactory()
    response = signed_in(author).post(
        "/app/tasks/new/",
        {
            "campaign": live_campaign.pk,
            "repository": repository.pk,
            "base_commit": "not-a-sha",
            "kind": "bug_fix",
            "title": "A bug",
            "prompt": "Fix the bug in the handler and add a test for it.",
        },
    )
    assert response.status_code == 400
    assert "base_commit" in response.content.decode()
    assert not Task.objects.filter(author=author).exists()
    # What was typed is kept, and the chosen repository is still chosen.
    assert "Fix the bug in the handler" in response.content.decode()
    assert f'value="{repository.pk}"' in response.content.decode()


def test_submitting_before_generation_is_a_409_and_the_task_stays_a_draft(live_campaign):
    task = make_task(campaign=live_campaign)
    response = signed_in(task.author).post(
        f"/app/tasks/{task.pk}/submit/", {"preference": "1", "rationale": "A is right. " * 3}
    )
    assert response.status_code == 409
    assert "generate first" in response.content.decode()
    task.refresh_from_db()
    assert task.state == TaskState.DRAFT


def test_a_review_with_a_score_off_the_scale_is_refused_and_nothing_is_stored(live_campaign):
    task = task_in_review(live_campaign)
    reviewer = UserFactory(roles=["reviewer"])
    assignment = review_services.assignment_claim_next(
        reviewer=reviewer, campaign_id=live_campaign.pk
    )
    form = {
        f"score-{s['turn']}-{s['slot']}-{s['criterion']}": str(s["score"])
        for s in review_body(task)["scores"]
    }
    form.update(
        {"score-1-A-security": "9", "preference": "-1", "verdict": "approve", "rationale": "Fine."}
    )
    response = signed_in(reviewer).post(f"/app/reviews/{assignment.pk}/", form)
    assert response.status_code == 400
    assert "off the scale 1..5" in response.content.decode()
    assert not Review.objects.filter(task=task).exists()
    # The form comes back as it was sent, so nothing typed is lost.
    assert 'id="preference--1" name="preference" value="-1" required checked' in (
        response.content.decode()
    )


def test_repository_search_finds_active_repositories_only():
    author = UserFactory(roles=["author"])
    RepositoryFactory(full_name="mlflow/mlflow")
    RepositoryFactory(full_name="mlflow/old", active=False)
    page = signed_in(author).get("/app/repositories/search/?q=mlflow").content.decode()
    assert "mlflow/mlflow" in page and "mlflow/old" not in page


def test_an_anonymous_visitor_is_sent_to_the_login_page_and_back():
    response = Client().get("/app/reviews/")
    assert response.status_code == 302
    assert response["Location"] == "/app/login/?next=/app/reviews/"


def test_signing_in_is_throttled_like_the_api_login():
    user = UserFactory(roles=["reviewer"], password="right-password-123")
    client = Client()
    wrong = {"username": user.username, "password": "wrong"}
    assert [client.post("/app/login/", wrong).status_code for _ in range(5)] == [200] * 5

    refused = client.post(
        "/app/login/", {"username": user.username, "password": "right-password-123"}
    )

    assert refused.status_code == 429
    assert "Too many attempts to sign in" in refused.content.decode()
    assert "_auth_user_id" not in client.session

    colleague = UserFactory(roles=["reviewer"], password="another-password-456")
    other = {"username": colleague.username, "password": "another-password-456"}
    assert client.post("/app/login/", other).status_code == 302  # same address, own counter


def test_after_changes_are_requested_the_author_sees_the_feedback_and_what_is_new(live_campaign):
    task = task_in_review(live_campaign)
    people = reviewers(3)
    for person in people:
        assignment = review_services.assignment_claim_next(
            reviewer=person, campaign_id=live_campaign.pk
        )
        body = review_body(task, verdict="request_changes")
        body["comments"] = f"Please add a regression test ({person.pk})."
        review_services.review_submit(assignment=assignment, actor=person, **body)
    task.refresh_from_db()
    assert task.state == TaskState.CHANGES_REQUESTED
    author = signed_in(task.author)
    assert author.post(f"/app/tasks/{task.pk}/revise/").status_code == 302
    added = author.post(f"/app/tasks/{task.pk}/turns/", {"prompt": "Add the regression test."})
    assert added.status_code == 302
    page = author.get(f"/app/tasks/{task.pk}/").content.decode()
    assert "What changed since round 1" in page
    assert "New in this round: turn 2." in page
    assert page.count("Please add a regression test") == 3
    # Reviewers stay anonymous to the author.
    assert not any(person.username in page for person in people)


def test_the_progress_poll_lists_each_answer_and_reloads_the_page_when_done(live_campaign):
    task = make_task(campaign=live_campaign)
    task_services.task_generate(task=task, actor=task.author)
    author = signed_in(task.author)
    polled = author.get(f"/app/tasks/{task.pk}/progress/")
    assert polled.status_code == 200 and "HX-Refresh" not in polled
    text = polled.content.decode()
    assert "Generating: 0 of 2 answers" in text
    assert "Turn 1, candidate A:" in text and "Turn 1, candidate B:" in text
    generate_inline(task)
    done = author.get(f"/app/tasks/{task.pk}/progress/")
    assert done["HX-Refresh"] == "true"
