import pytest
from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny


@api_view(["GET"])
@permission_classes([AllowAny])
def broken_api_view(request):
    raise ZeroDivisionError("boom")


def broken_plain_view(request):
    raise ZeroDivisionError("boom")


urlpatterns = [
    path("api/broken/", broken_api_view),
    path("plain/broken/", broken_plain_view),
]


def assert_error_shape(response, status, code):
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


@pytest.mark.django_db
def test_an_unknown_path_is_a_json_404(client):
    assert_error_shape(client.get("/api/v1/nothing-here/"), 404, "not_found")


@pytest.mark.django_db
def test_a_missing_object_is_a_json_404(api, make_user):
    api.as_user(make_user("author"))
    assert_error_shape(api.get("/api/v1/repositories/999999/"), 404, "not_found")


@pytest.mark.django_db
def test_a_wrong_method_is_a_json_405(api, make_user):
    api.as_user(make_user("author"))
    assert_error_shape(api.delete("/api/v1/me/"), 405, "method_not_allowed")


@pytest.mark.urls(__name__)
def test_an_api_crash_is_a_json_500_without_details(client, caplog):
    client.raise_request_exception = False
    response = client.get("/api/broken/")
    assert_error_shape(response, 500, "server_error")
    assert "boom" not in response.content.decode()
    assert any(record.exc_info for record in caplog.records)


@pytest.mark.urls(__name__)
def test_a_plain_crash_is_a_json_500(client):
    client.raise_request_exception = False
    assert_error_shape(client.get("/plain/broken/"), 500, "server_error")


handler500 = "core.errors.handler500"
