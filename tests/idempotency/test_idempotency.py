import json
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.urls import path
from django.utils import timezone
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from accounts.models import User
from idempotency.decorators import idempotent
from idempotency.jobs import prune_idempotency_records_job
from idempotency.models import IdempotencyRecord
from idempotency.services import prune_idempotency_records, request_fingerprint
from tasks.models import Repository

pytestmark = pytest.mark.urls(__name__)

URL = "/repositories/"
BODY = {"owner": "octo", "url": "https://example.org/octo"}


class RepositoryInput(serializers.Serializer):
    owner = serializers.CharField(max_length=50)
    url = serializers.URLField()


class CreateRepository(APIView):
    """Creates a repository with a fresh name on every run, so each run leaves a row."""

    @idempotent
    def post(self, request: Request) -> Response:
        data = RepositoryInput(data=request.data)
        data.is_valid(raise_exception=True)
        owner = data.validated_data["owner"]
        if owner == "crash":
            raise RuntimeError("boom")
        if owner == "unavailable":
            return Response({"detail": "try later"}, status=503)
        repository = Repository.objects.create(
            full_name=f"{owner}/{uuid.uuid4().hex}", url=data.validated_data["url"]
        )
        return Response({"id": repository.pk, "full_name": repository.full_name}, status=201)


class OpenCreateRepository(CreateRepository):
    permission_classes = [AllowAny]


urlpatterns = [
    path("repositories/", CreateRepository.as_view()),
    path("other/repositories/", CreateRepository.as_view()),
    path("open/repositories/", OpenCreateRepository.as_view()),
]
handler500 = "core.errors.handler500"


def assert_error_shape(response, status, code):
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code


def post(client, body=BODY, key="key-1", url=URL):
    headers = {} if key is None else {"Idempotency-Key": key}
    if isinstance(body, str):
        return client.post(url, body, content_type="application/json", headers=headers)
    return client.post(url, body, format="json", headers=headers)


@pytest.fixture
def user(make_user):
    return make_user()


@pytest.fixture
def user_api(api, user):
    return api.as_user(user)


@pytest.mark.django_db
def test_a_retry_replays_the_first_response_without_running_the_view(user_api, user):
    first = post(user_api)
    second = post(user_api)

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert "Idempotent-Replayed" not in first
    assert second["Idempotent-Replayed"] == "true"
    assert Repository.objects.count() == 1
    record = IdempotencyRecord.objects.get(user=user, key="key-1")
    assert (record.method, record.path, record.status_code) == ("POST", URL, 201)
    assert record.response_body == first.json()
    assert record.completed_at is not None


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_refused(user_api):
    post(user_api)
    response = post(user_api, {**BODY, "owner": "someone-else"})

    assert_error_shape(response, 422, "unprocessable")
    assert response.json()["error"]["message"] == (
        "This Idempotency-Key was used with another request."
    )
    assert Repository.objects.count() == 1


@pytest.mark.django_db
def test_the_same_key_on_another_path_is_refused(user_api):
    post(user_api)
    assert_error_shape(post(user_api, url="/other/repositories/"), 422, "unprocessable")
    assert Repository.objects.count() == 1


@pytest.mark.django_db
def test_json_bodies_are_compared_by_content_not_by_key_order_or_spaces(user_api):
    first = post(user_api, '{"owner": "octo", "url": "https://example.org/octo"}')
    second = post(user_api, '{\n  "url":"https://example.org/octo",\n  "owner":"octo"\n}')

    assert second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert Repository.objects.count() == 1


def test_the_fingerprint_hashes_canonical_json_or_else_the_raw_bytes():
    assert request_fingerprint(b'{"b": [1, 2], "a": {"y": 1, "x": 2}}') == request_fingerprint(
        b'{"a":{"x":2,"y":1},"b":[1,2]}'
    )
    assert request_fingerprint(b'{"a": 1}') != request_fingerprint(b'{"a": 2}')
    assert request_fingerprint(b"owner=octo") != request_fingerprint(b"owner=octa")
    assert len(request_fingerprint(b"")) == 64


@pytest.mark.django_db
def test_keys_belong_to_their_user(api, make_user):
    first = post(api.as_user(make_user()))
    second = post(api.as_user(make_user()))

    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in second
    assert first.json()["id"] != second.json()["id"]
    assert IdempotencyRecord.objects.filter(key="key-1").count() == 2


