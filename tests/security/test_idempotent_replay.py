"""One review submitted ten times at once with one Idempotency-Key: one review, ten equal answers.

Duplicates that arrive while the first request is still running wait for it and replay its
answer (they do not get a 409), so a client that retries on a timeout sees one outcome.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from idempotency.models import IdempotencyRecord
from reviews import services as review_services
from reviews.models import Review, WorkLog
from tests.reviews.helpers import review_body, task_in_review

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

COPIES = 10


def test_ten_concurrent_submits_with_one_key_store_one_review_and_answer_alike(
    make_user, live_campaign
):
    task = task_in_review(live_campaign)
    reviewer = make_user("reviewer")
    assignment = review_services.assignment_claim_next(reviewer=reviewer)
    token = Token.objects.create(user=reviewer).key
    url = f"/api/v1/assignments/{assignment.pk}/review/"
    body = review_body(task)
    start = threading.Barrier(COPIES)

    def submit(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        start.wait()
        try:
            response = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="submit-once")
            return response.status_code, response.json(), response.get("Idempotent-Replayed")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=COPIES) as pool:
        answers = list(pool.map(submit, range(COPIES)))

    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [201] * COPIES, answers
    first = answers[0][1]
    assert all(json == first for _, json, _ in answers)
    assert sorted(replayed or "" for _, _, replayed in answers) == [""] + ["true"] * (COPIES - 1)
    assert Review.objects.filter(assignment=assignment).count() == 1
    assert Review.objects.get(assignment=assignment).pk == first["id"]
    assert WorkLog.objects.filter(review__assignment=assignment).count() == 1
    record = IdempotencyRecord.objects.get(user=reviewer, key="submit-once")
    assert (record.status_code, record.response_body) == (201, first)


def test_a_duplicate_that_waits_too_long_for_the_first_gets_409_and_changes_nothing(
    make_user, live_campaign, settings
):
    from idempotency.services import _lock_id

    settings.IDEMPOTENCY_WAIT_SECONDS = 0.3
    task = task_in_review(live_campaign)
    reviewer = make_user("reviewer")
    assignment = review_services.assignment_claim_next(reviewer=reviewer)
    token = Token.objects.create(user=reviewer).key

    def submit():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            return client.post(
                f"/api/v1/assignments/{assignment.pk}/review/",
                review_body(task),
                format="json",
                HTTP_IDEMPOTENCY_KEY="slow",
            )
        finally:
            connection.close()

    # This connection plays the first request, still running: it holds the key's lock.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [_lock_id(reviewer.pk, "slow")])
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            response = pool.submit(submit).result(timeout=30)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_lock_id(reviewer.pk, "slow")])

    assert response.status_code == 409
    assert response.json()["error"]["message"] == (
        "A request with this Idempotency-Key is still in progress."
    )
    assert not Review.objects.filter(assignment=assignment).exists()
    assert not IdempotencyRecord.objects.filter(key="slow").exists()