@pytest.mark.django_db
def test_without_a_key_every_request_runs(user_api):
    assert post(user_api, key=None).status_code == 201
    assert post(user_api, key=None).status_code == 201
    assert Repository.objects.count() == 2
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_anonymous_requests_ignore_the_key(api):
    assert post(api, url="/open/repositories/").status_code == 201
    assert post(api, url="/open/repositories/").status_code == 201
    assert Repository.objects.count() == 2
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_a_refused_request_frees_the_key_for_the_fixed_request(user_api):
    refused = post(user_api, {"owner": "octo", "url": "not a url"})
    assert_error_shape(refused, 400, "invalid")
    assert not IdempotencyRecord.objects.exists()

    fixed = post(user_api)
    assert fixed.status_code == 201
    assert "Idempotent-Replayed" not in fixed
    assert post(user_api).json() == fixed.json()
    assert Repository.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("owner", ["crash", "unavailable"])
def test_a_server_error_frees_the_key(user_api, owner):
    failed = post(user_api, {**BODY, "owner": owner})
    assert failed.status_code >= 500
    assert not IdempotencyRecord.objects.exists()

    # The same key may be used again, even with another body.
    assert post(user_api).status_code == 201


@pytest.mark.django_db
def test_a_request_still_in_flight_is_a_conflict(user_api, user):
    IdempotencyRecord.objects.create(
        user=user,
        key="key-1",
        method="POST",
        path=URL,
        request_fingerprint=request_fingerprint(json.dumps(BODY).encode()),
    )
    response = post(user_api)

    assert_error_shape(response, 409, "conflict")
    assert response.json()["error"]["message"] == (
        "A request with this Idempotency-Key is still in progress."
    )
    assert not Repository.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["k" * 256, "", "clé", "tab\there"])
def test_invalid_keys_are_refused(user_api, key):
    response = post(user_api, key=key)

    assert_error_shape(response, 400, "invalid")
    assert "Idempotency-Key" in response.json()["error"]["details"]
    assert not Repository.objects.exists()
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_the_longest_key_is_accepted(user_api):
    assert post(user_api, key="k" * 255).status_code == 201


def _record(user, key, age):
    record = IdempotencyRecord.objects.create(
        user=user, key=key, method="POST", path=URL, request_fingerprint="0" * 64
    )
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - age)


@pytest.mark.django_db
def test_prune_deletes_records_older_than_the_ttl(user):
    _record(user, "old", timedelta(hours=49))
    _record(user, "young", timedelta(hours=47))

    assert prune_idempotency_records() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["young"]


@pytest.mark.django_db
def test_prune_follows_the_setting_but_keeps_records_for_a_day(user, settings):
    _record(user, "a", timedelta(hours=30))
    _record(user, "b", timedelta(hours=20))

    settings.IDEMPOTENCY_KEY_TTL_HOURS = 1
    assert prune_idempotency_records() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["b"]


@pytest.mark.django_db
def test_the_prune_job_returns_the_count(user):
    _record(user, "old", timedelta(days=3))
    assert prune_idempotency_records_job() == 1


def _waiting_for_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_the_same_key_run_the_view_once(user):
    token, _ = Token.objects.get_or_create(user=user)
    responses = []
    errors: list[BaseException] = []

    def send():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        try:
            responses.append(post(client))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    # Inserting a record checks its user's row (FOR KEY SHARE): holding that row locked lets
    # both requests reach the insert before either of them can claim the key.
    with transaction.atomic():
        User.objects.select_for_update().get(pk=user.pk)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while _waiting_for_locks() < 2:
            assert time.monotonic() < deadline, "the requests never waited for the lock"
            time.sleep(0.02)
    for thread in threads:
        thread.join(timeout=10)

    assert not errors, errors
    assert Repository.objects.count() == 1
    created = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r]
    others = [r for r in responses if r not in created]
    assert len(created) == 1 and len(others) == 1
    other = others[0]
    if other.status_code == 201:
        assert other["Idempotent-Replayed"] == "true"
        assert other.json() == created[0].json()
    else:
        assert_error_shape(other, 409, "conflict")
